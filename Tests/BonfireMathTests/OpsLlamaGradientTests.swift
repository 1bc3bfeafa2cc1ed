// Finite-difference gradient checks for the Llama-family layers (OpsLlama.swift): RMSNorm, rotary embedding,
// SwiGLU and grouped-query attention. For a random upstream gradient g, f(x) = Σ g ⊙ layer(x) is differentiated
// centrally (in Double) and compared with the backward pass; plus a few exact identities.
import XCTest
import BonfireMath
import BonfireTestSupport

final class OpsLlamaGradientTests: XCTestCase {
    var rng = RNG(seed: 7)
    func randn(_ n: Int, _ s: Float = 1) -> [Float] { (0..<n).map { _ in Float(rng.normal()) * s } }
    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    func numericGrad(_ x: [Float], eps: Float = 1e-2, _ f: ([Float]) -> Double) -> [Float] {
        var g = [Float](repeating: 0, count: x.count), xp = x
        for i in x.indices {
            let old = xp[i]
            xp[i] = old + eps; let fp = f(xp)
            xp[i] = old - eps; let fm = f(xp)
            xp[i] = old
            g[i] = Float((fp - fm) / (2 * Double(eps)))
        }
        return g
    }

    func testRMSNormGradients() {
        let (n, c, eps) = (4, 8, Float(1e-5))
        let x = randn(n * c), w = randn(c), g = randn(n * c)
        func run(_ x: [Float], _ w: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), r = [Float](repeating: 0, count: n)
            Ops.rmsNormForward(out: &out, rstd: &r, inp: x, weight: w, n: n, c: c, eps: eps)
            return dot(out, g)
        }
        var out = [Float](repeating: 0, count: n * c), r = [Float](repeating: 0, count: n)
        Ops.rmsNormForward(out: &out, rstd: &r, inp: x, weight: w, n: n, c: c, eps: eps)
        // y·(1/w) has unit RMS per row.
        for i in 0..<n {
            let ms = (0..<c).map { j -> Double in let v = Double(out[i * c + j] / w[j]); return v * v }.reduce(0, +) / Double(c)
            XCTAssertEqual(ms, 1, accuracy: 1e-3)
        }
        var dx = [Float](repeating: 0.5, count: n * c), dw = [Float](repeating: -0.25, count: c)   // backward accumulates
        Ops.rmsNormBackward(dinp: &dx, dweight: &dw, dout: g, inp: x, weight: w, rstd: r, n: n, c: c)
        expectClose(dx.map { $0 - 0.5 }, numericGrad(x) { run($0, w) }, rtol: 1e-2, atol: 2e-3, "RMSNorm dx")
        expectClose(dw.map { $0 + 0.25 }, numericGrad(w) { run(x, $0) }, rtol: 1e-2, atol: 2e-3, "RMSNorm dw")
    }

    func tables(positions P: Int, hd: Int, theta: Double = 10000) -> ([Float], [Float]) {
        var c = [Float](), s = [Float]()
        for p in 0..<P { for i in 0..<(hd / 2) {
            let a = Double(p) / pow(theta, Double(2 * i) / Double(hd)); c.append(Float(cos(a))); s.append(Float(sin(a)))
        } }
        return (c, s)
    }

    func testRopeIsARotationItsInverseUndoesItAndPositionZeroIsIdentity() {
        let (n, heads, hd) = (5, 3, 8)
        let (c, s) = tables(positions: 16, hd: hd)
        let pos = [0, 3, 7, 15, 1]
        let x = randn(n * heads * hd)
        var y = x
        Ops.rope(&y, positions: pos, n: n, heads: heads, headDim: hd, cos: c, sin: s)
        for i in 0..<n {   // norms preserved per head
            for h in 0..<heads {
                let r = (i * heads + h) * hd
                XCTAssertEqual(dot(Array(x[r..<r + hd]), Array(x[r..<r + hd])), dot(Array(y[r..<r + hd]), Array(y[r..<r + hd])), accuracy: 1e-4)
            }
        }
        XCTAssertEqual(Array(y[0..<(heads * hd)]), Array(x[0..<(heads * hd)]))   // position 0
        var z = y
        Ops.rope(&z, positions: pos, n: n, heads: heads, headDim: hd, cos: c, sin: s, inverse: true)
        expectClose(z, x, rtol: 1e-5, atol: 1e-5, "RᵀR x = x")
        // Relative-position property: <R_p q, R_p' k> depends only on p − p'.
        let q = randn(hd), k = randn(hd)
        func rotated(_ v: [Float], _ p: Int) -> [Float] { var o = v; Ops.rope(&o, positions: [p], n: 1, heads: 1, headDim: hd, cos: c, sin: s); return o }
        XCTAssertEqual(dot(rotated(q, 9), rotated(k, 4)), dot(rotated(q, 6), rotated(k, 1)), accuracy: 1e-4)
    }

    func testRopeBackwardMatchesFiniteDifferences() {
        let (n, heads, hd) = (3, 2, 6)
        let (c, s) = tables(positions: 8, hd: hd, theta: 50)
        let pos = [2, 5, 7]
        let x = randn(n * heads * hd), g = randn(n * heads * hd)
        func f(_ x: [Float]) -> Double { var y = x; Ops.rope(&y, positions: pos, n: n, heads: heads, headDim: hd, cos: c, sin: s); return dot(y, g) }
        var dx = g
        Ops.rope(&dx, positions: pos, n: n, heads: heads, headDim: hd, cos: c, sin: s, inverse: true)
        expectClose(dx, numericGrad(x, f), rtol: 1e-2, atol: 2e-3, "rope dx")
    }

    func testSwiGLUGradients() {
        let n = 12
        let gate = randn(n, 2), up = randn(n), g = randn(n)
        func run(_ a: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n)
            Ops.swigluForward(out: &out, gate: a, up: b, count: n)
            return dot(out, g)
        }
        var out = [Float](repeating: 0, count: n)
        Ops.swigluForward(out: &out, gate: gate, up: up, count: n)
        for i in 0..<n { XCTAssertEqual(Double(out[i]), Double(gate[i]) / (1 + exp(-Double(gate[i]))) * Double(up[i]), accuracy: 1e-5) }
        var dg = [Float](repeating: 0, count: n), du = dg
        Ops.swigluBackward(dgate: &dg, dup: &du, dout: g, gate: gate, up: up, count: n)
        expectClose(dg, numericGrad(gate, eps: 1e-3) { run($0, up) }, rtol: 1e-2, atol: 2e-3, "SwiGLU dgate")
        expectClose(du, numericGrad(up, eps: 1e-3) { run(gate, $0) }, rtol: 1e-2, atol: 2e-3, "SwiGLU dup")
    }

    /// GQA with 4 query heads sharing 2 kv heads, two right-padded sequences.
    func testGQAAttentionGradients() {
        let (B, T, H, KV, hd) = (2, 5, 4, 2, 3)
        let Q = H * hd, K = KV * hd
        let lengths = [5, 3]
        let q = randn(B * T * Q), k = randn(B * T * K), v = randn(B * T * K)
        var g = randn(B * T * Q)
        for i in 0..<(T - 3) * Q { g[(T + 3) * Q + i] = 0 }   // padding rows carry no upstream gradient
        func run(_ q: [Float], _ k: [Float], _ v: [Float]) -> Double {
            var out = [Float](repeating: 0, count: B * T * Q), att = [Float](repeating: 0, count: B * H * T * T)
            Ops.gqaAttentionForward(out: &out, att: &att, q: q, k: k, v: v, lengths: lengths, b: B, t: T, heads: H, kvHeads: KV, headDim: hd)
            return dot(out, g)
        }
        var out = [Float](repeating: 0, count: B * T * Q), att = [Float](repeating: 0, count: B * H * T * T)
        Ops.gqaAttentionForward(out: &out, att: &att, q: q, k: k, v: v, lengths: lengths, b: B, t: T, heads: H, kvHeads: KV, headDim: hd)
        XCTAssertTrue(out[((1 * T) + 3) * Q ..< (2 * T) * Q].allSatisfy { $0 == 0 }, "padding rows are zero")
        // Row 0 attends only to itself: output = v of its kv head.
        for h in 0..<H { for i in 0..<hd { XCTAssertEqual(out[h * hd + i], v[(h / 2) * hd + i], accuracy: 1e-6) } }
        var dq = [Float](repeating: 0, count: B * T * Q), dk = [Float](repeating: 0, count: B * T * K), dv = dk
        var scratch = [Float](repeating: 0, count: T * T)
        Ops.gqaAttentionBackward(dq: &dq, dk: &dk, dv: &dv, scratch: &scratch, dout: g, q: q, k: k, v: v, att: att,
                                 lengths: lengths, b: B, t: T, heads: H, kvHeads: KV, headDim: hd)
        expectClose(dq, numericGrad(q) { run($0, k, v) }, rtol: 1e-2, atol: 2e-3, "GQA dq")
        expectClose(dk, numericGrad(k) { run(q, $0, v) }, rtol: 1e-2, atol: 2e-3, "GQA dk")
        expectClose(dv, numericGrad(v) { run(q, k, $0) }, rtol: 1e-2, atol: 2e-3, "GQA dv")
    }

    /// With KV = H, GQA attention is the existing multi-head attention on the packed [q | k | v] layout.
    func testGQAWithAsManyKVHeadsAsQueryHeadsEqualsMultiHeadAttention() {
        let (B, T, H, hd) = (2, 4, 2, 4)
        let C = H * hd
        let lengths = [4, 2]
        let q = randn(B * T * C), k = randn(B * T * C), v = randn(B * T * C)
        var qkv = [Float](repeating: 0, count: B * T * 3 * C)
        for r in 0..<(B * T) { for j in 0..<C { qkv[r * 3 * C + j] = q[r * C + j]; qkv[r * 3 * C + C + j] = k[r * C + j]; qkv[r * 3 * C + 2 * C + j] = v[r * C + j] } }
        var a = [Float](repeating: 0, count: B * T * C), b = a, att = [Float](repeating: 0, count: B * H * T * T), att2 = att
        Ops.attentionForward(out: &a, att: &att, qkv: qkv, lengths: lengths, b: B, t: T, c: C, heads: H)
        Ops.gqaAttentionForward(out: &b, att: &att2, q: q, k: k, v: v, lengths: lengths, b: B, t: T, heads: H, kvHeads: H, headDim: hd)
        expectClose(b, a, rtol: 1e-5, atol: 1e-6, "GQA(KV=H) vs MHA")
    }
}
