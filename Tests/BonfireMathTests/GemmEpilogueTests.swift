// The own SGEMM's fused epilogues (`BLAS.Epilogue`, gemm.c `bfk_sgemm_ex`) against the unfused sequence of passes
// (`BLAS.sgemmSeparate`, `Ops.…Separate`): the same bits, at every instruction-set level this CPU has (below
// AVX-512 the fused entry points run the separate passes themselves), on tile edges (m not a multiple of 6, n not a
// multiple of 16 or 64, several k-blocks, more than one 512-column B block), padded leading dimensions, NaN and ±∞
// in the operands, beta = 0 over a NaN C, and one versus two threads.
import XCTest
import BonfireMath
import BonfireTestSupport

final class GemmEpilogueTests: XCTestCase {
    override func tearDown() {
        Kernels.setISA(Kernels.detectedISA)
        BLAS.ownKernelEnabled = true
        BLAS.fusesEpilogues = true
        super.tearDown()
    }

    /// Equal bits, or both NaN (a NaN's payload is not part of the contract).
    func sameBits(_ x: [Float], _ y: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(x.count, y.count, what, file: file, line: line)
        for i in 0..<min(x.count, y.count) where x[i].bitPattern != y[i].bitPattern && !(x[i].isNaN && y[i].isNaN) {
            XCTFail("\(what): element \(i): \(x[i]) vs \(y[i])", file: file, line: line)
            return
        }
    }

    func levels() -> [Kernels.ISA] {
        Kernels.ISA.allCases.filter { $0.rawValue <= Kernels.detectedISA.rawValue }
    }

    func randoms(_ n: Int, _ rng: inout RNG, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(rng.normal() * scale) }
    }

    /// Sprinkles NaN, +∞ and −∞ into a few elements.
    func poison(_ x: inout [Float], _ rng: inout RNG) {
        guard x.count > 8 else { return }
        for v: Float in [.nan, .infinity, -.infinity] { x[Int(rng.next() % UInt64(x.count))] = v }
    }

    /// aSums (op(A) = Aᵀ only) sums into the geluOut buffer's first m floats (starting from its −7s).
    /// geluLocal: GELU into geluOut and GELU' over C (the training forward's c_fc).
    enum Kind: CaseIterable { case bias, addend, addendBias, gelu, biasGelu, geluLocal, biasGeluLocal, aSums }

    struct Case {
        var tA: Bool, tB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float, kind: Kind
        var lda: Int { (tA ? m : k) + 3 }
        var ldb: Int { (tB ? k : n) + 5 }
        var ldc: Int { n + 2 }
        var lde: Int { n + 7 }   // the epilogue's matrices: another padding than C's
    }

    struct Operands {
        var a: [Float], b: [Float], c: [Float], bias: [Float], addend: [Float], geluOut: [Float]
    }

    func operands(_ p: Case, _ rng: inout RNG, hostile: Bool) -> Operands {
        var a = randoms(max(1, (p.tA ? p.k : p.m) * p.lda), &rng)
        var b = randoms(max(1, (p.tB ? p.n : p.k) * p.ldb), &rng)
        let c = p.beta == 0 ? [Float](repeating: .nan, count: max(1, p.m * p.ldc)) : randoms(max(1, p.m * p.ldc), &rng)
        // GELU's input is the product (+ bias): sums of k normal products span its saturated tails (±8 and beyond);
        // every 11th row of A scaled by 1e-5 puts its row of C near 0, in the |x| < 0.0004 branch of fast_tanh.
        if !p.tA { for r in stride(from: 0, to: p.m, by: 11) { for q in 0..<p.k { a[r * p.lda + q] *= 1e-5 } } }
        var bias = randoms(max(1, p.n), &rng), addend = randoms(max(1, p.m * p.lde), &rng)
        if hostile { poison(&a, &rng); poison(&b, &rng); poison(&bias, &rng); poison(&addend, &rng) }
        return Operands(a: a, b: b, c: c, bias: bias, addend: addend,
                        geluOut: [Float](repeating: -7, count: max(1, p.m * p.lde)))
    }

    /// Runs `body` with the epilogue of `kind` over o's buffers; returns C and geluOut afterwards.
    func run(_ p: Case, _ o: Operands,
             _ body: (UnsafeMutablePointer<Float>, BLAS.Epilogue) -> Void) -> (c: [Float], gelu: [Float]) {
        var c = o.c, g = o.geluOut
        o.bias.withUnsafeBufferPointer { bias in o.addend.withUnsafeBufferPointer { addend in
            g.withUnsafeMutableBufferPointer { g in
                c.withUnsafeMutableBufferPointer { c in
                    var e = BLAS.Epilogue()
                    switch p.kind {
                    case .bias: e.bias = bias.baseAddress
                    case .addend: e.addend = addend.baseAddress; e.ldAddend = p.lde
                    case .addendBias: e.bias = bias.baseAddress; e.addend = addend.baseAddress; e.ldAddend = p.lde
                    case .gelu: e.geluOut = g.baseAddress; e.ldGeluOut = p.lde
                    case .biasGelu: e.bias = bias.baseAddress; e.geluOut = g.baseAddress; e.ldGeluOut = p.lde
                    case .geluLocal: e.geluOut = g.baseAddress; e.ldGeluOut = p.lde; e.geluLocalInC = true
                    case .biasGeluLocal:
                        e.bias = bias.baseAddress; e.geluOut = g.baseAddress; e.ldGeluOut = p.lde; e.geluLocalInC = true
                    case .aSums: e.aSums = g.baseAddress
                    }
                    body(c.baseAddress!, e)
                }
            }
        } }
        return (c, g)
    }

    func fused(_ p: Case, _ o: Operands) -> (c: [Float], gelu: [Float], handled: Bool) {
        var handled = false
        let r = run(p, o) { c, e in
            handled = BLAS.sgemmOwn(transA: p.tA, transB: p.tB, m: p.m, n: p.n, k: p.k, alpha: p.alpha, a: o.a,
                                    lda: p.lda, b: o.b, ldb: p.ldb, beta: p.beta, c: c, ldc: p.ldc, epilogue: e)
        }
        return (r.c, r.gelu, handled)
    }

    func separate(_ p: Case, _ o: Operands, _ kern: BLAS.Kernel) -> (c: [Float], gelu: [Float]) {
        run(p, o) { c, e in
            BLAS.sgemmSeparate(kern, transA: p.tA, transB: p.tB, m: p.m, n: p.n, k: p.k, alpha: p.alpha, a: o.a,
                               lda: p.lda, b: o.b, ldb: p.ldb, beta: p.beta, c: c, ldc: p.ldc, epilogue: e)
        }
    }

    /// Every epilogue on every transpose case and tile edge: `bfk_sgemm_ex` gives the bits of the separate passes
    /// around `bfk_sgemm` (padding columns of C and of geluOut keep theirs); below AVX-512 it declines and leaves
    /// C and geluOut untouched.
    func testEveryEpilogueEqualsTheSeparatePassesBitForBitAtEveryLevel() {
        var rng = RNG(seed: 61)
        var cases: [Case] = []
        var index = 0
        let shapes = [(1, 1, 1), (5, 15, 127), (6, 16, 256), (7, 17, 257), (13, 63, 0), (13, 65, 513),
                      (97, 130, 128), (200, 600, 300), (600, 70, 300)]   // the last: Aᵀ with lda > 512 is packed
        for tA in [false, true] { for tB in [false, true] { for (m, n, k) in shapes {
            for kind in Kind.allCases where tA || kind != .aSums {
            let scalars: [Float] = [1, -0.5, 0]
            cases.append(Case(tA: tA, tB: tB, m: m, n: n, k: k, alpha: scalars[index % 3],
                              beta: [0, 1, -0.5][(index / 3) % 3], kind: kind))
            index += 1
        } } } }
        for level in levels() {
            Kernels.setISA(level)
            var handled = 0
            for (i, p) in cases.enumerated() {
                let o = operands(p, &rng, hostile: i % 2 == 1)
                let f = fused(p, o)
                if !f.handled {
                    sameBits(f.c, o.c, "\(p) at \(level): C untouched when not handled")
                    sameBits(f.gelu, o.geluOut, "\(p) at \(level): geluOut untouched when not handled")
                    continue
                }
                handled += 1
                let s = separate(p, o, .own)
                sameBits(f.c, s.c, "\(p): C")
                sameBits(f.gelu, s.gelu, "\(p): geluOut")
            }
            XCTAssertEqual(handled, level == .avx512 ? cases.count : 0, "products handled at \(level)")
        }
    }

    /// The epilogues really act (a fused product is not the bare product): C = addend + bias + A·B and
    /// geluOut = GELU(C) within float rounding of a Double loop, C's NaN ignored under an addend.
    func testEpiloguesComputeWhatTheySay() throws {
        guard Kernels.detectedISA == .avx512 else { throw XCTSkip("own SGEMM needs AVX-512") }
        var rng = RNG(seed: 62)
        let p = Case(tA: false, tB: true, m: 13, n: 70, k: 300, alpha: 1, beta: 0, kind: .addendBias)
        let o = operands(p, &rng, hostile: false)
        var q = p; q.kind = .biasGelu
        let f = fused(p, o), g = fused(q, o)
        XCTAssertTrue(f.handled && g.handled)
        for i in 0..<p.m { for j in 0..<p.n {
            var s = 0.0
            for t in 0..<p.k { s += Double(o.a[i * p.lda + t]) * Double(o.b[j * p.ldb + t]) }
            let want = s + Double(o.addend[i * p.lde + j]) + Double(o.bias[j])
            XCTAssertEqual(Double(f.c[i * p.ldc + j]), want, accuracy: 1e-4 * (abs(want) + 1), "C[\(i)][\(j)]")
            let pre = g.c[i * p.ldc + j]
            XCTAssertEqual(Double(pre), s + Double(o.bias[j]), accuracy: 1e-4 * (abs(s) + 1))
            var ref: Float = 0
            Ops.geluForwardPlain(out: &ref, inp: [pre], count: 1)
            XCTAssertEqual(g.gelu[i * p.lde + j], ref, accuracy: 1e-5 * (abs(ref) + 1), "GELU[\(i)][\(j)]")
        } }
    }

    /// Through `BLAS.sgemm` (split over threads by rows or by columns of C, each part with its offset epilogue): one
    /// and two threads give the same bits, equal to the separate passes over the whole product; below AVX-512 the
    /// product runs on OpenBLAS with the separate passes.
    func testThreadedEpiloguesAreBitIdenticalToOneThreadAndToTheSeparatePasses() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        var rng = RNG(seed: 63)
        for level in levels() {
            Kernels.setISA(level)
            // Row and column splits; the dW-like products (Aᵀ) with A packed (lda > 512) and read in place.
            for (tA, tB, m, n, k) in [(false, true, 1030, 384, 130), (false, false, 2048, 130, 256),
                                      (false, false, 200, 1100, 256), (true, false, 768, 256, 2048),
                                      (true, false, 256, 1100, 512)] {
                for kind in Kind.allCases where tA || kind != .aSums {
                    let p = Case(tA: tA, tB: tB, m: m, n: n, k: k, alpha: 1, beta: 0, kind: kind)
                    let o = operands(p, &rng, hostile: true)
                    func threaded(_ t: Int) -> (c: [Float], gelu: [Float]) {
                        Parallel.setThreads(t)
                        return run(p, o) { c, e in
                            BLAS.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: p.alpha, a: o.a, lda: p.lda,
                                       b: o.b, ldb: p.ldb, beta: p.beta, c: c, ldc: p.ldc, epilogue: e)
                        }
                    }
                    let one = threaded(1), two = threaded(2)
                    XCTAssertEqual(BLAS.sgemmParts(m: m, n: n, k: k), 2, "\(m)×\(n)×\(k) splits at 2 threads")
                    let s = separate(p, o, BLAS.kernel(m: m, n: n, k: k))
                    sameBits(one.c, two.c, "\(p) \(level): C, 1 vs 2 threads")
                    sameBits(one.gelu, two.gelu, "\(p) \(level): geluOut, 1 vs 2 threads")
                    sameBits(one.c, s.c, "\(p) \(level): C vs separate passes")
                    sameBits(one.gelu, s.gelu, "\(p) \(level): geluOut vs separate passes")
                }
            }
        }
    }
}
