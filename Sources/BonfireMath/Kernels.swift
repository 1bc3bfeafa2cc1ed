import CBonfireKernels

// Swift face of the C kernels in Sources/CBonfireKernels: each is compiled for AVX-512, AVX2 + FMA and baseline
// x86-64 (only baseline elsewhere) and picked once at run time from the CPU's features. Every kernel has a plain
// Swift twin (`Ops.…Plain`, `Kernels.linearRowsPlain`) that the tests compare it with at every level the CPU has.

package enum Kernels {
    /// Instruction-set level of the kernels.
    package enum ISA: Int, CaseIterable, Sendable, CustomStringConvertible {
        case baseline = 0, avx2 = 1, avx512 = 2
        package var description: String { ["baseline", "avx2+fma", "avx512"][rawValue] }
    }

    /// The level in use (the highest the CPU has, unless a test lowered it).
    package static var isa: ISA { ISA(rawValue: Int(bfk_isa())) ?? .baseline }
    /// The highest level this CPU supports.
    package static var detectedISA: ISA { ISA(rawValue: Int(bfk_isa_detected())) ?? .baseline }
    /// Tests only: run the kernels at `level` (clamped to the detected one). Not thread-safe.
    package static func setISA(_ level: ISA) { bfk_set_isa(Int32(level.rawValue)) }

    /// out (n) = exp(inp (n)) (Cephes polynomial, ≲ 2e-7 relative error; exp(x < −87.3) = 0). May alias.
    @inline(__always)
    package static func exp(_ out: UnsafeMutablePointer<Float>, _ inp: UnsafePointer<Float>, count: Int) {
        bfk_exp(out, inp, count)
    }

    /// One decode-time attention query for one head: y (hd) = softmax(scale · K q) · V over `len` cached rows of
    /// K and V (len, hd). `scores` is scratch (≥ len floats).
    @inline(__always)
    package static func attendOne(y: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                                  q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                  len: Int, hd: Int, scale: Float) {
        bfk_attend_one(y, scores, q, k, v, len, hd, scale)
    }

    /// Plain twin of `attendOne` (the loop the sampler used before the kernel).
    package static func attendOnePlain(y: UnsafeMutablePointer<Float>, scores sc: UnsafeMutablePointer<Float>,
                                       q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                       len: Int, hd: Int, scale: Float) {
        var mx = -Float.infinity
        for j in 0..<len { sc[j] = Ops.dot(q, k + j * hd, hd) * scale; mx = max(mx, sc[j]) }
        var sum: Float = 0
        for j in 0..<len { let e = expf(sc[j] - mx); sc[j] = e; sum += e }
        let inv = 1 / sum
        for i in 0..<hd { y[i] = 0 }
        for j in 0..<len { let w = sc[j] * inv, vr = v + j * hd; for i in 0..<hd { y[i] += w * vr[i] } }
    }

    /// All heads of one decode row (the sampler's fast path): for h in 0..<heads, y[h·hd ..< (h+1)·hd] =
    /// softmax(scale · K_h q_h) · V_h, with q_h = q + h·hd and K_h, V_h (len, hd) at k, v + h·headStride.
    /// Bit-identical to `attendOne` per head; 16 keys' scores per reduction tree, y in registers, heads interleaved.
    /// `scores` is scratch (≥ heads·len floats).
    @inline(__always)
    package static func attendHeads(y: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                                    q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                    heads: Int, headStride: Int, len: Int, hd: Int, scale: Float) {
        bfk_attend_heads(y, scores, q, k, v, heads, headStride, len, hd, scale)
    }

    /// `attendHeads` with a shared prefix (a BoN group's prompt, stored once and read by every sample of the group):
    /// keys and values 0 ..< plen at `kp`, `vp`, the others (plen ..< len) at `k`, `v`; both laid out as in
    /// `attendHeads` (key j of head h at h·headStride + j·hd; the positions below plen at k, v and from plen at kp,
    /// vp are never read). Bit-identical to `attendHeads` on one cache holding the prefix's rows and then the others.
    @inline(__always)
    package static func attendHeadsPrefix(y: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                                          q: UnsafePointer<Float>, kp: UnsafePointer<Float>, vp: UnsafePointer<Float>,
                                          k: UnsafePointer<Float>, v: UnsafePointer<Float>, heads: Int,
                                          headStride: Int, plen: Int, len: Int, hd: Int, scale: Float) {
        bfk_attend_heads_prefix(y, scores, q, kp, vp, k, v, heads, headStride, plen, len, hd, scale)
    }

    /// Plain twin of `attendHeadsPrefix`: gathers each head's keys and values into one contiguous (len, hd) cache
    /// and runs `attendOnePlain` on it.
    package static func attendHeadsPrefixPlain(y: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                                               q: UnsafePointer<Float>, kp: UnsafePointer<Float>,
                                               vp: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                               v: UnsafePointer<Float>, heads: Int, headStride: Int, plen: Int,
                                               len: Int, hd: Int, scale: Float) {
        var kh = [Float](repeating: 0, count: len * hd), vh = kh
        for h in 0..<heads {
            for j in 0..<len {
                let (ks, vs) = j < plen ? (kp, vp) : (k, v)
                for i in 0..<hd {
                    kh[j * hd + i] = ks[h * headStride + j * hd + i]
                    vh[j * hd + i] = vs[h * headStride + j * hd + i]
                }
            }
            attendOnePlain(y: y + h * hd, scores: scores, q: q + h * hd, k: kh, v: vh, len: len, hd: hd, scale: scale)
        }
    }

    /// Plain twin of `attendHeads`: `attendOnePlain` on each head.
    package static func attendHeadsPlain(y: UnsafeMutablePointer<Float>, scores: UnsafeMutablePointer<Float>,
                                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                         heads: Int, headStride: Int, len: Int, hd: Int, scale: Float) {
        for h in 0..<heads {
            attendOnePlain(y: y + h * hd, scores: scores, q: q + h * hd, k: k + h * headStride, v: v + h * headStride,
                           len: len, hd: hd, scale: scale)
        }
    }

    /// Few-row linear layer without weight packing: out (N, OC) (+)= inp (N, IC) · wt (IC, OC) + bias (OC), where
    /// wt = Wᵀ of a torch-style weight W (OC, IC). For decode steps (N ≈ number of active samples), where OpenBLAS
    /// would re-pack all of W on every call.
    @inline(__always)
    package static func linearRows(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, wt: UnsafePointer<Float>,
                                   bias: UnsafePointer<Float>?, n: Int, ic: Int, oc: Int, accumulate: Bool) {
        bfk_linear_rows(out, inp, wt, bias, n, ic, oc, accumulate ? 1 : 0)
    }

    /// `linearRows` on a weight packed by `packPanels` (blocks of `panelWidth` columns of Wᵀ stored contiguously, so
    /// every strip the kernel reads is one sequential stream). Same sums, same bits as `linearRows`. The sampler's fast path.
    /// While it computes a panel it prefetches the next into L2, and during the last one `prefetchAfter`
    /// (`prefetchCount` floats: the first panel of the weight used next), which changes no result.
    @inline(__always)
    package static func linearPanels(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                     packed: UnsafePointer<Float>, bias: UnsafePointer<Float>?, n: Int, ic: Int, oc: Int,
                                     accumulate: Bool, prefetchAfter: UnsafePointer<Float>? = nil, prefetchCount: Int = 0) {
        bfk_linear_panels(out, inp, packed, bias, n, ic, oc, accumulate ? 1 : 0, prefetchAfter, prefetchCount)
    }

    /// dst (OC·IC floats) ← a torch-style weight W (OC, IC) in `linearPanels`' layout: columns j0 ..< j0 + w of Wᵀ
    /// (j0 a multiple of `panelWidth`, w = min(panelWidth, OC − j0)) at dst + j0·IC as (IC, w) row-major.
    @inline(__always)
    package static func packPanels(_ dst: UnsafeMutablePointer<Float>, _ weight: UnsafePointer<Float>, oc: Int, ic: Int) {
        bfk_pack_panels(dst, weight, oc, ic)
    }

    /// Columns per panel of `packPanels`.
    package static var panelWidth: Int { bfk_panel_width() }

    /// Plain twin of `linearRows`: out = inp · W'ᵀ + bias through BLAS, with W (OC, IC) the untransposed weight.
    package static func linearRowsPlain(out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                                        weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, n: Int, ic: Int,
                                        oc: Int, accumulate: Bool) {
        Ops.linearForward(out: out, inp: inp, weight: weight, bias: bias, n: n, ic: ic, oc: oc, accumulate: accumulate)
    }

    /// Σ x[i]² in Double (8 fixed lanes; clipGradNorm's chunk sum).
    @inline(__always)
    package static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double { bfk_sum_squares(x, count) }

    /// The shared-memory parameter ring's fused pass over the first ⌊words/16⌋·16 32-bit words of `src`: copies them
    /// to `dst` (when given; with `nonTemporal`, non-temporal stores on x86-64), adds them to the 16 Fletcher lanes `a`, `b` (lane k takes
    /// words i ≡ k mod 16: a += w, b += a, wrapping) and ORs `boundBits − (w & 0x7FFF_FFFF)` into `over` (a negative
    /// lane: some |x| above the bound, NaN or infinity). Returns the words done; the caller does the tail.
    @inline(__always)
    package static func copyFletcher16(to dst: UnsafeMutableRawPointer?, from src: UnsafeRawPointer, words: Int,
                                       boundBits: Int32, a: inout SIMD16<UInt32>, b: inout SIMD16<UInt32>,
                                       over: inout SIMD16<Int32>, nonTemporal: Bool) -> Int {
        withUnsafeMutableBytes(of: &a) { pa in
            withUnsafeMutableBytes(of: &b) { pb in
                withUnsafeMutableBytes(of: &over) { po in
                    bfk_copy_fletcher16(dst, src, words, boundBits, pa.baseAddress!.assumingMemoryBound(to: UInt32.self),
                                        pb.baseAddress!.assumingMemoryBound(to: UInt32.self),
                                        po.baseAddress!.assumingMemoryBound(to: Int32.self), nonTemporal ? 1 : 0)
                }
            }
        }
        return words / 16 * 16
    }

    /// dst (cols, rows) = srcᵀ for src (rows, cols).
    @inline(__always)
    package static func transpose(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, rows: Int, cols: Int) {
        bfk_transpose(dst, src, rows, cols)
    }
}

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
