// Optimisation helpers over one flat parameter buffer.
//   AdamW (Loshchilov & Hutter; PyTorch's AdamW update order), step t = 1, 2, …:
//     θ ← θ − η·λ·θ                     (decoupled weight decay, only where decayMask = 1)
//     m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²
//     θ ← θ − η · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε)
//   Global grad-norm clipping: ‖g‖₂ > c ⇒ g ← g·c/‖g‖₂ (returns the pre-clip norm).
//   LR schedule: linear warmup to `peak` over `warmupSteps`, then cosine decay to `minRate` at `totalSteps`.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
import CBonfireKernels

package struct AdamW: Sendable, Equatable {
    package var learningRate: Float
    package var beta1: Float
    package var beta2: Float
    package var eps: Float
    package var weightDecay: Float
    /// First/second moment estimates, shape (params.count); sized on the first update.
    package var m: [Float] = []
    package var v: [Float] = []
    /// Number of updates applied so far.
    package var step = 0
    /// Per-parameter weight-decay switch (1 = decay). Empty means "decay everything".
    package var decayMask: [Float] = []

    /// `layout`: decay only ≥2-D tensors (matrices, embeddings) of that layout; nil decays every parameter.
    package init(learningRate: Float = 3e-4, beta1: Float = 0.9, beta2: Float = 0.95, eps: Float = 1e-8,
                 weightDecay: Float = 0.1, layout: ParameterLayout? = nil) {
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay
        if let layout { decayMask = layout.weightDecayMask }
    }

    /// One AdamW step. `learningRate` overrides the stored rate for this step (schedules).
    /// Fast path: the vectorised C kernel (bfk_adamw), the same operations in the same order, unfused: bit-identical
    /// to `updatePlain` below.
    package mutating func update(params: inout [Float], grads: [Float], learningRate lrOverride: Float? = nil) {
        applyStep(params: &params, grads: grads, learningRate: lrOverride) { s in
            // Elementwise: chunks over `Parallel.threads` change nothing in the result.
            Parallel.forRanges(s.p.count, minItems: 1 << 16) { r, _ in
                let o = r.lowerBound
                bfk_adamw(s.p.baseAddress! + o, s.g.baseAddress! + o, s.m.baseAddress! + o, s.v.baseAddress! + o,
                          s.hasMask ? s.mask.baseAddress! + o : nil, r.count, s.lr, s.b1, s.b2, s.eps, s.wd, s.bc1, s.bc2)
            }
        }
    }

    /// Plain twin of `update` (the Swift loop).
    package mutating func updatePlain(params: inout [Float], grads: [Float], learningRate lrOverride: Float? = nil) {
        applyStep(params: &params, grads: grads, learningRate: lrOverride) { s in
            for i in 0..<s.p.count {
                let decay = s.hasMask ? s.mask[i] * s.wd : s.wd
                var x = s.p[i] * (1 - s.lr * decay)
                let gi = s.g[i]
                let mi = s.b1 * s.m[i] + (1 - s.b1) * gi
                let vi = s.b2 * s.v[i] + (1 - s.b2) * gi * gi
                s.m[i] = mi; s.v[i] = vi
                x -= s.lr * (mi / s.bc1) / ((vi / s.bc2).squareRoot() + s.eps)
                s.p[i] = x
            }
        }
    }

    /// The buffers and constants of one step, for the update loop (fast or plain).
    struct StepState {
        var p: UnsafeMutableBufferPointer<Float>
        var g: UnsafeBufferPointer<Float>
        var m: UnsafeMutableBufferPointer<Float>
        var v: UnsafeMutableBufferPointer<Float>
        var mask: UnsafeBufferPointer<Float>
        var hasMask: Bool
        var lr, b1, b2, eps, wd, bc1, bc2: Float
    }

    /// Shape checks, lazy state, step count and bias corrections shared by both update loops.
    private mutating func applyStep(params: inout [Float], grads: [Float], learningRate lrOverride: Float?,
                               _ loop: (StepState) -> Void) {
        precondition(params.count == grads.count, "AdamW: params \(params.count) vs grads \(grads.count)")
        precondition(decayMask.isEmpty || decayMask.count == params.count,
                     "AdamW: decayMask \(decayMask.count) vs params \(params.count)")
        if m.isEmpty { m = [Float](repeating: 0, count: params.count); v = m }
        precondition(m.count == params.count && v.count == params.count,
                     "AdamW: state sized \(m.count) but params have \(params.count)")
        step += 1
        let lr = lrOverride ?? learningRate
        let bc1 = 1 - powf(beta1, Float(step)), bc2 = 1 - powf(beta2, Float(step))
        let (b1, b2, eps, wd) = (beta1, beta2, self.eps, weightDecay)
        let hasMask = !decayMask.isEmpty
        params.withUnsafeMutableBufferPointer { p in
            grads.withUnsafeBufferPointer { g in
                m.withUnsafeMutableBufferPointer { mm in
                    v.withUnsafeMutableBufferPointer { vv in
                        decayMask.withUnsafeBufferPointer { mask in
                            loop(StepState(p: p, g: g, m: mm, v: vv, mask: mask, hasMask: hasMask,
                                           lr: lr, b1: b1, b2: b2, eps: eps, wd: wd, bc1: bc1, bc2: bc2))
                        }
                    }
                }
            }
        }
    }
}

/// Scales `grads` so that its global L2 norm is at most `maxNorm`; returns the norm before clipping.
/// Fast path: Σ g² in Double over fixed chunks of `clipChunk` floats (the C kernel sums each chunk in 8 fixed
/// lanes), the chunk sums added in chunk order, so the norm does not depend on the thread count; chunks and the
/// scaling run over `Parallel.threads`. `clipGradNormPlain` is the reference (one sequential Double sum).
@discardableResult
package func clipGradNorm(_ grads: inout [Float], maxNorm: Float) -> Float {
    let n = grads.count, chunks = (n + clipChunk - 1) / clipChunk
    var partial = [Double](repeating: 0, count: chunks)
    grads.withUnsafeBufferPointer { g in
        partial.withUnsafeMutableBufferPointer { part in
            Parallel.forRanges(chunks, minItems: 2) { r, _ in
                for i in r { part[i] = Kernels.sumOfSquares(g.baseAddress! + i * clipChunk, count: min(clipChunk, n - i * clipChunk)) }
            }
        }
    }
    var s: Double = 0
    for x in partial { s += x }
    let norm = Float(s.squareRoot())
    if maxNorm > 0, norm > maxNorm, norm.isFinite {
        let k = maxNorm / (norm + 1e-6)
        grads.withUnsafeMutableBufferPointer { g in
            Parallel.forRanges(n, minItems: 1 << 16) { r, _ in for i in r { g[i] *= k } }
        }
    }
    return norm
}

/// Chunk of clipGradNorm's sum of squares.
let clipChunk = 1 << 16

/// Plain twin of `clipGradNorm`.
@discardableResult
package func clipGradNormPlain(_ grads: inout [Float], maxNorm: Float) -> Float {
    var s: Double = 0
    grads.withUnsafeBufferPointer { g in for x in g { s += Double(x) * Double(x) } }
    let norm = Float(s.squareRoot())
    if maxNorm > 0, norm > maxNorm, norm.isFinite {
        let k = maxNorm / (norm + 1e-6)
        grads.withUnsafeMutableBufferPointer { g in for i in g.indices { g[i] *= k } }
    }
    return norm
}

/// Linear warmup then cosine decay. Steps are 0-based: rate(at: 0) = peak / warmupSteps.
package struct LRSchedule: Codable, Equatable, Sendable {
    package var peak: Float
    package var warmupSteps: Int
    package var totalSteps: Int
    package var minRate: Float

    package init(peak: Float, warmupSteps: Int = 0, totalSteps: Int, minRate: Float = 0) {
        self.peak = peak; self.warmupSteps = warmupSteps; self.totalSteps = totalSteps; self.minRate = minRate
    }

    package func rate(at step: Int) -> Float {
        if step < warmupSteps { return peak * Float(step + 1) / Float(warmupSteps) }
        if step >= totalSteps { return minRate }
        let span = max(1, totalSteps - warmupSteps)
        let progress = Float(step - warmupSteps) / Float(span)
        return minRate + 0.5 * (peak - minRate) * (1 + cosf(Float.pi * progress))
    }
}
