// Llama-family layers as forward/backward pairs (same conventions as Ops.swift: raw row-major buffers, shapes beside
// each buffer, backward ACCUMULATES into gradient outputs). N = rows, C = channels, H = query heads, KV = key/value
// heads (H % KV == 0, query head h reads kv head h / (H/KV)), hd = head dim, F = MLP hidden size.
//
// Maths
//   RMSNorm       r = 1/√(mean(x²) + ε),  y = x·r·w
//                 dx = r·(w⊙dy) − x·r³·mean(x⊙w⊙dy),   dw = Σ_n dy⊙x·r
//   RoPE          per head, HF "rotate_half" pairing (i, i + hd/2), angle θ_i(p) = p·f_i:
//                 y_i = x_i cos − x_{i+hd/2} sin,  y_{i+hd/2} = x_{i+hd/2} cos + x_i sin
//                 a rotation, so dx = Rᵀ dy (the same map with sin → −sin)
//   SiLU/SwiGLU   y = silu(g)·u,  silu(g) = g·σ(g);  dg = dy·u·σ(g)(1 + g(1 − σ(g))),  du = dy·silu(g)
//   GQA attention per (b, head h, kv head g = h / (H/KV)): A = softmax_causal(Q_h·K_gᵀ/√hd), Y_h = A·V_g
//                 dA = dY·V_gᵀ,  dV_g += Aᵀ·dY,  dS = A ⊙ (dA − rowsum(A ⊙ dA)),  dQ_h = dS·K_g/√hd,  dK_g += dSᵀ·Q_h/√hd

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

extension Ops {
    // MARK: RMSNorm

    /// out (N, C), rstd (N) ← inp (N, C), weight (C).
    package static func rmsNormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                                       inp: UnsafePointer<Float>, weight: UnsafePointer<Float>, n: Int, c: Int, eps: Float) {
        for i in 0..<n {
            let x = inp + i * c, o = out + i * c
            var ss: Float = 0
            for j in 0..<c { ss += x[j] * x[j] }
            let r = 1 / (ss / Float(c) + eps).squareRoot()
            for j in 0..<c { o[j] = x[j] * r * weight[j] }
            rstd[i] = r
        }
    }

    /// dinp (N, C) += …, dweight (C) += … ← dout (N, C), inp (N, C), weight (C), rstd (N).
    package static func rmsNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                        dout: UnsafePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                        rstd: UnsafePointer<Float>, n: Int, c: Int) {
        for i in 0..<n {
            let x = inp + i * c, g = dout + i * c, dx = dinp + i * c
            let r = rstd[i]
            var s: Float = 0
            for j in 0..<c { s += x[j] * weight[j] * g[j] }
            let k = r * r * r * s / Float(c)
            for j in 0..<c {
                dweight[j] += g[j] * x[j] * r
                dx[j] += r * weight[j] * g[j] - x[j] * k
            }
        }
    }

    // MARK: rotary position embedding

    /// Rotates x (N, heads·hd) in place: row n sits at position positions[n]; cos/sin are tables (P, hd/2) with
    /// P > every position. `inverse` applies Rᵀ (the backward pass: dx = Rᵀ dy, in place on the gradient).
    package static func rope(_ x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int>, n: Int, heads: Int, headDim hd: Int,
                             cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, inverse: Bool = false) {
        precondition(hd % 2 == 0, "rope: head dim \(hd) must be even")
        let half = hd / 2, sgn: Float = inverse ? -1 : 1
        for i in 0..<n {
            let cr = cos + positions[i] * half, sr = sin + positions[i] * half
            for h in 0..<heads {
                let v = x + i * heads * hd + h * hd
                for j in 0..<half {
                    let a = v[j], b = v[j + half], c = cr[j], s = sgn * sr[j]
                    v[j] = a * c - b * s
                    v[j + half] = b * c + a * s
                }
            }
        }
    }

    // MARK: SwiGLU

    /// out (n) = silu(gate (n)) · up (n).
    package static func swigluForward(out: UnsafeMutablePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
        }
    }

    /// dgate (n) += …, dup (n) += … ← dout (n), gate (n), up (n).
    package static func swigluBackward(dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>,
                                       dout: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i], sg = 1 / (1 + expf(-g))
            dup[i] += dout[i] * g * sg
            dgate[i] += dout[i] * up[i] * sg * (1 + g * (1 - sg))
        }
    }

    // MARK: grouped-query causal attention

    /// out (B, T, H·hd), att (B, H, T, T) probabilities ← q (B, T, H·hd), k (B, T, KV·hd), v (B, T, KV·hd).
    /// Sequence b has lengths[b] ≤ T real rows; rows ≥ L_b of `out` are set to 0.
    package static func gqaAttentionForward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                            q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                            lengths: UnsafePointer<Int>, b batch: Int, t seqLen: Int,
                                            heads: Int, kvHeads: Int, headDim hd: Int) {
        precondition(kvHeads > 0 && heads % kvHeads == 0, "gqaAttention: heads \(heads) not a multiple of kvHeads \(kvHeads)")
        let Q = heads * hd, K = kvHeads * hd, group = heads / kvHeads
        let scale = 1 / Float(hd).squareRoot()
        for b in 0..<batch {
            let len = lengths[b]
            precondition(len >= 1 && len <= seqLen, "gqaAttention: length \(len) of sequence \(b) not in 1...\(seqLen)")
            for h in 0..<heads {
                let g = h / group
                let qh = q + b * seqLen * Q + h * hd, kg = k + b * seqLen * K + g * hd, vg = v + b * seqLen * K + g * hd
                let a = att + (b * heads + h) * seqLen * seqLen
                BLAS.sgemm(transA: false, transB: true, m: len, n: len, k: hd, alpha: scale,
                           a: qh, lda: Q, b: kg, ldb: K, beta: 0, c: a, ldc: seqLen)
                causalSoftmaxPlain(a, len: len, ld: seqLen)
                BLAS.sgemm(transA: false, transB: false, m: len, n: hd, k: len,
                           a: a, lda: seqLen, b: vg, ldb: K, beta: 0, c: out + b * seqLen * Q + h * hd, ldc: Q)
            }
            let padStart = out + (b * seqLen + len) * Q
            for i in 0..<((seqLen - len) * Q) { padStart[i] = 0 }
        }
    }

    /// dq (B, T, H·hd) += …, dk, dv (B, T, KV·hd) += … ← dout (B, T, H·hd), q, k, v, att. `scratch` holds T·T floats.
    package static func gqaAttentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                                             dv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                             dout: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                             v: UnsafePointer<Float>, att: UnsafePointer<Float>, lengths: UnsafePointer<Int>,
                                             b batch: Int, t seqLen: Int, heads: Int, kvHeads: Int, headDim hd: Int) {
        let Q = heads * hd, K = kvHeads * hd, group = heads / kvHeads
        let scale = 1 / Float(hd).squareRoot()
        for b in 0..<batch {
            let len = lengths[b]
            for h in 0..<heads {
                let g = h / group
                let qo = b * seqLen * Q + h * hd, ko = b * seqLen * K + g * hd
                let a = att + (b * heads + h) * seqLen * seqLen
                let dy = dout + qo
                let da = scratch   // (L, L), leading dim T
                BLAS.sgemm(transA: false, transB: true, m: len, n: len, k: hd,
                           a: dy, lda: Q, b: v + ko, ldb: K, beta: 0, c: da, ldc: seqLen)
                BLAS.sgemm(transA: true, transB: false, m: len, n: hd, k: len,
                           a: a, lda: seqLen, b: dy, ldb: Q, beta: 1, c: dv + ko, ldc: K)
                causalSoftmaxBackwardPlain(da, a, len: len, ld: seqLen, scale: scale)
                BLAS.sgemm(transA: false, transB: false, m: len, n: hd, k: len,
                           a: da, lda: seqLen, b: k + ko, ldb: K, beta: 1, c: dq + qo, ldc: Q)
                BLAS.sgemm(transA: true, transB: false, m: len, n: hd, k: len,
                           a: da, lda: seqLen, b: q + qo, ldb: Q, beta: 1, c: dk + ko, ldc: K)
            }
        }
    }
}
