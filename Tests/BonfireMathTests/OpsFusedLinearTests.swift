// Ops' linear layers with fused GEMM epilogues (`linearForward`'s bias and residual, `linearForwardGELU`,
// `linearBackwardGELU`) against their separate-pass twins (`…Separate`): the same bits at every instruction-set level
// this CPU has, at one and two threads, on shapes that are not multiples of the tiles, with NaN and ±∞ in the inputs.
import XCTest
import BonfireMath
import BonfireTestSupport

final class OpsFusedLinearTests: XCTestCase {
    override func tearDown() {
        Kernels.setISA(Kernels.detectedISA)
        BLAS.fusesEpilogues = true
        super.tearDown()
    }

    // N rows not a multiple of 6, OC not a multiple of 16; every dimension ≥ 128 (the own kernel's shapes), enough
    // work to split over two threads.
    let n = 390, ic = 130, oc = 200

    func sameBits(_ x: [Float], _ y: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.count, y.count, what, file: file, line: line)
        for i in 0..<min(x.count, y.count) where x[i].bitPattern != y[i].bitPattern && !(x[i].isNaN && y[i].isNaN) {
            XCTFail("\(what): element \(i): \(x[i]) vs \(y[i])", file: file, line: line)
            return
        }
    }

    func randoms(_ count: Int, _ rng: inout RNG, scale: Double = 1, hostile: Bool = false) -> [Float] {
        var x = (0..<count).map { _ in Float(rng.normal() * scale) }
        if hostile { for v: Float in [.nan, .infinity, -.infinity] { x[rng.int(count)] = v } }
        return x
    }

    /// Runs `body` at every level the CPU has and at 1 and 2 threads; `body` gets a label.
    func everywhere(_ body: (String) -> Void) {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        for level in Kernels.ISA.allCases where level.rawValue <= Kernels.detectedISA.rawValue {
            Kernels.setISA(level)
            XCTAssertEqual(BLAS.fuses(m: n, n: oc, k: ic), level == .avx512, "fused exactly on the own kernel")
            for threads in [1, 2] {
                Parallel.setThreads(threads)
                body("\(level), \(threads) threads")
            }
        }
    }

    /// Bias only, residual + bias and residual only: the first k-block's epilogue gives the bits of the pass that
    /// wrote residual + bias over all of out before a beta = 1 product (out starts as NaN: never read).
    func testLinearForwardWithBiasOrResidualEqualsTheSeparatePasses() {
        var rng = RNG(seed: 71)
        let x = randoms(n * ic, &rng, hostile: true), w = randoms(oc * ic, &rng, scale: 0.1)
        let bias = randoms(oc, &rng, hostile: true), residual = randoms(n * oc, &rng, hostile: true)
        everywhere { label in
            for (b, r, what) in [(true, false, "bias"), (true, true, "residual + bias"), (false, true, "residual")] {
                var fused = [Float](repeating: .nan, count: n * oc), plain = fused
                bias.withUnsafeBufferPointer { bp in residual.withUnsafeBufferPointer { rp in
                    Ops.linearForward(out: &fused, inp: x, weight: w, bias: b ? bp.baseAddress : nil, n: n, ic: ic,
                                      oc: oc, residual: r ? rp.baseAddress : nil)
                    Ops.linearForwardSeparate(out: &plain, inp: x, weight: w, bias: b ? bp.baseAddress : nil, n: n,
                                              ic: ic, oc: oc, residual: r ? rp.baseAddress : nil)
                } }
                sameBits(fused, plain, "\(what), \(label)")
                XCTAssertFalse(fused.allSatisfy(\.isNaN), "\(what), \(label): out written")
            }
        }
    }

    /// dbias summed while the dW product packs dout (oc > 512) or in the own kernel's loop (oc ≤ 512): dinp, dW and
    /// dbias equal those of the separate column-sum pass (`BLAS.fusesEpilogues` off), NaN/±∞ in dout included.
    func testLinearBackwardDBiasInTheProductEqualsTheSeparateSums() {
        var rng = RNG(seed: 74)
        for oc in [200, 600] {
            let dout = randoms(n * oc, &rng, hostile: true), w = randoms(oc * ic, &rng), inp = randoms(n * ic, &rng)
            let dw0 = randoms(oc * ic, &rng), db0 = randoms(oc, &rng)
            everywhere { label in
                func run(_ fused: Bool) -> ([Float], [Float], [Float]) {
                    BLAS.fusesEpilogues = fused
                    defer { BLAS.fusesEpilogues = true }
                    var dx = [Float](repeating: .nan, count: n * ic), dw = dw0, db = db0
                    Ops.linearBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: dout, inp: inp, weight: w, n: n,
                                       ic: ic, oc: oc, accumulateInput: false)
                    return (dx, dw, db)
                }
                let f = run(true), s = run(false)
                sameBits(f.0, s.0, "dX, oc \(oc), \(label)")
                sameBits(f.1, s.1, "dW, oc \(oc), \(label)")
                sameBits(f.2, s.2, "db, oc \(oc), \(label)")
                XCTAssertFalse(f.2 == db0, "db changed")
            }
        }
    }

    /// c_fc with GELU: GELU(pre-activation) and the pre-activation — or, with `keepLocal` (training), GELU' of it —
    /// equal `linearForwardSeparate` followed by `geluForward` (`geluForwardLocal`).
    func testLinearForwardGELUEqualsLinearThenGELU() {
        var rng = RNG(seed: 72)
        let x = randoms(n * ic, &rng, hostile: true), w = randoms(oc * ic, &rng, scale: 0.3)
        let bias = randoms(oc, &rng, hostile: true)
        everywhere { label in
            for withBias in [true, false] {
                var pre = [Float](repeating: .nan, count: n * oc), g = pre
                for keepLocal in [false, true] {
                    var out = [Float](repeating: .nan, count: n * oc), gOut = out, outRef = out, gRef = out
                    bias.withUnsafeBufferPointer { bp in
                        let b = withBias ? bp.baseAddress : nil
                        Ops.linearForwardGELU(out: &out, geluOut: &gOut, keepLocal: keepLocal, inp: x, weight: w,
                                              bias: b, n: n, ic: ic, oc: oc)
                        Ops.linearForwardGELUSeparate(out: &outRef, geluOut: &gRef, keepLocal: keepLocal, inp: x,
                                                      weight: w, bias: b, n: n, ic: ic, oc: oc)
                    }
                    let what = keepLocal ? "GELU'" : "pre-activation"
                    sameBits(out, outRef, "\(what), bias \(withBias), \(label)")
                    sameBits(gOut, gRef, "GELU, bias \(withBias), keepLocal \(keepLocal), \(label)")
                    if keepLocal {
                        // The kept factor is GELU' of the very pre-activation the plain forward returns.
                        var factor = [Float](repeating: .nan, count: n * oc)
                        Ops.geluBackward(dinp: &factor, inp: pre, dout: [Float](repeating: 1, count: n * oc),
                                         count: n * oc, accumulate: false)
                        sameBits(out, factor, "GELU' of the pre-activation, bias \(withBias), \(label)")
                        sameBits(gOut, g, "GELU either way, bias \(withBias), \(label)")
                    } else {
                        pre = out; g = gOut
                    }
                }
            }
        }
    }

    /// c_proj's backward through GELU with GELU' kept by the forward: d pre-activation = (dout·W) ⊙ GELU' written
    /// over NaN, dW and db accumulated onto nonzero gradients — the same bits as before the seventh pass, when the
    /// backward computed GELU' from the pre-activation (`linearBackward`, then `geluBackward` in place).
    func testLinearBackwardGELUEqualsLinearBackwardThenGELUBackward() {
        var rng = RNG(seed: 73)
        // As c_proj: its input has ic = 4C-like width, dout has oc columns.
        let dout = randoms(n * oc, &rng, hostile: true), w = randoms(oc * ic, &rng, scale: 0.3)
        let pre = randoms(n * ic, &rng, scale: 4, hostile: true), inp = randoms(n * ic, &rng)
        let dw0 = randoms(oc * ic, &rng), db0 = randoms(oc, &rng)
        var local = pre, gelu = [Float](repeating: 0, count: n * ic)
        Ops.geluForwardLocal(out: &gelu, x: &local, count: n * ic)
        everywhere { label in
            var d = [Float](repeating: .nan, count: n * ic), dRef = d
            var dw = dw0, dwRef = dw0, db = db0, dbRef = db0
            Ops.linearBackwardGELU(dinp: &d, geluLocal: local, dweight: &dw, dbias: &db, dout: dout, inp: inp,
                                   weight: w, n: n, ic: ic, oc: oc)
            Ops.linearBackward(dinp: &dRef, dweight: &dwRef, dbias: &dbRef, dout: dout, inp: inp, weight: w, n: n,
                               ic: ic, oc: oc, accumulateInput: false)
            dRef.withUnsafeMutableBufferPointer { p in
                Ops.geluBackward(dinp: p.baseAddress!, inp: pre, dout: p.baseAddress!, count: n * ic, accumulate: false)
            }
            sameBits(d, dRef, "d pre-activation, \(label)")
            sameBits(dw, dwRef, "dW, \(label)")
            sameBits(db, dbRef, "db, \(label)")
        }
    }
}
