// The C kernels (Sources/CBonfireKernels) against their plain Swift twins, at every instruction-set level this CPU
// has (AVX-512, AVX2 + FMA, baseline), on awkward sizes (tails that are not multiples of the vector width, one row,
// one key) and hostile values (large magnitudes, tiny magnitudes, constant rows, −∞ in exp).
import XCTest
import BonfireMath
import BonfireTestSupport
#if canImport(Glibc)
import Glibc
#endif

final class KernelsTests: XCTestCase {
    override func tearDown() { Kernels.setISA(Kernels.detectedISA) }

    /// Runs `body` once per level the CPU supports, with the kernels switched to that level.
    func forEachISA(_ body: (Kernels.ISA) -> Void) {
        for level in Kernels.ISA.allCases where level.rawValue <= Kernels.detectedISA.rawValue {
            Kernels.setISA(level)
            XCTAssertEqual(Kernels.isa, level)
            body(level)
        }
        Kernels.setISA(Kernels.detectedISA)
    }

    func randoms(_ n: Int, _ rng: inout RNG, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(rng.normal() * scale) }
    }

    func testSetISAClampsToTheDetectedLevel() {
        Kernels.setISA(.avx512)
        XCTAssertLessThanOrEqual(Kernels.isa.rawValue, Kernels.detectedISA.rawValue)
        Kernels.setISA(.baseline)
        XCTAssertEqual(Kernels.isa, .baseline)
    }

    func testGeluKernelMatchesPlainIncludingExtremes() {
        var rng = RNG(seed: 1)
        let x = randoms(1000, &rng, scale: 3) + [0, -0, 1e-6, -1e-6, 3e-4, -3e-4, 8, -8, 50, -50, 1e4, -1e4, 0.1]
        let g = randoms(x.count, &rng)
        forEachISA { level in
            var out = [Float](repeating: 7, count: x.count), ref = out
            Ops.geluForward(out: &out, inp: x, count: x.count)
            Ops.geluForwardPlain(out: &ref, inp: x, count: x.count)
            expectClose(out, ref, rtol: 1e-5, atol: 1e-6, "gelu forward \(level)")
            var d = [Float](repeating: 0.5, count: x.count), dref = d   // backward accumulates
            Ops.geluBackward(dinp: &d, inp: x, dout: g, count: x.count)
            Ops.geluBackwardPlain(dinp: &dref, inp: x, dout: g, count: x.count)
            expectClose(d, dref, rtol: 1e-5, atol: 1e-6, "gelu backward \(level)")
        }
    }

    /// The writing GELU backward (`accumulate: false`), out of place and in place (dinp = dout, how the model calls
    /// it), equals the accumulating kernel run on zeros exactly (the same unfused operations; only the sign of a zero
    /// may differ, 0 + (−0) = +0), and the plain loop within the kernels' tolerance; lengths around its 512-float blocks.
    func testGeluBackwardThatWritesEqualsTheAccumulatingKernelOnZerosAlsoInPlace() {
        var rng = RNG(seed: 11)
        let x = randoms(1500, &rng, scale: 3) + [0, -0, 1e-6, 3e-4, -3e-4, 8, -8, 50, -50, 1e4, -1e4]
        let g = randoms(x.count, &rng)
        for n in [0, 1, 511, 512, 513, x.count] {
            forEachISA { level in
                var ref = [Float](repeating: 0, count: n), plain = ref
                Ops.geluBackward(dinp: &ref, inp: x, dout: g, count: n)
                Ops.geluBackwardPlain(dinp: &plain, inp: x, dout: g, count: n)
                var out = [Float](repeating: .nan, count: n)       // garbage the kernel must overwrite
                Ops.geluBackward(dinp: &out, inp: x, dout: g, count: n, accumulate: false)
                XCTAssertEqual(out, ref, "gelu backward set n=\(n) \(level)")
                expectClose(out, plain, rtol: 1e-5, atol: 1e-6, "gelu backward set vs plain n=\(n) \(level)")
                var inPlace = Array(g.prefix(n))
                inPlace.withUnsafeMutableBufferPointer { b in
                    if let p = b.baseAddress {
                        Ops.geluBackward(dinp: p, inp: x, dout: p, count: n, accumulate: false)
                    }
                }
                XCTAssertEqual(inPlace, ref, "gelu backward in place n=\(n) \(level)")
            }
        }
    }

    /// GELU with its derivative kept (`geluForwardLocal`, the training forward's MLP): out has `geluForward`'s bits and
    /// x becomes the very factor the writing backward multiplies by — GELU'(x)·1 of `geluBackward(accumulate: false)`
    /// — at every level, on extremes, NaN and ±∞, lengths around the vector width; and `mulSet` times that factor
    /// equals the backward that computed it (the model's backward before and after the seventh pass).
    func testGeluForwardLocalKeepsTheBackwardsFactorBitForBit() {
        var rng = RNG(seed: 12)
        let x = randoms(1000, &rng, scale: 3)
            + [0, -0, 1e-6, -1e-6, 3e-4, -3e-4, 8, -8, 50, -50, 1e4, -1e4, .nan, .infinity, -.infinity,
               .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude]
        let g = randoms(x.count, &rng)
        func bits(_ a: [Float]) -> [UInt32] { a.map { $0.isNaN ? 0x7FC0_0000 : $0.bitPattern } }
        for n in [0, 1, 15, 16, 17, x.count] {
            forEachISA { level in
                var gelu = [Float](repeating: .nan, count: n), ref = gelu
                var local = Array(x.prefix(n))
                Ops.geluForwardLocal(out: &gelu, x: &local, count: n)
                Ops.geluForward(out: &ref, inp: x, count: n)
                XCTAssertEqual(bits(gelu), bits(ref), "GELU n=\(n) \(level)")
                var factor = [Float](repeating: .nan, count: n)
                Ops.geluBackward(dinp: &factor, inp: x, dout: [Float](repeating: 1, count: n), count: n,
                                 accumulate: false)
                XCTAssertEqual(bits(local), bits(factor), "GELU' n=\(n) \(level)")
                var viaFactor = Array(g.prefix(n)), direct = [Float](repeating: .nan, count: n)
                Ops.mulSet(&viaFactor, by: local, count: n)
                Ops.geluBackward(dinp: &direct, inp: x, dout: g, count: n, accumulate: false)
                XCTAssertEqual(bits(viaFactor), bits(direct), "d pre-activation n=\(n) \(level)")
            }
        }
    }

    func testLayerNormKernelMatchesPlainOnOddWidthsAndConstantRows() {
        var rng = RNG(seed: 2)
        for c in [1, 7, 16, 37, 128] {
            let n = 5
            var x = randoms(n * c, &rng, scale: 4)
            for j in 0..<c { x[j] = 3.25 }            // a constant row: variance 0, rstd = 1/√eps
            for j in 0..<c { x[c + j] += 1e4 }         // a row far from zero
            let w = randoms(c, &rng), b = randoms(c, &rng), dy = randoms(n * c, &rng)
            forEachISA { level in
                var o = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), r = m
                var o2 = o, m2 = m, r2 = r
                Ops.layerNormForward(out: &o, mean: &m, rstd: &r, inp: x, weight: w, bias: b, n: n, c: c)
                Ops.layerNormForwardPlain(out: &o2, mean: &m2, rstd: &r2, inp: x, weight: w, bias: b, n: n, c: c)
                expectClose(m, m2, rtol: 1e-5, atol: 1e-5, "mean c=\(c) \(level)")
                expectClose(r, r2, rtol: 1e-3, atol: 1e-5, "rstd c=\(c) \(level)")
                expectClose(o, o2, rtol: 1e-3, atol: 1e-3, "out c=\(c) \(level)")
                var dx = [Float](repeating: 0.25, count: n * c), dw = [Float](repeating: 1, count: c), db = dw
                var dx2 = dx, dw2 = dw, db2 = db
                Ops.layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w,
                                      mean: m2, rstd: r2, n: n, c: c)
                Ops.layerNormBackwardPlain(dinp: &dx2, dweight: &dw2, dbias: &db2, dout: dy, inp: x, weight: w,
                                           mean: m2, rstd: r2, n: n, c: c)
                expectClose(db, db2, rtol: 1e-5, atol: 1e-5, "dbias c=\(c) \(level)")
                expectClose(dw, dw2, rtol: 1e-4, atol: 1e-3, "dweight c=\(c) \(level)")
                expectClose(dx, dx2, rtol: 1e-3, atol: 1e-2, "dinp c=\(c) \(level)")
            }
        }
    }

    func testExpKernelMatchesLibmAndUnderflowsToZero() {
        var x: [Float] = stride(from: -90, through: 88, by: 0.37).map { Float($0) }
        x += [0, -0, 1e-8, -1e-8, -.infinity, -1e30, -87.5, 88.25]
        forEachISA { level in
            var out = [Float](repeating: 9, count: x.count)
            Kernels.exp(&out, x, count: x.count)
            for (i, v) in x.enumerated() {
                let ref = v < -87.3 ? 0 : expf(v)
                XCTAssertTrue(abs(out[i] - ref) <= 4e-7 * ref + 1e-37, "exp(\(v)) = \(out[i]), libm \(ref) at \(level)")
            }
        }
    }

    func testAttendOneKernelMatchesPlainForOneAndManyKeys() {
        var rng = RNG(seed: 3)
        for (len, hd) in [(1, 8), (7, 32), (64, 32), (33, 20)] {
            let q = randoms(hd, &rng, scale: 3), k = randoms(len * hd, &rng), v = randoms(len * hd, &rng)
            let scale = 1 / Float(hd).squareRoot()
            forEachISA { level in
                var y = [Float](repeating: 5, count: hd), y2 = y, s = [Float](repeating: 0, count: len), s2 = s
                Kernels.attendOne(y: &y, scores: &s, q: q, k: k, v: v, len: len, hd: hd, scale: scale)
                Kernels.attendOnePlain(y: &y2, scores: &s2, q: q, k: k, v: v, len: len, hd: hd, scale: scale)
                expectClose(y, y2, rtol: 1e-4, atol: 1e-5, "attend len=\(len) hd=\(hd) \(level)")
            }
        }
    }

    /// The all-heads decode kernel gives exactly attendOne's bits on every head (its 16-key reduction tree and
    /// interleaved heads keep each sum's order) and matches the plain loop, for head sizes with and without the
    /// fast paths (16, 32, 64 vs 8, 20, 48), head counts that leave interleaving remainders, key counts around 16.
    /// Cache positions beyond `len` hold NaN: reading one would poison the output.
    func testAttendHeadsKernelIsBitIdenticalToAttendOnePerHead() {
        var rng = RNG(seed: 13)
        // Head groups of 8/4/2/1 (hd 16) and 4/2/1 (hd 32): (4, 16) is the default model's, (15, 16) takes all four.
        for (heads, hd) in [(1, 32), (4, 32), (5, 32), (8, 16), (9, 16), (3, 64), (2, 8), (3, 20), (2, 48),
                            (4, 16), (7, 16), (15, 16), (6, 32), (7, 32)] {
            for len in [1, 15, 16, 17, 33, 64] {
                let span = len + 3, stride = span * hd
                let q = randoms(heads * hd, &rng, scale: 3)
                var k = [Float](repeating: .nan, count: heads * stride), v = k
                for h in 0..<heads {
                    for i in 0..<(len * hd) { k[h * stride + i] = Float(rng.normal()); v[h * stride + i] = Float(rng.normal()) }
                }
                let scale = 1 / Float(hd).squareRoot()
                forEachISA { level in
                    var y = [Float](repeating: 7, count: heads * hd), yOne = y, yPlain = y
                    var s = [Float](repeating: 0, count: heads * len), s1 = [Float](repeating: 0, count: len)
                    Kernels.attendHeads(y: &y, scores: &s, q: q, k: k, v: v, heads: heads, headStride: stride, len: len,
                                        hd: hd, scale: scale)
                    Kernels.attendHeadsPlain(y: &yPlain, scores: &s1, q: q, k: k, v: v, heads: heads,
                                             headStride: stride, len: len, hd: hd, scale: scale)
                    q.withUnsafeBufferPointer { qb in k.withUnsafeBufferPointer { kb in v.withUnsafeBufferPointer { vb in
                        yOne.withUnsafeMutableBufferPointer { yb in
                            for h in 0..<heads {
                                Kernels.attendOne(y: yb.baseAddress! + h * hd, scores: &s1, q: qb.baseAddress! + h * hd,
                                                  k: kb.baseAddress! + h * stride, v: vb.baseAddress! + h * stride,
                                                  len: len, hd: hd, scale: scale)
                            }
                        }
                    } } }
                    let what = "attendHeads heads=\(heads) hd=\(hd) len=\(len) \(level)"
                    XCTAssertEqual(y.map(\.bitPattern), yOne.map(\.bitPattern), what)
                    XCTAssertTrue(y.allSatisfy(\.isFinite), what)
                    expectClose(y, yPlain, rtol: 1e-4, atol: 1e-5, what)
                }
            }
        }
    }

    /// The shared-prefix kernel (the sampler's BoN groups read their prompt's rows from one slot) gives exactly
    /// attendHeads' bits on the joined cache, for prefixes of 0, 1, around 16 and at or beyond len, and matches the
    /// plain twin. Rows that must not be read (the prefix buffer from plen on, the own buffer below plen, both
    /// beyond len) hold NaN: reading one would poison the output.
    func testAttendHeadsPrefixIsBitIdenticalToAttendHeadsOnTheJoinedCache() {
        var rng = RNG(seed: 16)
        for (heads, hd) in [(4, 32), (8, 32), (5, 32), (9, 16), (3, 64), (3, 20), (2, 8)] {
            for len in [1, 9, 16, 17, 40] {
                let span = len + 5, stride = span * hd
                let q = randoms(heads * hd, &rng, scale: 3)
                var k = [Float](repeating: .nan, count: heads * stride), v = k
                for h in 0..<heads {
                    for i in 0..<(len * hd) { k[h * stride + i] = Float(rng.normal()); v[h * stride + i] = Float(rng.normal()) }
                }
                let scale = 1 / Float(hd).squareRoot()
                for plen in Set([0, 1, 8, 15, 16, 17, len - 1, len, len + 2]) where plen >= 0 {
                    var kp = [Float](repeating: .nan, count: heads * stride), vp = kp, ko = k, vo = v
                    for h in 0..<heads {
                        for i in 0..<(min(plen, span) * hd) {
                            kp[h * stride + i] = k[h * stride + i]; vp[h * stride + i] = v[h * stride + i]
                            ko[h * stride + i] = .nan; vo[h * stride + i] = .nan
                        }
                    }
                    forEachISA { level in
                        var y = [Float](repeating: 7, count: heads * hd), yJoined = y, yPlain = y
                        var s = [Float](repeating: 0, count: heads * len), s1 = s
                        Kernels.attendHeadsPrefix(y: &y, scores: &s, q: q, kp: kp, vp: vp, k: ko, v: vo, heads: heads,
                                                  headStride: stride, plen: plen, len: len, hd: hd, scale: scale)
                        Kernels.attendHeads(y: &yJoined, scores: &s1, q: q, k: k, v: v, heads: heads, headStride: stride,
                                            len: len, hd: hd, scale: scale)
                        Kernels.attendHeadsPrefixPlain(y: &yPlain, scores: &s1, q: q, kp: kp, vp: vp, k: ko, v: vo,
                                                       heads: heads, headStride: stride, plen: plen, len: len, hd: hd,
                                                       scale: scale)
                        let what = "attendHeadsPrefix heads=\(heads) hd=\(hd) len=\(len) plen=\(plen) \(level)"
                        XCTAssertEqual(y.map(\.bitPattern), yJoined.map(\.bitPattern), what)
                        XCTAssertTrue(y.allSatisfy(\.isFinite), what)
                        expectClose(y, yPlain, rtol: 1e-4, atol: 1e-5, what)
                    }
                }
            }
        }
    }

    func testLinearRowsKernelMatchesBLASOnEveryBlockingTail() {
        var rng = RNG(seed: 4)
        for (n, ic, oc) in [(1, 16, 32), (3, 20, 70), (4, 128, 384), (5, 7, 8), (33, 64, 96), (9, 5, 3),
                            (32, 1, 80), (6, 1, 1), (13, 3, 129), (32, 128, 32), (7, 40, 200)] {
            let x = randoms(n * ic, &rng), w = randoms(oc * ic, &rng), bias = randoms(oc, &rng)
            var wt = [Float](repeating: 0, count: ic * oc)
            Kernels.transpose(&wt, w, rows: oc, cols: ic)
            for j in 0..<oc { for i in 0..<ic { XCTAssertEqual(wt[i * oc + j], w[j * ic + i]) } }
            let start = randoms(n * oc, &rng)
            forEachISA { level in
                for accumulate in [false, true] {
                    for useBias in [false, true] {
                        var out = start, ref = start
                        bias.withUnsafeBufferPointer { bp in
                            let b = useBias ? bp.baseAddress : nil
                            Kernels.linearRows(out: &out, inp: x, wt: wt, bias: b, n: n, ic: ic, oc: oc, accumulate: accumulate)
                            Kernels.linearRowsPlain(out: &ref, inp: x, weight: w, bias: b, n: n, ic: ic, oc: oc,
                                                    accumulate: accumulate)
                        }
                        expectClose(out, ref, rtol: 1e-4, atol: 1e-4,
                                    "linearRows n=\(n) ic=\(ic) oc=\(oc) acc=\(accumulate) bias=\(useBias) \(level)")
                    }
                }
            }
        }
    }

    /// The panel layout: packPanels puts W[j][k] where the header says, and linearPanels gives exactly linearRows'
    /// bits (same sums, only the weights' addresses differ) on shapes with a partial last panel, oc below one panel
    /// or one vector, ic = 1 and rows that leave block remainders.
    func testLinearPanelsIsBitIdenticalToLinearRows() {
        var rng = RNG(seed: 15)
        let P = Kernels.panelWidth
        XCTAssertEqual(P % 16, 0)
        // n: every mix of the blocks of 6 (AVX-512), 4, 2 and 1 rows.
        for (n, ic, oc) in [(32, 128, 384), (5, 7, 8), (9, 1, 70), (33, 64, 96), (3, 20, 3 * P + 13), (32, 256, 64),
                            (1, 1, 1), (10, 33, 70), (7, 16, P + 5), (6, 12, 2 * P), (4, 9, 17)] {
            let x = randoms(n * ic, &rng), w = randoms(oc * ic, &rng), bias = randoms(oc, &rng)
            var wt = [Float](repeating: 0, count: ic * oc), packed = wt
            Kernels.transpose(&wt, w, rows: oc, cols: ic)
            Kernels.packPanels(&packed, w, oc: oc, ic: ic)
            for j in 0..<oc {
                let j0 = j / P * P, width = min(P, oc - j0)
                for k in 0..<ic { XCTAssertEqual(packed[j0 * ic + k * width + (j - j0)], w[j * ic + k]) }
            }
            let start = randoms(n * oc, &rng)
            forEachISA { level in
                for accumulate in [false, true] {
                    for useBias in [false, true] {
                        var out = start, ref = start, plain = start, prefetching = start
                        bias.withUnsafeBufferPointer { bp in
                            let b = useBias ? bp.baseAddress : nil
                            Kernels.linearPanels(out: &out, inp: x, packed: packed, bias: b, n: n, ic: ic, oc: oc,
                                                 accumulate: accumulate)
                            // Prefetching the weights used next (here: W itself, and a region of 1 float) changes nothing.
                            w.withUnsafeBufferPointer { wb in
                                Kernels.linearPanels(out: &prefetching, inp: x, packed: packed, bias: b, n: n, ic: ic,
                                                     oc: oc, accumulate: accumulate, prefetchAfter: wb.baseAddress!,
                                                     prefetchCount: useBias ? wb.count : 1)
                            }
                            Kernels.linearRows(out: &ref, inp: x, wt: wt, bias: b, n: n, ic: ic, oc: oc, accumulate: accumulate)
                            Kernels.linearRowsPlain(out: &plain, inp: x, weight: w, bias: b, n: n, ic: ic, oc: oc,
                                                    accumulate: accumulate)
                        }
                        let what = "linearPanels n=\(n) ic=\(ic) oc=\(oc) acc=\(accumulate) bias=\(useBias) \(level)"
                        XCTAssertEqual(out.map(\.bitPattern), ref.map(\.bitPattern), what)
                        XCTAssertEqual(prefetching.map(\.bitPattern), out.map(\.bitPattern), what)
                        expectClose(out, plain, rtol: 1e-4, atol: 1e-4, what)
                    }
                }
            }
        }
    }

    /// A row's output does not depend on the block it falls in or on the other rows: the sampler splits the active
    /// rows over threads and relies on this for bit-identical samples at 1 and 2 threads.
    func testLinearRowsGivesEachRowTheSameBitsAloneAsInABatch() {
        var rng = RNG(seed: 14)
        for (n, ic, oc) in [(32, 128, 384), (11, 40, 200), (9, 1, 70)] {
            let x = randoms(n * ic, &rng), w = randoms(oc * ic, &rng), bias = randoms(oc, &rng)
            var wt = [Float](repeating: 0, count: ic * oc)
            Kernels.transpose(&wt, w, rows: oc, cols: ic)
            forEachISA { level in
                var all = [Float](repeating: 0, count: n * oc)
                Kernels.linearRows(out: &all, inp: x, wt: wt, bias: bias, n: n, ic: ic, oc: oc, accumulate: false)
                for r in 0..<n {
                    var one = [Float](repeating: 0, count: oc)
                    Array(x[(r * ic)..<((r + 1) * ic)]).withUnsafeBufferPointer { xr in
                        Kernels.linearRows(out: &one, inp: xr.baseAddress!, wt: wt, bias: bias, n: 1, ic: ic, oc: oc,
                                           accumulate: false)
                    }
                    XCTAssertEqual(one.map(\.bitPattern), all[(r * oc)..<((r + 1) * oc)].map(\.bitPattern),
                                   "row \(r) of n=\(n) ic=\(ic) oc=\(oc) \(level)")
                }
            }
        }
    }

    func testCausalSoftmaxKernelsMatchPlainAndZeroTheUpperTriangle() {
        var rng = RNG(seed: 5)
        for (len, ld) in [(1, 1), (5, 8), (17, 17), (64, 64)] {
            var a = randoms(ld * ld, &rng, scale: 4)
            a[0] = 80; if len > 1 { a[ld] = -80 }      // extreme logits
            let da = randoms(ld * ld, &rng)
            forEachISA { level in
                var x = a, xr = a
                Ops.causalSoftmax(&x, len: len, ld: ld)
                Ops.causalSoftmaxPlain(&xr, len: len, ld: ld)
                expectClose(x, xr, rtol: 1e-5, atol: 1e-7, "softmax len=\(len) \(level)")
                for t in 0..<len {
                    for j in (t + 1)..<max(t + 1, len) { XCTAssertEqual(x[t * ld + j], 0) }
                    let rowSum = (0...t).reduce(Float(0)) { $0 + x[t * ld + $1] }
                    XCTAssertEqual(rowSum, 1, accuracy: 1e-5)
                }
                var d = da, dr = da
                Ops.causalSoftmaxBackward(&d, xr, len: len, ld: ld, scale: 0.3)
                Ops.causalSoftmaxBackwardPlain(&dr, xr, len: len, ld: ld, scale: 0.3)
                expectClose(d, dr, rtol: 1e-4, atol: 1e-6, "softmax backward len=\(len) \(level)")
            }
        }
    }

    /// The training-attention kernels (bfk_attention_forward/backward through Ops.attentionForward/Backward) against
    /// the BLAS loop they replace: head dims below, at and between vector widths, sequences shorter than T (padding),
    /// a length-1 sequence, T not a multiple of any block, and a sequence with huge logits.
    func testAttentionKernelsMatchTheBLASLoopOnAwkwardShapes() {
        var rng = RNG(seed: 7)
        // (T = 50 and 16 with head dims 48 and 32: whole 16 × 16 transpose tiles plus row and column edges, a
        // length-17 sequence one row past a tile, a sequence exactly one tile long.)
        for (b, t, c, h, lens) in [(2, 5, 8, 2, [5, 3]), (3, 33, 40, 2, [33, 1, 20]), (2, 64, 128, 4, [64, 61]),
                                   (1, 70, 96, 3, [70]), (2, 9, 48, 1, [9, 8]), (2, 50, 96, 2, [50, 17]),
                                   (1, 16, 32, 1, [16])] {
            var qkv = randoms(b * t * 3 * c, &rng, scale: 2)
            for i in 0..<(3 * c) { qkv[i] *= 40 }          // first row of sequence 0: logits far from zero
            let g = randoms(b * t * c, &rng)
            forEachISA { level in
                var out = [Float](repeating: 9, count: b * t * c), outRef = out
                var att = [Float](repeating: 0, count: b * h * t * t), attRef = att
                Ops.attentionForward(out: &out, att: &att, qkv: qkv, lengths: lens, b: b, t: t, c: c, heads: h)
                Ops.attentionForwardPlain(out: &outRef, att: &attRef, qkv: qkv, lengths: lens, b: b, t: t, c: c, heads: h)
                // Compare only the rows that exist (att rows ≥ L_b are unused by contract).
                for bi in 0..<b { for hi in 0..<h { for r in 0..<lens[bi] {
                    let o = ((bi * h + hi) * t + r) * t
                    expectClose(Array(att[o..<(o + lens[bi])]), Array(attRef[o..<(o + lens[bi])]), rtol: 1e-4, atol: 1e-6,
                                "att b=\(bi) h=\(hi) row \(r) T=\(t) C=\(c) \(level)")
                } } }
                expectClose(out, outRef, rtol: 1e-4, atol: 1e-5, "out T=\(t) C=\(c) H=\(h) \(level)")
                var dqkv = [Float](repeating: 0.5, count: b * t * 3 * c), dRef = dqkv   // backward accumulates
                var scratch = [Float](repeating: 0, count: t * t)
                Ops.attentionBackward(dqkv: &dqkv, scratch: &scratch, dout: g, qkv: qkv, att: attRef, lengths: lens,
                                      b: b, t: t, c: c, heads: h)
                Ops.attentionBackwardPlain(dqkv: &dRef, scratch: &scratch, dout: g, qkv: qkv, att: attRef, lengths: lens,
                                           b: b, t: t, c: c, heads: h)
                expectClose(dqkv, dRef, rtol: 1e-3, atol: 1e-4, "dqkv T=\(t) C=\(c) H=\(h) \(level)")
            }
        }
    }

    /// The causal softmax reads whole 16-lane chunks on the diagonal: whatever sits above the diagonal (NaN, ±∞,
    /// huge values) must not reach the result, on lengths that end inside, at and past a chunk.
    func testCausalSoftmaxIgnoresGarbageAboveTheDiagonal() {
        var rng = RNG(seed: 12)
        for (len, ld) in [(16, 16), (31, 32), (33, 48), (64, 64), (100, 128)] {
            var a = randoms(ld * ld, &rng, scale: 3), da = randoms(ld * ld, &rng)
            let garbage: [Float] = [.nan, .infinity, -.infinity, 1e30]
            for t in 0..<len { for j in (t + 1)..<ld { a[t * ld + j] = garbage[(t + j) % 4]; da[t * ld + j] = garbage[(t + j + 1) % 4] } }
            a[(len - 1) * ld + 3] = -.infinity          // a −∞ logit inside a vector chunk: probability exactly 0
            forEachISA { level in
                var x = a, xr = a
                Ops.causalSoftmax(&x, len: len, ld: ld)
                Ops.causalSoftmaxPlain(&xr, len: len, ld: ld)
                for t in 0..<len {
                    expectClose(Array(x[(t * ld)..<(t * ld + len)]), Array(xr[(t * ld)..<(t * ld + len)]), rtol: 1e-5,
                                atol: 1e-7, "softmax row \(t) len=\(len) \(level)")
                }
                XCTAssertEqual(x[(len - 1) * ld + 3], 0, "exp(−∞) len=\(len) \(level)")
                var d = da, dr = da
                Ops.causalSoftmaxBackward(&d, xr, len: len, ld: ld, scale: 0.5)
                Ops.causalSoftmaxBackwardPlain(&dr, xr, len: len, ld: ld, scale: 0.5)
                for t in 0..<len {
                    expectClose(Array(d[(t * ld)..<(t * ld + len)]), Array(dr[(t * ld)..<(t * ld + len)]), rtol: 1e-4,
                                atol: 1e-6, "softmax backward row \(t) len=\(len) \(level)")
                }
            }
        }
    }

    /// The causal softmax and its backward give the same bits at every instruction-set level with FMA (AVX2,
    /// AVX-512: the same operations in the same order). The baseline level has no FMA, so steps that the compiler
    /// contracts elsewhere round differently there: exp's, and the scalar tails of rows whose last chunk would pass
    /// `len`. Where a length is a multiple of 16 there are no such tails, and the backward's vector code multiplies
    /// and adds in separate steps, so there its bits equal the baseline's too (attn-7 once let a 16-lane multiply-add
    /// contract; this caught it). Lengths end before, at and past 16-lane chunks, so rows run through the unmasked
    /// chunks below the diagonal's chunk and the masked diagonal chunk (attn-7 split them); below the diagonal: −∞
    /// (probability 0), logits ±150 (exp's lower clamp), +∞ (an ∞ − ∞ lane), ±80; above it NaN, ±∞ and 1e30, which
    /// must come out as +0.
    func testCausalSoftmaxIsBitIdenticalAcrossISALevels() {
        var rng = RNG(seed: 15)
        for (len, ld) in [(1, 1), (15, 16), (16, 16), (17, 20), (31, 32), (32, 35), (33, 48), (64, 64), (100, 128),
                          (128, 128)] {
            var a = randoms(len * ld, &rng, scale: 4), da = randoms(len * ld, &rng, scale: 2)
            let garbage: [Float] = [.nan, .infinity, -.infinity, 1e30]
            for t in 0..<len { for j in (t + 1)..<ld { a[t * ld + j] = garbage[(t + j) % 4]; da[t * ld + j] = garbage[(t + 2 * j) % 4] } }
            for t in 0..<len where t >= 20 {
                a[t * ld + 1] = -.infinity
                a[t * ld + 2] = t % 2 == 0 ? 150 : -150
                if t % 7 == 0 { a[t * ld + 3] = .infinity }
                a[t * ld + t / 2] = t % 3 == 0 ? 80 : -80
            }
            var probs = a   // one set of probabilities (detected level) feeds every level's backward
            Ops.causalSoftmax(&probs, len: len, ld: ld)
            var fmaRef: [Float] = [], dRef: [Float] = []
            forEachISA { level in
                var x = a
                Ops.causalSoftmax(&x, len: len, ld: ld)
                var d = da
                Ops.causalSoftmaxBackward(&d, probs, len: len, ld: ld, scale: 0.3)
                for t in 0..<len {
                    for j in (t + 1)..<len {
                        XCTAssertEqual(x[t * ld + j].bitPattern, 0, "softmax above the diagonal (\(t), \(j)) \(level)")
                        XCTAssertEqual(d[t * ld + j].bitPattern, 0, "backward above the diagonal (\(t), \(j)) \(level)")
                    }
                }
                let rows = (0..<len).flatMap { t in x[(t * ld)..<(t * ld + len)] }
                let dRows = (0..<len).flatMap { t in d[(t * ld)..<(t * ld + len)] }
                if level == .baseline {
                    if len % 16 == 0 { dRef = dRows }
                    return
                }
                if fmaRef.isEmpty { fmaRef = rows; if dRef.isEmpty { dRef = dRows } } else {
                    XCTAssertEqual(rows.map(\.bitPattern), fmaRef.map(\.bitPattern), "softmax len=\(len) ld=\(ld) \(level)")
                }
                XCTAssertEqual(dRows.map(\.bitPattern), dRef.map(\.bitPattern), "softmax backward len=\(len) ld=\(ld) \(level)")
            }
        }
    }

    /// Hostile values where the attention kernels must not look: NaN and ±∞ in the pad rows (t ≥ L_b) of qkv and of
    /// the upstream gradient, and NaN left in the probabilities buffer from an earlier use. The results (out, att rows
    /// < L_b, dqkv) equal bit for bit a run on clean buffers, are finite, and the pad rows of out and of the writing
    /// dqkv are 0; lengths 1, 16 (a whole softmax chunk), 17, T, with T = 37 and 64 (head dim 32: the interleaved
    /// softmax rows, the padded dS rows and the register transposes all run).
    func testAttentionIgnoresNonFinitePadRowsAndStaleProbabilities() {
        var rng = RNG(seed: 14)
        for (b, t, c, h, lens) in [(4, 37, 64, 2, [37, 1, 16, 17]), (3, 64, 128, 4, [64, 33, 2])] {
            let clean = randoms(b * t * 3 * c, &rng, scale: 2), gClean = randoms(b * t * c, &rng)
            var dirty = clean, gDirty = gClean
            let poison: [Float] = [.nan, .infinity, -.infinity, 3e38]
            for bi in 0..<b {
                for r in lens[bi]..<t {
                    for i in 0..<(3 * c) { dirty[(bi * t + r) * 3 * c + i] = poison[(r + i) % 4] }
                    for i in 0..<c { gDirty[(bi * t + r) * c + i] = poison[(r + i + 1) % 4] }
                }
            }
            forEachISA { level in
                var out = [Float](repeating: 0, count: b * t * c), outRef = out
                var att = [Float](repeating: .nan, count: b * h * t * t), attRef = [Float](repeating: 0, count: b * h * t * t)
                Ops.attentionForward(out: &out, att: &att, qkv: dirty, lengths: lens, b: b, t: t, c: c, heads: h)
                Ops.attentionForward(out: &outRef, att: &attRef, qkv: clean, lengths: lens, b: b, t: t, c: c, heads: h)
                XCTAssertEqual(out.map(\.bitPattern), outRef.map(\.bitPattern), "out T=\(t) \(level)")
                XCTAssertTrue(out.allSatisfy(\.isFinite), "out finite T=\(t) \(level)")
                for bi in 0..<b { for hi in 0..<h { for r in 0..<lens[bi] {
                    let o = ((bi * h + hi) * t + r) * t
                    XCTAssertEqual(att[o..<(o + lens[bi])].map(\.bitPattern), attRef[o..<(o + lens[bi])].map(\.bitPattern),
                                   "att b=\(bi) h=\(hi) row \(r) T=\(t) \(level)")
                } } }
                var scratch = [Float](repeating: .nan, count: t * t)
                var dqkv = [Float](repeating: .nan, count: b * t * 3 * c), dRef = [Float](repeating: 0, count: b * t * 3 * c)
                Ops.attentionBackward(dqkv: &dqkv, scratch: &scratch, dout: gDirty, qkv: dirty, att: att, lengths: lens,
                                      b: b, t: t, c: c, heads: h, accumulate: false)
                Ops.attentionBackward(dqkv: &dRef, scratch: &scratch, dout: gClean, qkv: clean, att: attRef, lengths: lens,
                                      b: b, t: t, c: c, heads: h, accumulate: false)
                XCTAssertEqual(dqkv.map(\.bitPattern), dRef.map(\.bitPattern), "dqkv T=\(t) \(level)")
                XCTAssertTrue(dqkv.allSatisfy(\.isFinite), "dqkv finite T=\(t) \(level)")
            }
        }
    }

    /// The writing attention backward (`accumulate: false`, what the model runs) equals the accumulating one run on
    /// a zeroed dqkv bit for bit, and sets the pad rows of shorter sequences to 0 whatever they held.
    func testAttentionBackwardThatWritesEqualsAccumulatingOntoZeros() {
        var rng = RNG(seed: 13)
        for (b, t, c, h, lens) in [(2, 33, 40, 2, [33, 7]), (2, 64, 128, 4, [64, 1]), (1, 20, 48, 3, [20])] {
            let qkv = randoms(b * t * 3 * c, &rng, scale: 2), g = randoms(b * t * c, &rng)
            forEachISA { level in
                var out = [Float](repeating: 0, count: b * t * c), att = [Float](repeating: 0, count: b * h * t * t)
                Ops.attentionForward(out: &out, att: &att, qkv: qkv, lengths: lens, b: b, t: t, c: c, heads: h)
                var scratch = [Float](repeating: 0, count: t * t)
                var ref = [Float](repeating: 0, count: b * t * 3 * c), set = [Float](repeating: .nan, count: b * t * 3 * c)
                Ops.attentionBackward(dqkv: &ref, scratch: &scratch, dout: g, qkv: qkv, att: att, lengths: lens,
                                      b: b, t: t, c: c, heads: h)
                Ops.attentionBackward(dqkv: &set, scratch: &scratch, dout: g, qkv: qkv, att: att, lengths: lens,
                                      b: b, t: t, c: c, heads: h, accumulate: false)
                XCTAssertEqual(set.map(\.bitPattern), ref.map(\.bitPattern), "attention backward set T=\(t) \(level)")
            }
        }
    }

    func testSumOfSquaresKernelMatchesADoubleLoop() {
        var rng = RNG(seed: 8)
        for n in [0, 1, 7, 8, 9, 1000, 70_001] {
            var x = randoms(n, &rng, scale: 3)
            if n > 2 { x[1] = 1e20; x[2] = 1e-30 }
            let ref = x.reduce(0.0) { $0 + Double($1) * Double($1) }
            forEachISA { level in
                let s = Kernels.sumOfSquares(x, count: n)
                XCTAssertEqual(s, ref, accuracy: 1e-12 * max(ref, 1), "n=\(n) \(level)")
            }
        }
    }

    func testAdamWKernelIsBitIdenticalToThePlainLoop() {
        var rng = RNG(seed: 6)
        let n = 1037
        let p0 = randoms(n, &rng), mask = (0..<n).map { Float($0 % 3 == 0 ? 0 : 1) }
        forEachISA { level in
            for useMask in [false, true] {
                var a = AdamW(learningRate: 1e-2, weightDecay: 0.1), b = a
                if useMask { a.decayMask = mask; b.decayMask = mask }
                var pa = p0, pb = p0
                for step in 0..<3 {
                    var g = randoms(n, &rng, scale: step == 1 ? 1e3 : 1)
                    g[0] = 0; g[1] = 1e-30
                    a.update(params: &pa, grads: g)
                    b.updatePlain(params: &pb, grads: g)
                }
                XCTAssertEqual(pa, pb, "params \(level) mask=\(useMask)")
                XCTAssertEqual(a.m, b.m); XCTAssertEqual(a.v, b.v); XCTAssertEqual(a.step, b.step)
            }
        }
        var empty: [Float] = [], opt = AdamW()
        opt.update(params: &empty, grads: [])   // no parameters: nothing to do, no crash
        XCTAssertEqual(opt.step, 1)
    }

    /// OpenBLAS 0.3.21 picks its SSE3 Prescott kernel on CPUs it does not know; BLAS.prepare() must have replaced
    /// any such pre-AVX2 core when the CPU has AVX2 + FMA and the user did not choose one with OPENBLAS_CORETYPE.
    func testOpenBLASDoesNotRunAGenericCoreOnAnAVX2Machine() {
        let core = BLAS.coreName
        guard getenv("OPENBLAS_CORETYPE") == nil, Kernels.detectedISA != .baseline else { return }
        let generic = ["Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Sandybridge", "Atom", "Nano", "Unknown"]
        XCTAssertFalse(generic.contains(core), "OpenBLAS core \(core) on a CPU with \(Kernels.detectedISA)")
        var c: [Float] = [0, 0, 0, 0]
        BLAS.sgemm(m: 2, n: 2, k: 2, [1, 2, 3, 4], [5, 6, 7, 8], &c)   // and it still computes
        XCTAssertEqual(c, [19, 22, 43, 50])
    }
}
