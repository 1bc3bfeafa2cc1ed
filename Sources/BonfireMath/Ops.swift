// Transformer layers as forward/backward pairs over raw row-major Float buffers (llm.c style).
// Shapes are written beside each buffer: N = rows (B·T), C = channels, V = vocabulary, H = heads, hd = C/H.
// Every backward ACCUMULATES (+=) into its gradient outputs unless the doc says otherwise; heavy products go
// through BLAS.sgemm, everything else is a plain loop.
//
// Maths
//   embedding     out[n] = table[id[n]]                        d table[id[n]] += d out[n]
//   layernorm     x̂ = (x − μ)·r, r = 1/√(σ² + 1e-5),  y = x̂·w + b
//                 dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)),  dx̂ = dy·w,  dw = Σ dy·x̂,  db = Σ dy
//   linear        y = x·Wᵀ + b  (W is (OC, IC) like torch.nn.Linear)
//                 dx = dy·W,  dW = dyᵀ·x,  db = Σ_n dy
//   GELU (tanh)   y = ½x(1 + tanh u),  u = √(2/π)(x + 0.044715x³)
//                 dy/dx = ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²)
//   attention     per (b, head): A = softmax_causal(Q·Kᵀ/√hd) (rows t attend to j ≤ t < L_b),  Y = A·V
//                 dA = dY·Vᵀ,  dV = Aᵀ·dY,  dS = A ⊙ (dA − rowsum(A ⊙ dA)),  dQ = dS·K/√hd,  dK = dSᵀ·Q/√hd
//   softmax       p = exp(x − lse(x));  dx = p ⊙ (dp − Σ p·dp)
//   log-softmax   ℓ = x − lse(x);       dx = dℓ − p·Σ dℓ
//   token loss    z = logits/T, ℓ = log-softmax(z), H = −Σ p·ℓ;  loss = −w·ℓ[y] − c·H
//                 dz_j = w·(p_j − 1{j=y}) + c·p_j·(ℓ_j + H),  dlogits = dz/T.  Cross-entropy with a loss mask
//                 is the case w = mask, c = 0, T = 1.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
import CBonfireKernels

package enum Ops {
    package static let layerNormEps: Float = 1e-5
    package static let geluScale: Float = 0.7978845608028654   // √(2/π)

    // MARK: embedding

    /// out (N, C) (+)= table[ids[n]] (rows of table (V, C)). `accumulate` adds instead of overwriting.
    package static func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int>, table: UnsafePointer<Float>,
                                         n: Int, c: Int, vocab: Int, accumulate: Bool = false) {
        for i in 0..<n {
            let id = ids[i]
            precondition(id >= 0 && id < vocab, "embedding: id \(id) out of range 0..<\(vocab) at row \(i)")
            let o = out + i * c, t = table + id * c
            if accumulate { for j in 0..<c { o[j] += t[j] } } else { for j in 0..<c { o[j] = t[j] } }
        }
    }

    /// dtable (V, C) += dout (N, C) scattered by ids (N).
    package static func embeddingBackward(dtable: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int>,
                                          dout: UnsafePointer<Float>, n: Int, c: Int) {
        for i in 0..<n {
            let d = dtable + ids[i] * c, g = dout + i * c
            for j in 0..<c { d[j] += g[j] }
        }
    }

    // MARK: layernorm

    /// out (N, C), mean (N), rstd (N) ← inp (N, C), weight (C), bias (C).
    /// Fast path: the C kernel (16-lane sums, AVX-512/AVX2 at run time), rows split over `Parallel.threads`;
    /// `layerNormForwardPlain` is the reference.
    package static func layerNormForward(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                         rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                         weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, n: Int, c: Int) {
        Parallel.forRanges(n, minItems: Parallel.minRows(width: c)) { r, _ in
            bfk_layernorm_forward(out + r.lowerBound * c, mean + r.lowerBound, rstd + r.lowerBound,
                                  inp + r.lowerBound * c, weight, bias, r.count, c)
        }
    }

    /// Plain twin of `layerNormForward`.
    package static func layerNormForwardPlain(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                                         rstd: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                         weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, n: Int, c: Int) {
        let invC = 1 / Float(c)
        for i in 0..<n {
            let x = inp + i * c, o = out + i * c
            var m: Float = 0
            for j in 0..<c { m += x[j] }
            m *= invC
            var v: Float = 0
            for j in 0..<c { let d = x[j] - m; v += d * d }
            v *= invC
            let r = 1 / (v + layerNormEps).squareRoot()
            for j in 0..<c { o[j] = (x[j] - m) * r * weight[j] + bias[j] }
            mean[i] = m; rstd[i] = r
        }
    }

    /// dinp (N, C) += …, dweight (C) += …, dbias (C) += … ← dout (N, C), inp (N, C), weight (C), mean/rstd (N).
    /// Fast path: the C kernel; with threads, range k computes dinp for the k-th block of rows and dweight/dbias
    /// for the k-th block of columns (over all rows, in row order), so no float is summed across threads and the
    /// result is bit-identical to one thread. `layerNormBackwardPlain` is the reference.
    package static func layerNormBackward(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                          dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                          inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                          mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, n: Int, c: Int) {
        let k = min(Parallel.ranges(n, minItems: Parallel.minRows(width: c)), c)
        if k <= 1 { bfk_layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, n, c); return }
        Parallel.forRanges(k) { slots, _ in
            for s in slots {
                let r0 = s * n / k, r1 = (s + 1) * n / k
                bfk_layernorm_backward_rows(dinp + r0 * c, dout + r0 * c, inp + r0 * c, weight, mean + r0, rstd + r0,
                                            r1 - r0, c)
                bfk_layernorm_backward_cols(dweight, dbias, dout, inp, mean, rstd, n, c, s * c / k, (s + 1) * c / k)
            }
        }
    }

    /// Plain twin of `layerNormBackward`.
    package static func layerNormBackwardPlain(dinp: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>,
                                          dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                          inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                          mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, n: Int, c: Int) {
        let invC = 1 / Float(c)
        for i in 0..<n {
            let x = inp + i * c, g = dout + i * c, dx = dinp + i * c
            let m = mean[i], r = rstd[i]
            var dnMean: Float = 0, dnNormMean: Float = 0
            for j in 0..<c {
                let norm = (x[j] - m) * r
                let dn = weight[j] * g[j]
                dnMean += dn; dnNormMean += dn * norm
            }
            dnMean *= invC; dnNormMean *= invC
            for j in 0..<c {
                let norm = (x[j] - m) * r
                let dn = weight[j] * g[j]
                dbias[j] += g[j]
                dweight[j] += norm * g[j]
                dx[j] += (dn - dnMean - norm * dnNormMean) * r
            }
        }
    }

    // MARK: linear

    /// out (N, OC) = inp (N, IC) · weightᵀ (weight (OC, IC)) + bias (OC); `accumulate` adds to out (residual add).
    /// `residual` (N, OC) (the model's residual adds): out = (residual + bias) + inp · weightᵀ. `residual` may not
    /// overlap out.
    /// Fast path (`BLAS.fuses`: the own AVX-512 kernel): residual + bias is written into each tile of out by the
    /// product's first k-block (`BLAS.Epilogue`), right before the block sum is added to it, instead of in a pass
    /// over all of out beforehand; the same bits as `linearForwardSeparate`, which runs everywhere else.
    package static func linearForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                      bias: UnsafePointer<Float>?, n: Int, ic: Int, oc: Int, accumulate: Bool = false,
                                      residual: UnsafePointer<Float>? = nil) {
        precondition(residual == nil || !accumulate, "linearForward: residual and accumulate exclude each other")
        if !accumulate, bias != nil || residual != nil, BLAS.fuses(m: n, n: oc, k: ic) {
            BLAS.sgemm(transA: false, transB: true, m: n, n: oc, k: ic, a: inp, b: weight, c: out,
                       epilogue: BLAS.Epilogue(bias: bias, addend: residual, ldAddend: oc))
            return
        }
        linearForwardSeparate(out: out, inp: inp, weight: weight, bias: bias, n: n, ic: ic, oc: oc,
                              accumulate: accumulate, residual: residual)
    }

    /// Plain twin of `linearForward` (and its path on OpenBLAS): separate passes over out.
    /// Without `accumulate`, out is first filled with bias rows and the product added to it (beta = 1): one pass over
    /// out instead of OpenBLAS's zeroing plus a bias pass. Row loops are split over `Parallel.threads`.
    /// With `residual`, residual + bias is written in one pass over rows before the product adds to it (instead of
    /// copying the residual, multiplying with beta = 1 and adding the bias in a third pass).
    package static func linearForwardSeparate(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, n: Int,
                                              ic: Int, oc: Int, accumulate: Bool = false,
                                              residual: UnsafePointer<Float>? = nil) {
        precondition(residual == nil || !accumulate, "linearForward: residual and accumulate exclude each other")
        if residual != nil || (bias != nil && !accumulate) {
            Parallel.forRanges(n, minItems: Parallel.minRows(width: oc)) { r, _ in
                BLAS.startRows(out, ldc: oc, rows: r, n: oc, addend: residual, ldAddend: oc, bias: bias)
            }
            BLAS.sgemm(transA: false, transB: true, m: n, n: oc, k: ic, a: inp, b: weight, beta: 1, c: out)
            return
        }
        BLAS.sgemm(transA: false, transB: true, m: n, n: oc, k: ic, a: inp, b: weight, beta: accumulate ? 1 : 0, c: out)
        if let bias {
            Parallel.forRanges(n, minItems: Parallel.minRows(width: oc)) { r, _ in
                for i in r { let o = out + i * oc; for j in 0..<oc { o[j] += bias[j] } }
            }
        }
    }

    /// The MLP's c_fc: geluOut (N, OC) = GELU(pre) (c_proj's input) of the pre-activation pre = inp·Wᵀ + bias, and
    /// out (N, OC) = GELU'(pre) with `keepLocal` (a forward that a backward follows), else pre itself. The backward
    /// needs only GELU'(pre) (`linearBackwardGELU` multiplies by it): computing it here, from the value GELU is
    /// computed from, replaces the backward's separate GELU' pass over pre (a compute-bound tanh per element: ≈ −14 ms
    /// of the small config's ≈ 990 ms train step, docs/performance.md seventh pass). Fused path (`BLAS.fuses`): the bias in the
    /// product's first k-block, GELU (and GELU') on each tile in its last (`BLAS.Epilogue`); the same bits as
    /// `linearForwardGELUSeparate`, which runs otherwise. geluOut may not overlap out.
    package static func linearForwardGELU(out: UnsafeMutablePointer<Float>, geluOut: UnsafeMutablePointer<Float>,
                                          keepLocal: Bool, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                          bias: UnsafePointer<Float>?, n: Int, ic: Int, oc: Int) {
        if BLAS.fuses(m: n, n: oc, k: ic) {
            BLAS.sgemm(transA: false, transB: true, m: n, n: oc, k: ic, a: inp, b: weight, c: out,
                       epilogue: BLAS.Epilogue(bias: bias, geluOut: geluOut, ldGeluOut: oc, geluLocalInC: keepLocal))
            return
        }
        linearForwardGELUSeparate(out: out, geluOut: geluOut, keepLocal: keepLocal, inp: inp, weight: weight,
                                  bias: bias, n: n, ic: ic, oc: oc)
    }

    /// Plain twin of `linearForwardGELU`: `linearForwardSeparate`, then `geluForwardLocal` (or `geluForward`) over out.
    package static func linearForwardGELUSeparate(out: UnsafeMutablePointer<Float>,
                                                  geluOut: UnsafeMutablePointer<Float>, keepLocal: Bool,
                                                  inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                                  bias: UnsafePointer<Float>?, n: Int, ic: Int, oc: Int) {
        linearForwardSeparate(out: out, inp: inp, weight: weight, bias: bias, n: n, ic: ic, oc: oc)
        if keepLocal { geluForwardLocal(out: geluOut, x: out, count: n * oc) }
        else { geluForward(out: geluOut, inp: out, count: n * oc) }
    }

    /// The MLP's c_proj backward through GELU: dinp (N, IC) = (dout · W) ⊙ geluLocal (N, IC) — written, not added:
    /// d of c_fc's pre-activation, with geluLocal = GELU'(pre-activation) kept by `linearForwardGELU` —,
    /// dweight (OC, IC) += doutᵀ·inp, dbias (OC) += Σ_n dout (`dbias` may be nil). The multiply is a separate pass
    /// (`mulSet`): fused into the dX product's tiles it measured no faster (docs/performance.md, seventh pass). The
    /// same bits as `linearBackward` followed by `geluBackward(accumulate: false)` from the pre-activation, which this
    /// replaced (OpsFusedLinearTests). geluLocal may not overlap dinp.
    package static func linearBackwardGELU(dinp: UnsafeMutablePointer<Float>, geluLocal: UnsafePointer<Float>,
                                           dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>?,
                                           dout: UnsafePointer<Float>, inp: UnsafePointer<Float>,
                                           weight: UnsafePointer<Float>, n: Int, ic: Int, oc: Int) {
        linearBackward(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp, weight: weight, n: n, ic: ic,
                       oc: oc, accumulateInput: false)
        mulSet(dinp, by: geluLocal, count: n * ic)
    }

    /// dinp (N, IC) (+)= dout·W, dweight (OC, IC) += doutᵀ·inp, dbias (OC) += Σ_n dout. `dinp` may be nil.
    /// dbias: each column sums its rows in order (thread-independent). On the own kernel (`BLAS.fuses`) inside the dW
    /// product (`BLAS.Epilogue.aSums`: while it packs dout, for oc > 512), else split over `Parallel.threads` by
    /// columns.
    package static func linearBackward(dinp: UnsafeMutablePointer<Float>?, dweight: UnsafeMutablePointer<Float>,
                                       dbias: UnsafeMutablePointer<Float>?, dout: UnsafePointer<Float>,
                                       inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                       n: Int, ic: Int, oc: Int, accumulateInput: Bool = true) {
        if let dinp {
            BLAS.sgemm(transA: false, transB: false, m: n, n: ic, k: oc, a: dout, b: weight,
                       beta: accumulateInput ? 1 : 0, c: dinp)
        }
        if let dbias, BLAS.fuses(m: oc, n: ic, k: n) {
            // Fast path: dbias summed while the dW product packs dout (oc > 512; else in its own loop there), each
            // column over rows 0..<n in order as below: the same bits.
            BLAS.sgemm(transA: true, transB: false, m: oc, n: ic, k: n, a: dout, b: inp, beta: 1, c: dweight,
                       epilogue: BLAS.Epilogue(aSums: dbias))
            return
        }
        BLAS.sgemm(transA: true, transB: false, m: oc, n: ic, k: n, a: dout, b: inp, beta: 1, c: dweight)
        if let dbias {
            let k = n * oc >= 1 << 15 ? min(Parallel.ranges(oc), oc / 16) : 1
            Parallel.forRanges(max(k, 1)) { parts, _ in
                for part in parts {
                    let j0 = part * oc / max(k, 1), j1 = (part + 1) * oc / max(k, 1)
                    for i in 0..<n { let g = dout + i * oc; for j in j0..<j1 { dbias[j] += g[j] } }
                }
            }
        }
    }

    // MARK: GELU

    /// out (n) = GELU_tanh(inp (n)). Fast path: the C kernel (the same fastTanh, vectorised); plain twin below.
    /// Elementwise, so split into `Parallel.threads` chunks.
    package static func geluForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        Parallel.forRanges(count, minItems: 1 << 15) { r, _ in
            bfk_gelu_forward(out + r.lowerBound, inp + r.lowerBound, r.count)
        }
    }

    /// Plain twin of `geluForward`.
    package static func geluForwardPlain(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = inp[i]
            let u = geluScale * (x + 0.044715 * x * x * x)
            out[i] = 0.5 * x * (1 + fastTanh(u))
        }
    }

    /// out (n) = GELU(x), then x (n) = GELU'(x) in place (`bfk_gelu_forward_local`): out with `geluForward`'s bits,
    /// x with the local derivative `geluBackward` multiplies by. out may not overlap x.
    package static func geluForwardLocal(out: UnsafeMutablePointer<Float>, x: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forRanges(count, minItems: 1 << 15) { r, _ in
            bfk_gelu_forward_local(out + r.lowerBound, x + r.lowerBound, r.count)
        }
    }

    /// y (n) = s · y, elementwise (`bfk_mul_set`); s may not overlap y.
    package static func mulSet(_ y: UnsafeMutablePointer<Float>, by s: UnsafePointer<Float>, count: Int) {
        Parallel.forRanges(count, minItems: 1 << 15) { r, _ in
            bfk_mul_set(y + r.lowerBound, s + r.lowerBound, r.count)
        }
    }

    /// dinp (n) += GELU'(inp) · dout. Fast path: the C kernel; plain twin below.
    /// `accumulate: false` writes dinp = GELU'(inp) · dout instead (`bfk_gelu_backward_set`), and dinp may then be
    /// dout itself (in place): the model skips zeroing a (B·T, 4C) buffer and reading it back.
    package static func geluBackward(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                     dout: UnsafePointer<Float>, count: Int, accumulate: Bool = true) {
        Parallel.forRanges(count, minItems: 1 << 15) { r, _ in
            if accumulate {
                bfk_gelu_backward(dinp + r.lowerBound, inp + r.lowerBound, dout + r.lowerBound, r.count)
            } else {
                bfk_gelu_backward_set(dinp + r.lowerBound, inp + r.lowerBound, dout + r.lowerBound, r.count)
            }
        }
    }

    /// Plain twin of `geluBackward`.
    package static func geluBackwardPlain(dinp: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                     dout: UnsafePointer<Float>, count: Int) {
        for i in 0..<count {
            let x = inp[i]
            let u = geluScale * (x + 0.044715 * x * x * x)
            let th = fastTanh(u)
            let sech2 = 1 - th * th
            let local = 0.5 * (1 + th) + 0.5 * x * sech2 * geluScale * (1 + 3 * 0.044715 * x * x)
            dinp[i] += local * dout[i]
        }
    }

    /// tanh as a clamped rational polynomial (Eigen's float `generic_fast_tanh`): a few ulp of error, no libm call,
    /// so GELU loops vectorise.
    @inlinable @inline(__always)
    package static func fastTanh(_ x0: Float) -> Float {
        let x = min(max(x0, -7.90531110763549805), 7.90531110763549805)
        let x2 = x * x
        var p: Float = -2.76076847742355e-16
        p = p * x2 + 2.00018790482477e-13
        p = p * x2 - 8.60467152213735e-11
        p = p * x2 + 5.12229709037114e-08
        p = p * x2 + 1.48572235717979e-05
        p = p * x2 + 6.37261928875436e-04
        p = p * x2 + 4.89352455891786e-03
        p = p * x
        var q: Float = 1.19825839466702e-06
        q = q * x2 + 1.18534705686654e-04
        q = q * x2 + 2.26843463243900e-03
        q = q * x2 + 4.89352518554385e-03
        return abs(x0) < 0.0004 ? x0 : p / q
    }

    /// Σ a[i]·b[i] over n floats, 8 lanes at a time (the summation order differs from a plain loop).
    @inlinable @inline(__always)
    package static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 8 <= n {
            acc += ra.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                 * rb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
            i += 8
        }
        var s = acc.sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    // MARK: causal multi-head self-attention

    /// out (B, T, C), att (B, H, T, T) probabilities ← qkv (B, T, 3C) laid out [q | k | v] per row.
    /// Sequence b has `lengths[b]` ≤ T real rows; rows ≥ L_b of `out` are set to 0, att rows ≥ L_b are unused.
    /// Fast path: the C kernel per (sequence, head) pair (`bfk_attention_forward`: small register-blocked products
    /// that skip the upper triangle, no BLAS call overhead), one `bfk_attention_forward_pairs` call per range of
    /// pairs (it prefetches the next pair's rows), the ranges split over `Parallel.threads`.
    /// Each pair is computed the same way on any thread. `attentionForwardPlain` (BLAS per pair) is the reference.
    package static func attentionForward(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                         qkv: UnsafePointer<Float>, lengths: UnsafePointer<Int>,
                                         b batch: Int, t seqLen: Int, c: Int, heads: Int) {
        precondition(c % heads == 0, "attention: C = \(c) not divisible by heads = \(heads)")
        let hd = c / heads
        for b in 0..<batch {
            precondition(lengths[b] >= 1 && lengths[b] <= seqLen,
                         "attention: length \(lengths[b]) of sequence \(b) not in 1...\(seqLen)")
        }
        let pairs = batch * heads, per = hd * seqLen
        let ranges = Parallel.ranges(pairs, minItems: attentionMinPairs)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: ranges * per)
        defer { scratch.deallocate() }
        Parallel.forRanges(pairs, minItems: attentionMinPairs) { range, slot in
            // bfk_attention_forward per pair (scale 1/√hd), prefetching each next pair's rows
            bfk_attention_forward_pairs(out, att, qkv, lengths, seqLen, c, heads, range.lowerBound, range.upperBound,
                                        scratch + slot * per)
        }
        for b in 0..<batch {
            let len = lengths[b]
            (out + (b * seqLen + len) * c).update(repeating: 0, count: (seqLen - len) * c)
        }
    }

    /// (sequence, head) pairs below which attention stays on one thread.
    package static let attentionMinPairs = 4

    /// dqkv (B, T, 3C) += … ← dout (B, T, C), qkv, att (B, H, T, T). Fast path: `bfk_attention_backward` per
    /// (sequence, head) pair through `bfk_attention_backward_pairs` (one call per range of pairs, prefetching the
    /// next pair's rows), the ranges split over `Parallel.threads` (each pair writes only its own head's columns
    /// of its own sequence's dqkv rows, so threads never touch the same float). `scratch` is unused here (the
    /// kernel needs per-thread scratch, allocated per call); `attentionBackwardPlain` is the reference.
    /// `accumulate: false` (fast path for the model, which would otherwise zero dqkv first): dqkv is written, not
    /// added to — rows < L_b by the kernel (`bfk_attention_backward_set`), pad rows ≥ L_b set to 0 here.
    package static func attentionBackward(dqkv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                          dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafePointer<Float>,
                                          lengths: UnsafePointer<Int>, b batch: Int, t seqLen: Int, c: Int, heads: Int,
                                          accumulate: Bool = true) {
        let hd = c / heads, c3 = 3 * c
        let pairs = batch * heads, per = hd * seqLen + seqLen * (seqLen + 16)   // the kernel's scratch: Vᵀ, dS (rows padded)
        let ranges = Parallel.ranges(pairs, minItems: attentionMinPairs)
        let work = UnsafeMutablePointer<Float>.allocate(capacity: ranges * per)
        defer { work.deallocate() }
        Parallel.forRanges(pairs, minItems: attentionMinPairs) { range, slot in
            // bfk_attention_backward(_set) per pair, prefetching each next pair's rows
            bfk_attention_backward_pairs(dqkv, dout, qkv, att, lengths, seqLen, c, heads, range.lowerBound,
                                         range.upperBound, work + slot * per, accumulate ? 1 : 0)
        }
        if !accumulate {
            for b in 0..<batch where lengths[b] < seqLen {
                (dqkv + (b * seqLen + lengths[b]) * c3).update(repeating: 0, count: (seqLen - lengths[b]) * c3)
            }
        }
    }

    /// Plain twin of `attentionForward`: two BLAS products and the causal softmax per (sequence, head), one thread.
    package static func attentionForwardPlain(out: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
                                         qkv: UnsafePointer<Float>, lengths: UnsafePointer<Int>,
                                         b batch: Int, t seqLen: Int, c: Int, heads: Int) {
        precondition(c % heads == 0, "attention: C = \(c) not divisible by heads = \(heads)")
        let hd = c / heads, c3 = 3 * c
        let scale = 1 / Float(hd).squareRoot()
        for b in 0..<batch {
            let len = lengths[b]
            precondition(len >= 1 && len <= seqLen, "attention: length \(len) of sequence \(b) not in 1...\(seqLen)")
            let base = qkv + b * seqLen * c3
            for h in 0..<heads {
                let q = base + h * hd, k = base + c + h * hd, v = base + 2 * c + h * hd
                let a = att + (b * heads + h) * seqLen * seqLen
                BLAS.sgemm(transA: false, transB: true, m: len, n: len, k: hd, alpha: scale,
                           a: q, lda: c3, b: k, ldb: c3, beta: 0, c: a, ldc: seqLen)
                causalSoftmax(a, len: len, ld: seqLen)
                BLAS.sgemm(transA: false, transB: false, m: len, n: hd, k: len,
                           a: a, lda: seqLen, b: v, ldb: c3, beta: 0, c: out + b * seqLen * c + h * hd, ldc: c)
            }
            let padStart = out + (b * seqLen + len) * c
            for i in 0..<((seqLen - len) * c) { padStart[i] = 0 }
        }
    }

    /// Plain twin of `attentionBackward`; `scratch` holds T·T floats.
    package static func attentionBackwardPlain(dqkv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                                          dout: UnsafePointer<Float>, qkv: UnsafePointer<Float>, att: UnsafePointer<Float>,
                                          lengths: UnsafePointer<Int>, b batch: Int, t seqLen: Int, c: Int, heads: Int) {
        let hd = c / heads, c3 = 3 * c
        let scale = 1 / Float(hd).squareRoot()
        for b in 0..<batch {
            let len = lengths[b]
            let base = qkv + b * seqLen * c3, dbase = dqkv + b * seqLen * c3
            for h in 0..<heads {
                let q = base + h * hd, k = base + c + h * hd, v = base + 2 * c + h * hd
                let dq = dbase + h * hd, dk = dbase + c + h * hd, dv = dbase + 2 * c + h * hd
                let a = att + (b * heads + h) * seqLen * seqLen
                let dy = dout + b * seqLen * c + h * hd
                let da = scratch   // (L, L), leading dim T
                BLAS.sgemm(transA: false, transB: true, m: len, n: len, k: hd,
                           a: dy, lda: c, b: v, ldb: c3, beta: 0, c: da, ldc: seqLen)
                BLAS.sgemm(transA: true, transB: false, m: len, n: hd, k: len,
                           a: a, lda: seqLen, b: dy, ldb: c, beta: 1, c: dv, ldc: c3)
                causalSoftmaxBackward(da, a, len: len, ld: seqLen, scale: scale)
                BLAS.sgemm(transA: false, transB: false, m: len, n: hd, k: len,
                           a: da, lda: seqLen, b: k, ldb: c3, beta: 1, c: dq, ldc: c3)
                BLAS.sgemm(transA: true, transB: false, m: len, n: hd, k: len,
                           a: da, lda: seqLen, b: q, ldb: c3, beta: 1, c: dk, ldc: c3)
            }
        }
    }

    /// Causal softmax in place over the first `len` rows of a (len, len) block with leading dimension `ld`:
    /// row t ← softmax(row[0…t]), row[t+1..<len] ← 0. Fast path: the C kernel (vectorised exp, 16-lane sums).
    @inline(__always)
    package static func causalSoftmax(_ a: UnsafeMutablePointer<Float>, len: Int, ld: Int) {
        bfk_causal_softmax(a, len, ld)
    }

    /// Plain twin of `causalSoftmax` (the loop attentionForward had).
    package static func causalSoftmaxPlain(_ a: UnsafeMutablePointer<Float>, len: Int, ld: Int) {
        for t in 0..<len {
            let row = a + t * ld
            var mx = -Float.infinity
            for j in 0...t { mx = max(mx, row[j]) }
            var sum: Float = 0
            for j in 0...t { let e = expf(row[j] - mx); row[j] = e; sum += e }
            let inv = 1 / sum
            for j in 0...t { row[j] *= inv }
            for j in (t + 1)..<max(t + 1, len) { row[j] = 0 }
        }
    }

    /// Causal softmax backward in place: da[t][j] ← a[t][j]·(da[t][j] − Σ_{i≤t} a[t][i]·da[t][i])·scale for j ≤ t,
    /// 0 above the diagonal. Fast path: the C kernel.
    @inline(__always)
    package static func causalSoftmaxBackward(_ da: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, len: Int,
                                              ld: Int, scale: Float) {
        bfk_causal_softmax_backward(da, a, len, ld, scale)
    }

    /// Plain twin of `causalSoftmaxBackward` (the loop attentionBackward had).
    package static func causalSoftmaxBackwardPlain(_ da: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, len: Int,
                                                   ld: Int, scale: Float) {
        for t in 0..<len {
            let ar = a + t * ld, dr = da + t * ld
            var s: Float = 0
            for j in 0...t { s += ar[j] * dr[j] }
            for j in 0...t { dr[j] = ar[j] * (dr[j] - s) * scale }
            for j in (t + 1)..<max(t + 1, len) { dr[j] = 0 }
        }
    }

    // MARK: softmax / log-softmax

    /// out (N, V) = softmax(inp (N, V)) row-wise.
    package static func softmaxForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, v: Int) {
        for i in 0..<n {
            let x = inp + i * v, o = out + i * v
            var mx = -Float.infinity
            for j in 0..<v { mx = max(mx, x[j]) }
            var s: Float = 0
            for j in 0..<v { let e = expf(x[j] - mx); o[j] = e; s += e }
            let inv = 1 / s
            for j in 0..<v { o[j] *= inv }
        }
    }

    /// dinp (N, V) += p ⊙ (dout − Σ p·dout), p = softmax output (N, V).
    package static func softmaxBackward(dinp: UnsafeMutablePointer<Float>, probs: UnsafePointer<Float>,
                                        dout: UnsafePointer<Float>, n: Int, v: Int) {
        for i in 0..<n {
            let p = probs + i * v, g = dout + i * v, d = dinp + i * v
            var s: Float = 0
            for j in 0..<v { s += p[j] * g[j] }
            for j in 0..<v { d[j] += p[j] * (g[j] - s) }
        }
    }

    /// out (N, V) = log-softmax(inp (N, V)) row-wise.
    package static func logSoftmaxForward(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, n: Int, v: Int) {
        for i in 0..<n {
            let x = inp + i * v, o = out + i * v
            let lse = logSumExp(x, v)
            for j in 0..<v { o[j] = x[j] - lse }
        }
    }

    /// dinp (N, V) += dout − exp(logp)·Σ dout, logp = log-softmax output (N, V).
    package static func logSoftmaxBackward(dinp: UnsafeMutablePointer<Float>, logProbs: UnsafePointer<Float>,
                                           dout: UnsafePointer<Float>, n: Int, v: Int) {
        for i in 0..<n {
            let l = logProbs + i * v, g = dout + i * v, d = dinp + i * v
            var s: Float = 0
            for j in 0..<v { s += g[j] }
            for j in 0..<v { d[j] += g[j] - expf(l[j]) * s }
        }
    }

    @inline(__always)
    package static func logSumExp(_ x: UnsafePointer<Float>, _ v: Int, scale: Float = 1) -> Float {
        var mx = -Float.infinity
        for j in 0..<v { mx = max(mx, x[j] * scale) }
        var s: Float = 0
        for j in 0..<v { s += expf(x[j] * scale - mx) }
        return mx + logf(s)
    }

    // MARK: token loss (weighted NLL + entropy bonus; cross-entropy with a loss mask as a special case)

    /// For one row of logits (V): returns (log p_T(target), H) with p_T = softmax(logits / T).
    package static func tokenLogProbEntropy(logits: UnsafePointer<Float>, v: Int, target: Int,
                                            invTemperature: Float) -> (logProb: Float, entropy: Float) {
        let lse = logSumExp(logits, v, scale: invTemperature)
        var h: Float = 0
        for j in 0..<v { let l = logits[j] * invTemperature - lse; h -= expf(l) * l }
        return (logits[target] * invTemperature - lse, h)
    }

    /// dlogits (V) += d/dlogits of [−w·log p_T(target) − c·H] for one row; returns (log p_T(target), H).
    @discardableResult
    package static func tokenLossBackward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, v: Int,
                                          target: Int, weight w: Float, entropyCoefficient c: Float,
                                          invTemperature: Float) -> (logProb: Float, entropy: Float) {
        let lse = logSumExp(logits, v, scale: invTemperature)
        var h: Float = 0
        for j in 0..<v { let l = logits[j] * invTemperature - lse; h -= expf(l) * l }
        for j in 0..<v {
            let l = logits[j] * invTemperature - lse
            let p = expf(l)
            var dz = w * p + c * p * (l + h)
            if j == target { dz -= w }
            dlogits[j] += dz * invTemperature
        }
        return (logits[target] * invTemperature - lse, h)
    }

    /// Masked cross-entropy: returns Σ_n mask[n]·(−log softmax(logits[n])[targets[n]]) over logits (N, V).
    package static func crossEntropyForward(logits: UnsafePointer<Float>, targets: UnsafePointer<Int>,
                                            mask: UnsafePointer<Float>, n: Int, v: Int) -> Float {
        var loss: Float = 0
        for i in 0..<n where mask[i] != 0 {
            loss -= mask[i] * tokenLogProbEntropy(logits: logits + i * v, v: v, target: targets[i], invTemperature: 1).logProb
        }
        return loss
    }

    /// dlogits (N, V) += dloss · d/dlogits of the masked cross-entropy above.
    package static func crossEntropyBackward(dlogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>,
                                             targets: UnsafePointer<Int>, mask: UnsafePointer<Float>,
                                             n: Int, v: Int, dloss: Float = 1) {
        for i in 0..<n where mask[i] != 0 {
            tokenLossBackward(dlogits: dlogits + i * v, logits: logits + i * v, v: v, target: targets[i],
                              weight: mask[i] * dloss, entropyCoefficient: 0, invTemperature: 1)
        }
    }
}
