// A small shared-trunk policy/value network for vector observations (actor-critic on multi-step environments).
//
//   h⁰ = x                                   (B, D)
//   zˡ = hˡ⁻¹ · Wˡ + bˡ,  hˡ = act(zˡ)       (B, Hₗ),  Wˡ (Hₗ₋₁, Hₗ), act = tanh or relu, l = 1..L
//   [logits | v] = hᴸ · W_head + b_head      (B, A+1), W_head (H_L, A+1): columns 0..<A are policy logits, A is V(x)
//   π(·|x) = softmax(logits)
// Backward (grads ACCUMULATE into `grads`, given dL/dlogits (B, A) and dL/dv (B)):
//   dW_head += hᴸᵀ·dOut,  db_head += Σ_b dOut,  dhᴸ = dOut·W_headᵀ
//   dzˡ = dhˡ ⊙ act′(zˡ)  (tanh′ = 1 − h², relu′ = [z > 0]),  dWˡ += hˡ⁻¹ᵀ·dzˡ,  dbˡ += Σ_b dzˡ,  dhˡ⁻¹ = dzˡ·Wˡᵀ
// All parameters live in ONE [Float] addressed through `layout` (names "l1.w", "l1.b", …, "head.w", "head.b").
// Matrix products are BLAS.sgemm over the whole batch. Init: W ~ N(0, gain²/fan_in) (gain 1 for tanh, √2 for relu),
// policy columns of the head scaled by 0.01 (near-uniform initial policy), value column by 1; biases 0.
// Not thread-safe: the last forward's activations are cached for backward; one owner at a time.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
import BonfireMath

package struct MLPConfig: Codable, Equatable, Sendable {
    package enum Activation: String, Codable, Sendable { case tanh, relu }
    /// D: observation length.
    package var inputSize: Int
    /// A: number of discrete actions.
    package var actionCount: Int
    /// Hidden layer widths. Default [64, 64].
    package var hiddenSizes: [Int] = [64, 64]
    /// Default tanh.
    package var activation: Activation = .tanh

    package init(inputSize: Int, actionCount: Int, hiddenSizes: [Int] = [64, 64], activation: Activation = .tanh) {
        self.inputSize = inputSize; self.actionCount = actionCount; self.hiddenSizes = hiddenSizes
        self.activation = activation
    }
}

package final class MLP: @unchecked Sendable {
    package let config: MLPConfig
    package let layout: ParameterLayout
    package var params: [Float]
    package var grads: [Float]

    // Cached activations of the last forward: hs[0] = x (B, D), hs[l] = act(zˡ) (B, Hₗ), out (B, A+1).
    private var hs: [[Float]] = []
    private var out: [Float] = []
    private var batch = 0

    package static func makeLayout(_ c: MLPConfig) -> ParameterLayout {
        precondition(c.inputSize > 0 && c.actionCount > 0 && c.hiddenSizes.allSatisfy { $0 > 0 },
                     "MLP: sizes must be positive, got \(c)")
        var layout = ParameterLayout()
        var prev = c.inputSize
        for (i, h) in c.hiddenSizes.enumerated() {
            layout.append("l\(i + 1).w", shape: [prev, h])
            layout.append("l\(i + 1).b", shape: [h])
            prev = h
        }
        layout.append("head.w", shape: [prev, c.actionCount + 1])
        layout.append("head.b", shape: [c.actionCount + 1])
        return layout
    }

    package init(config: MLPConfig, seed: UInt64) {
        self.config = config
        layout = MLP.makeLayout(config)
        params = [Float](repeating: 0, count: layout.totalCount)
        grads = params
        var rng = RNG(seed: seed, stream: 0x6D6C70)
        let gain: Double = config.activation == .relu ? 2.0.squareRoot() : 1
        var prev = config.inputSize
        for (i, h) in config.hiddenSizes.enumerated() {
            let e = layout["l\(i + 1).w"]
            let std = gain / Double(prev).squareRoot()
            for j in e.range { params[j] = Float(rng.normal() * std) }
            prev = h
        }
        let e = layout["head.w"], a1 = config.actionCount + 1
        let std = 1 / Double(prev).squareRoot()
        for j in e.range {
            let column = (j - e.offset) % a1
            params[j] = Float(rng.normal() * std * (column == config.actionCount ? 1 : 0.01))
        }
    }

    package var parameterCount: Int { params.count }

    package func zeroGrad() { for i in grads.indices { grads[i] = 0 } }

    /// Forward over a batch. `observations` (B, D) row-major. Returns logits (B, A) and values (B).
    /// Caches activations for `backward`.
    package func forward(_ observations: [Float], batch B: Int) -> (logits: [Float], values: [Float]) {
        let D = config.inputSize, A = config.actionCount
        precondition(B >= 0 && observations.count == B * D,
                     "MLP.forward: observations \(observations.count) != B \(B) × D \(D)")
        batch = B
        hs = [observations]
        var prev = D
        for (i, h) in config.hiddenSizes.enumerated() {
            let w = layout["l\(i + 1).w"].offset, b = layout["l\(i + 1).b"].offset
            var z = [Float](repeating: 0, count: B * h)   // (B, H)
            for r in 0..<B { for j in 0..<h { z[r * h + j] = params[b + j] } }
            gemm(hs[i], transA: false, w, transB: false, m: B, n: h, k: prev, beta: 1, into: &z)
            switch config.activation {
            case .tanh: for j in z.indices { z[j] = tanhf(z[j]) }
            case .relu: for j in z.indices { z[j] = max(0, z[j]) }
            }
            hs.append(z)
            prev = h
        }
        let w = layout["head.w"].offset, b = layout["head.b"].offset, a1 = A + 1
        out = [Float](repeating: 0, count: B * a1)   // (B, A+1)
        for r in 0..<B { for j in 0..<a1 { out[r * a1 + j] = params[b + j] } }
        gemm(hs.last!, transA: false, w, transB: false, m: B, n: a1, k: prev, beta: 1, into: &out)
        var logits = [Float](repeating: 0, count: B * A), values = [Float](repeating: 0, count: B)
        for r in 0..<B {
            for j in 0..<A { logits[r * A + j] = out[r * a1 + j] }
            values[r] = out[r * a1 + A]
        }
        return (logits, values)
    }

    /// Backward through the last forward. dLogits (B, A), dValues (B). Accumulates into `grads`.
    package func backward(dLogits: [Float], dValues: [Float]) {
        let B = batch, A = config.actionCount, a1 = A + 1
        precondition(dLogits.count == B * A && dValues.count == B,
                     "MLP.backward: dLogits \(dLogits.count) (need B·A = \(B)·\(A)), dValues \(dValues.count) (need \(B))")
        var dOut = [Float](repeating: 0, count: B * a1)   // (B, A+1)
        for r in 0..<B {
            for j in 0..<A { dOut[r * a1 + j] = dLogits[r * A + j] }
            dOut[r * a1 + A] = dValues[r]
        }
        let L = config.hiddenSizes.count
        var prev = config.hiddenSizes.last!
        let hw = layout["head.w"].offset, hb = layout["head.b"].offset
        gradGemm(hs[L], dOut, m: prev, n: a1, k: B, at: hw)
        for r in 0..<B { for j in 0..<a1 { grads[hb + j] += dOut[r * a1 + j] } }
        var dh = [Float](repeating: 0, count: B * prev)   // (B, H_L) = dOut · W_headᵀ
        gemm(dOut, transA: false, hw, transB: true, m: B, n: prev, k: a1, beta: 0, into: &dh)
        for l in stride(from: L, through: 1, by: -1) {
            let h = config.hiddenSizes[l - 1]
            prev = l >= 2 ? config.hiddenSizes[l - 2] : config.inputSize
            let act = hs[l]
            switch config.activation {
            case .tanh: for j in dh.indices { dh[j] *= 1 - act[j] * act[j] }
            case .relu: for j in dh.indices where act[j] <= 0 { dh[j] = 0 }
            }
            let w = layout["l\(l).w"].offset, b = layout["l\(l).b"].offset
            gradGemm(hs[l - 1], dh, m: prev, n: h, k: B, at: w)
            for r in 0..<B { for j in 0..<h { grads[b + j] += dh[r * h + j] } }
            if l > 1 {
                var dPrev = [Float](repeating: 0, count: B * prev)   // (B, Hₗ₋₁) = dzˡ · Wˡᵀ
                gemm(dh, transA: false, w, transB: true, m: B, n: prev, k: h, beta: 0, into: &dPrev)
                dh = dPrev
            }
        }
    }

    /// c (m×n) = a (m×k) · params[w…] (k×n or, transposed, n×k) + beta·c.
    private func gemm(_ a: [Float], transA: Bool, _ w: Int, transB: Bool, m: Int, n: Int, k: Int, beta: Float,
                      into c: inout [Float]) {
        a.withUnsafeBufferPointer { pa in
            params.withUnsafeBufferPointer { pp in
                c.withUnsafeMutableBufferPointer { pc in
                    BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!,
                               b: pp.baseAddress! + w, beta: beta, c: pc.baseAddress!)
                }
            }
        }
    }

    /// grads[at…] (m×n) += aᵀ·d, a (k×m), d (k×n).
    private func gradGemm(_ a: [Float], _ d: [Float], m: Int, n: Int, k: Int, at: Int) {
        if k == 0 { return }
        a.withUnsafeBufferPointer { pa in
            d.withUnsafeBufferPointer { pd in
                grads.withUnsafeMutableBufferPointer { pg in
                    BLAS.sgemm(transA: true, transB: false, m: m, n: n, k: k, a: pa.baseAddress!,
                               b: pd.baseAddress!, beta: 1, c: pg.baseAddress! + at)
                }
            }
        }
    }
}

extension MLP {
    /// log softmax of row r of (B, A) logits, in Double for stable log-probs and entropies.
    package static func logSoftmax(_ logits: [Float], row r: Int, count A: Int) -> [Double] {
        var mx = -Double.infinity
        for j in 0..<A { mx = max(mx, Double(logits[r * A + j])) }
        var s = 0.0
        for j in 0..<A { s += exp(Double(logits[r * A + j]) - mx) }
        let lse = mx + log(s)
        return (0..<A).map { Double(logits[r * A + $0]) - lse }
    }
}
