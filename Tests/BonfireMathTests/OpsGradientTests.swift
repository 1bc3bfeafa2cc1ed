// Finite-difference gradient checks for every layer in Ops: for a random upstream gradient g, the scalar
// f(x) = Σ g ⊙ layer(x) (accumulated in Double) is differentiated centrally and compared with the backward pass.
import XCTest
import BonfireMath
import BonfireTestSupport

final class OpsGradientTests: XCTestCase {
    var rng = RNG(seed: 42)
    func randn(_ n: Int, _ s: Float = 1) -> [Float] { (0..<n).map { _ in Float(rng.normal()) * s } }

    /// Central-difference gradient of f with respect to x.
    func numericGrad(_ x: [Float], eps: Float = 1e-2, _ f: ([Float]) -> Double) -> [Float] {
        var g = [Float](repeating: 0, count: x.count)
        var xp = x
        for i in x.indices {
            let old = xp[i]
            xp[i] = old + eps; let fp = f(xp)
            xp[i] = old - eps; let fm = f(xp)
            xp[i] = old
            g[i] = Float((fp - fm) / (2 * Double(eps)))
        }
        return g
    }

    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + Double($1.0) * Double($1.1) } }

    func testEmbeddingBackwardScattersRows() {
        let (n, c, v) = (5, 3, 4)
        let table = randn(v * c), ids = [1, 3, 1, 0, 2], g = randn(n * c)
        func f(_ t: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c)
            Ops.embeddingForward(out: &out, ids: ids, table: t, n: n, c: c, vocab: v)
            return dot(out, g)
        }
        var dt = [Float](repeating: 0, count: v * c)
        Ops.embeddingBackward(dtable: &dt, ids: ids, dout: g, n: n, c: c)
        expectClose(dt, numericGrad(table, f), rtol: 1e-2, atol: 1e-3, "dtable")
    }

    func testLayerNormGradients() {
        let (n, c) = (3, 8)
        let x = randn(n * c), w = randn(c), b = randn(c), g = randn(n * c)
        func run(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), r = m
            Ops.layerNormForward(out: &out, mean: &m, rstd: &r, inp: x, weight: w, bias: b, n: n, c: c)
            return dot(out, g)
        }
        var out = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), r = m
        Ops.layerNormForward(out: &out, mean: &m, rstd: &r, inp: x, weight: w, bias: b, n: n, c: c)
        var dx = [Float](repeating: 0, count: n * c), dw = [Float](repeating: 0, count: c), db = dw
        Ops.layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: g, inp: x, weight: w, mean: m, rstd: r, n: n, c: c)
        expectClose(dx, numericGrad(x) { run($0, w, b) }, rtol: 2e-2, atol: 2e-3, "dx")
        expectClose(dw, numericGrad(w) { run(x, $0, b) }, rtol: 2e-2, atol: 2e-3, "dweight")
        expectClose(db, numericGrad(b) { run(x, w, $0) }, rtol: 2e-2, atol: 2e-3, "dbias")
    }

    func testLinearGradients() {
        let (n, ic, oc) = (4, 5, 3)
        let x = randn(n * ic), w = randn(oc * ic), b = randn(oc), g = randn(n * oc)
        func run(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var out = [Float](repeating: 0, count: n * oc)
            Ops.linearForward(out: &out, inp: x, weight: w, bias: b, n: n, ic: ic, oc: oc)
            return dot(out, g)
        }
        var dx = [Float](repeating: 0, count: n * ic), dw = [Float](repeating: 0, count: oc * ic), db = [Float](repeating: 0, count: oc)
        Ops.linearBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: g, inp: x, weight: w, n: n, ic: ic, oc: oc)
        expectClose(dx, numericGrad(x) { run($0, w, b) }, rtol: 1e-2, atol: 1e-3, "dx")
        expectClose(dw, numericGrad(w) { run(x, $0, b) }, rtol: 1e-2, atol: 1e-3, "dweight")
        expectClose(db, numericGrad(b) { run(x, w, $0) }, rtol: 1e-2, atol: 1e-3, "dbias")
    }

    /// The residual form (out = residual + bias + x·Wᵀ in one pass plus a beta = 1 product, as the model's
    /// projections run) against the plain sum, with and without bias, with sizes large enough to split over threads.
    func testLinearForwardWithResidualEqualsResidualPlusLinear() {
        for (n, ic, oc) in [(3, 5, 4), (300, 64, 96)] {
            let x = randn(n * ic), w = randn(oc * ic), b = randn(oc), r = randn(n * oc)
            for useBias in [false, true] {
                var plain = [Float](repeating: 0, count: n * oc)
                b.withUnsafeBufferPointer { bp in
                    Ops.linearForward(out: &plain, inp: x, weight: w, bias: useBias ? bp.baseAddress : nil, n: n, ic: ic, oc: oc)
                }
                for i in 0..<(n * oc) { plain[i] += r[i] }
                var out = [Float](repeating: .nan, count: n * oc)   // garbage: residual + bias must overwrite it
                b.withUnsafeBufferPointer { bp in
                    Ops.linearForward(out: &out, inp: x, weight: w, bias: useBias ? bp.baseAddress : nil, n: n, ic: ic,
                                      oc: oc, residual: r)
                }
                expectClose(out, plain, rtol: 1e-5, atol: 1e-5, "residual n=\(n) bias=\(useBias)")
            }
        }
    }

    func testGeluGradientAndValues() {
        let x = randn(40, 2), g = randn(40)
        var y = [Float](repeating: 0, count: 40)
        Ops.geluForward(out: &y, inp: x, count: 40)
        for i in 0..<40 {   // reference formula in Double
            let xd = Double(x[i])
            let ref = 0.5 * xd * (1 + tanh(0.7978845608028654 * (xd + 0.044715 * xd * xd * xd)))
            XCTAssertEqual(Double(y[i]), ref, accuracy: 1e-6)
        }
        var dx = [Float](repeating: 0, count: 40)
        Ops.geluBackward(dinp: &dx, inp: x, dout: g, count: 40)
        let num = numericGrad(x, eps: 1e-3) { xs in
            var o = [Float](repeating: 0, count: 40)
            Ops.geluForward(out: &o, inp: xs, count: 40)
            return self.dot(o, g)
        }
        expectClose(dx, num, rtol: 1e-2, atol: 2e-3, "dgelu")
    }

    func testCausalAttentionGradientsWithPadding() {
        let (b, t, c, h) = (2, 5, 8, 2)
        let lengths = [5, 3]
        let qkv = randn(b * t * 3 * c), g0 = randn(b * t * c)
        // Upstream gradient is zero on pad rows (as in the model).
        var g = g0
        for i in (lengths[1] * c)..<(t * c) { g[t * c + i] = 0 }
        func run(_ x: [Float]) -> ([Float], [Float]) {
            var out = [Float](repeating: 9, count: b * t * c), att = [Float](repeating: 0, count: b * h * t * t)
            Ops.attentionForward(out: &out, att: &att, qkv: x, lengths: lengths, b: b, t: t, c: c, heads: h)
            return (out, att)
        }
        let (out, att) = run(qkv)
        // Pad rows are zeroed; each attention row is a causal distribution.
        for i in (lengths[1] * c)..<(t * c) { XCTAssertEqual(out[t * c + i], 0) }
        for bi in 0..<b { for hi in 0..<h { for r in 0..<lengths[bi] {
            let row = (0..<t).map { att[((bi * h + hi) * t + r) * t + $0] }
            XCTAssertEqual(row.reduce(0, +), 1, accuracy: 1e-5)
            for j in (r + 1)..<t where j < lengths[bi] { XCTAssertEqual(row[j], 0) }
        } } }
        var dqkv = [Float](repeating: 0, count: b * t * 3 * c), scratch = [Float](repeating: 0, count: t * t)
        Ops.attentionBackward(dqkv: &dqkv, scratch: &scratch, dout: g, qkv: qkv, att: att, lengths: lengths,
                              b: b, t: t, c: c, heads: h)
        let num = numericGrad(qkv) { self.dot(run($0).0, g) }
        expectClose(dqkv, num, rtol: 2e-2, atol: 2e-3, "dqkv")
    }

    func testSoftmaxAndLogSoftmaxGradients() {
        let (n, v) = (3, 6)
        let x = randn(n * v), g = randn(n * v)
        var p = [Float](repeating: 0, count: n * v), l = p
        Ops.softmaxForward(out: &p, inp: x, n: n, v: v)
        Ops.logSoftmaxForward(out: &l, inp: x, n: n, v: v)
        for i in 0..<(n * v) { XCTAssertEqual(log(p[i]), l[i], accuracy: 1e-5) }
        var dx = [Float](repeating: 0, count: n * v)
        Ops.softmaxBackward(dinp: &dx, probs: p, dout: g, n: n, v: v)
        expectClose(dx, numericGrad(x, eps: 1e-3) { xs in
            var o = [Float](repeating: 0, count: n * v); Ops.softmaxForward(out: &o, inp: xs, n: n, v: v); return self.dot(o, g)
        }, rtol: 1e-2, atol: 1e-3, "softmax")
        var dl = [Float](repeating: 0, count: n * v)
        Ops.logSoftmaxBackward(dinp: &dl, logProbs: l, dout: g, n: n, v: v)
        expectClose(dl, numericGrad(x, eps: 1e-3) { xs in
            var o = [Float](repeating: 0, count: n * v); Ops.logSoftmaxForward(out: &o, inp: xs, n: n, v: v); return self.dot(o, g)
        }, rtol: 1e-2, atol: 1e-3, "logsoftmax")
    }

    func testTokenLossWithTemperatureAndEntropyGradient() {
        let v = 7
        let z = randn(v, 2)
        let (target, w, coef, temp): (Int, Float, Float, Float) = (3, 0.7, 0.3, 1.6)
        func loss(_ z: [Float]) -> Double {
            let (lp, h) = Ops.tokenLogProbEntropy(logits: z, v: v, target: target, invTemperature: 1 / temp)
            return -Double(w) * Double(lp) - Double(coef) * Double(h)
        }
        var dz = [Float](repeating: 0, count: v)
        let (lp, h) = Ops.tokenLossBackward(dlogits: &dz, logits: z, v: v, target: target, weight: w,
                                            entropyCoefficient: coef, invTemperature: 1 / temp)
        // Reference values in Double.
        let zd = z.map { Double($0) / Double(temp) }
        let lse = log(zd.map { exp($0) }.reduce(0, +))
        XCTAssertEqual(Double(lp), zd[target] - lse, accuracy: 1e-5)
        XCTAssertEqual(Double(h), -zd.map { exp($0 - lse) * ($0 - lse) }.reduce(0, +), accuracy: 1e-5)
        expectClose(dz, numericGrad(z, eps: 1e-3, loss), rtol: 1e-2, atol: 1e-3, "dlogits")
    }

    func testMaskedCrossEntropyIgnoresMaskedRows() {
        let (n, v) = (4, 5)
        let x = randn(n * v), targets = [0, 4, 2, 1], mask: [Float] = [1, 0, 1, 0.5]
        let loss = Ops.crossEntropyForward(logits: x, targets: targets, mask: mask, n: n, v: v)
        var ref: Double = 0
        for i in 0..<n {
            let row = (0..<v).map { Double(x[i * v + $0]) }
            let lse = log(row.map { exp($0) }.reduce(0, +))
            ref += Double(mask[i]) * (lse - row[targets[i]])
        }
        XCTAssertEqual(Double(loss), ref, accuracy: 1e-5)
        var dx = [Float](repeating: 0, count: n * v)
        Ops.crossEntropyBackward(dlogits: &dx, logits: x, targets: targets, mask: mask, n: n, v: v)
        for j in 0..<v { XCTAssertEqual(dx[v + j], 0) }
        expectClose(dx, numericGrad(x, eps: 1e-3) { Double(Ops.crossEntropyForward(logits: $0, targets: targets, mask: mask, n: n, v: v)) },
                    rtol: 1e-2, atol: 1e-3, "dlogits")
    }
}
