import XCTest
import BonfireMath
import BonfireTestSupport

/// Bonfire's own SGEMM (CBonfireKernels/gemm.c through `BLAS.sgemmOwn` / `BLAS.sgemm`) against a triple loop in
/// Double, at every instruction-set level this CPU has.
final class GemmKernelTests: XCTestCase {
    override func tearDown() {
        Kernels.setISA(Kernels.detectedISA)
        BLAS.ownKernelEnabled = true
        super.tearDown()
    }

    struct Product {
        var tA: Bool, tB: Bool, m: Int, n: Int, k: Int, alpha: Float, beta: Float
        var lda: Int { (tA ? m : k) + 3 }
        var ldb: Int { (tB ? k : n) + 5 }
        var ldc: Int { n + 2 }
    }

    /// Random operands (and C: NaN when beta = 0, which must then not be read) with padded leading dimensions.
    func operands(_ p: Product, _ rng: inout RNG) -> (a: [Float], b: [Float], c: [Float]) {
        let a = (0..<max(1, (p.tA ? p.k : p.m) * p.lda)).map { _ in Float(rng.normal()) }
        let b = (0..<max(1, (p.tB ? p.n : p.k) * p.ldb)).map { _ in Float(rng.normal()) }
        let c = (0..<max(1, p.m * p.ldc)).map { _ in p.beta == 0 ? Float.nan : Float(rng.normal()) }
        return (a, b, c)
    }

    /// Runs the own kernel; nil when it did not handle the product (C then must be untouched).
    func own(_ p: Product, _ a: [Float], _ b: [Float], _ c0: [Float]) -> [Float]? {
        var c = c0
        let done = c.withUnsafeMutableBufferPointer { cp in
            BLAS.sgemmOwn(transA: p.tA, transB: p.tB, m: p.m, n: p.n, k: p.k, alpha: p.alpha, a: a, lda: p.lda,
                          b: b, ldb: p.ldb, beta: p.beta, c: cp.baseAddress!, ldc: p.ldc)
        }
        if !done { XCTAssertTrue(zip(c, c0).allSatisfy { $0.bitPattern == $1.bitPattern }, "C untouched when not handled") }
        return done ? c : nil
    }

    /// Checks C against alpha·Σ a·b + beta·C₀ computed in Double, elementwise within 1e-5 of the sum of the
    /// products' magnitudes; the padding columns past n must keep their bits.
    func check(_ p: Product, _ a: [Float], _ b: [Float], _ c0: [Float], _ c: [Float], file: StaticString = #filePath,
               line: UInt = #line) {
        var worst = 0.0
        for i in 0..<p.m {
            for j in 0..<p.ldc {
                let got = c[i * p.ldc + j]
                if j >= p.n {
                    XCTAssertEqual(got.bitPattern, c0[i * p.ldc + j].bitPattern, "padding column \(j) of row \(i)",
                                   file: file, line: line)
                    continue
                }
                var s = 0.0, mag = 0.0
                for q in 0..<p.k {
                    let x = Double(p.tA ? a[q * p.lda + i] : a[i * p.lda + q])
                    let y = Double(p.tB ? b[j * p.ldb + q] : b[q * p.ldb + j])
                    s += x * y; mag += abs(x * y)
                }
                let old = p.beta == 0 ? 0 : Double(p.beta) * Double(c0[i * p.ldc + j])
                let want = Double(p.alpha) * s + old
                let err = abs(Double(got) - want) / (abs(Double(p.alpha)) * mag + abs(old) + 1e-6)
                if !(err <= 1e-5) {
                    XCTFail("\(p): C[\(i)][\(j)] = \(got), want \(want) (relative error \(err))", file: file, line: line)
                    return
                }
                worst = max(worst, err)
            }
        }
    }

    /// Every transpose case; m, n, k from 0 and 1 through the tile edges (6 rows, 16/64 columns, 256-deep k-blocks,
    /// 192-row A blocks, 1024-column B blocks) to a few hundred; padded lda/ldb/ldc; alpha and beta in {0, 1, −0.5} (beta = 0 over a NaN C).
    func testOwnKernelMatchesDoubleLoopInEveryCaseAtEveryLevel() {
        var rng = RNG(seed: 51)
        let ms = [0, 1, 5, 6, 7, 13, 97], ns = [0, 1, 15, 16, 17, 63, 64, 65, 130], ks = [0, 1, 2, 127, 257, 513]
        let scalars: [Float] = [0, 1, -0.5]
        var products: [Product] = []
        var index = 0
        for tA in [false, true] { for tB in [false, true] {
            for m in ms { for n in ns { for k in ks {
                products.append(Product(tA: tA, tB: tB, m: m, n: n, k: k, alpha: scalars[index % 3],
                                        beta: scalars[(index / 3) % 3]))
                index += 1
            } } }
            // Larger: several 96-row A blocks and 128-deep k-blocks, and more than 1024 columns (two B blocks).
            products.append(Product(tA: tA, tB: tB, m: 300, n: 200, k: 260, alpha: 1, beta: 1))
            products.append(Product(tA: tA, tB: tB, m: 20, n: 1100, k: 140, alpha: -0.5, beta: 0))
            // lda > 512: op(A) = Aᵀ is packed (below that, read in place).
            products.append(Product(tA: tA, tB: tB, m: 600, n: 70, k: 300, alpha: 1, beta: -0.5))
        } }
        for level in Kernels.ISA.allCases where level.rawValue <= Kernels.detectedISA.rawValue {
            Kernels.setISA(level)
            var handled = 0
            for p in products {
                let (a, b, c0) = operands(p, &rng)
                guard let c = own(p, a, b, c0) else { continue }
                handled += 1
                check(p, a, b, c0, c)
            }
            // The kernel is AVX-512 only: below it every product is left to OpenBLAS.
            XCTAssertEqual(handled, level == .avx512 ? products.count : 0, "products handled at \(level)")
        }
    }

    /// alpha = 0 does not read A or B (NaN there does not reach C): C = beta·C, zeros for beta = 0 over NaN.
    func testAlphaZeroOnlyScalesC() throws {
        guard Kernels.detectedISA == .avx512 else { throw XCTSkip("own SGEMM needs AVX-512") }
        let p = Product(tA: false, tB: true, m: 7, n: 70, k: 130, alpha: 0, beta: -0.5)
        var rng = RNG(seed: 52)
        var (a, b, c0) = operands(p, &rng)
        a[3] = .nan; b[5] = .infinity
        let c = try XCTUnwrap(own(p, a, b, c0))
        for i in 0..<p.m { for j in 0..<p.n { XCTAssertEqual(c[i * p.ldc + j], -0.5 * c0[i * p.ldc + j]) } }
        var zero = p; zero.beta = 0
        let cz = try XCTUnwrap(own(zero, a, b, [Float](repeating: .nan, count: c0.count)))
        for i in 0..<p.m { for j in 0..<p.n { XCTAssertEqual(cz[i * p.ldc + j], 0) } }
    }

    /// `BLAS.sgemm` routes the linear-layer shapes to the own kernel (with AVX-512 and the switch on) and small
    /// products to OpenBLAS; the switch off or a lower level sends everything to OpenBLAS.
    func testKernelChoiceFollowsShapeLevelAndSwitch() {
        let hasOwn = Kernels.detectedISA == .avx512
        XCTAssertEqual(BLAS.kernel(m: 4096, n: 768, k: 256), hasOwn ? .own : .openBLAS)
        XCTAssertEqual(BLAS.kernel(m: 128, n: 128, k: 2048), hasOwn ? .own : .openBLAS)
        XCTAssertEqual(BLAS.kernel(m: 400, n: 192, k: 64), hasOwn ? .own : .openBLAS, "the default job's model (dim 64)")
        XCTAssertEqual(BLAS.kernel(m: 64, n: 64, k: 32), .openBLAS, "attention-sized products stay on OpenBLAS")
        XCTAssertEqual(BLAS.kernel(m: 2048, n: 63, k: 128), .openBLAS)
        XCTAssertEqual(BLAS.kernel(m: 63, n: 256, k: 64), .openBLAS)
        BLAS.ownKernelEnabled = false
        XCTAssertEqual(BLAS.kernel(m: 4096, n: 768, k: 256), .openBLAS, "the switch turns it off")
        BLAS.ownKernelEnabled = true
        Kernels.setISA(.avx2)
        XCTAssertEqual(BLAS.kernel(m: 4096, n: 768, k: 256), .openBLAS, "below AVX-512: OpenBLAS")
    }

    /// Through `BLAS.sgemm` on the own kernel's shapes: one thread and two threads (split by rows or by columns of C)
    /// give the same bits, and both agree with OpenBLAS within float rounding.
    func testThreadedSplitOnOwnKernelIsBitIdenticalAndMatchesOpenBLAS() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        var rng = RNG(seed: 53)
        for (tA, tB, m, n, k) in [(false, true, 1030, 384, 130), (false, false, 2048, 128, 384),
                                  (true, false, 384, 130, 2048), (true, false, 128, 512, 2048)] {
            let p = Product(tA: tA, tB: tB, m: m, n: n, k: k, alpha: 1, beta: 1)
            let (a, b, c0) = operands(p, &rng)
            func run(threads: Int, own: Bool) -> [Float] {
                Parallel.setThreads(threads)
                BLAS.ownKernelEnabled = own
                var c = c0
                c.withUnsafeMutableBufferPointer { cp in
                    BLAS.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: p.alpha, a: a, lda: p.lda, b: b,
                               ldb: p.ldb, beta: p.beta, c: cp.baseAddress!, ldc: p.ldc)
                }
                return c
            }
            let one = run(threads: 1, own: true), two = run(threads: 2, own: true)
            XCTAssertEqual(BLAS.sgemmParts(m: m, n: n, k: k), 2, "\(m)×\(n)×\(k) splits at 2 threads")
            XCTAssertTrue(zip(one, two).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(p): 1 vs 2 threads")
            let reference = run(threads: 1, own: false)
            var worst: Float = 0
            for i in 0..<m { for j in 0..<n {
                worst = max(worst, abs(one[i * p.ldc + j] - reference[i * p.ldc + j]))
            } }
            XCTAssertLessThan(worst, 1e-3, "\(p): own vs OpenBLAS (sums of \(k) products of unit normals)")
        }
    }

    /// A linear layer at the tiny train step's shape (N = 2048 rows, 128 → 384) through `Ops.linearForward` (bias
    /// rows under a beta = 1 product) and `Ops.linearBackward` (dX written, dW accumulated onto a nonzero gradient):
    /// the own kernel's results agree with OpenBLAS's to float rounding.
    func testLinearLayerOnOwnKernelMatchesOpenBLAS() throws {
        guard Kernels.detectedISA == .avx512 else { throw XCTSkip("own SGEMM needs AVX-512") }
        let n = 2048, ic = 128, oc = 384
        XCTAssertEqual(BLAS.kernel(m: n, n: oc, k: ic), .own)
        var rng = RNG(seed: 54)
        func randoms(_ count: Int) -> [Float] { (0..<count).map { _ in Float(rng.normal()) } }
        let x = randoms(n * ic), w = randoms(oc * ic), bias = randoms(oc), dy = randoms(n * oc), dw0 = randoms(oc * ic)
        func run(own: Bool) -> (out: [Float], dx: [Float], dw: [Float]) {
            BLAS.ownKernelEnabled = own
            var out = [Float](repeating: .nan, count: n * oc), dx = [Float](repeating: .nan, count: n * ic), dw = dw0
            Ops.linearForward(out: &out, inp: x, weight: w, bias: bias, n: n, ic: ic, oc: oc)
            Ops.linearBackward(dinp: &dx, dweight: &dw, dbias: nil, dout: dy, inp: x, weight: w, n: n, ic: ic, oc: oc,
                               accumulateInput: false)
            return (out, dx, dw)
        }
        let mine = run(own: true), reference = run(own: false)
        expectClose(mine.out, reference.out, rtol: 1e-4, atol: 1e-4, "forward")
        expectClose(mine.dx, reference.dx, rtol: 1e-4, atol: 1e-4, "dX")
        expectClose(mine.dw, reference.dw, rtol: 1e-4, atol: 1e-3, "dW (sums over 2048 rows)")
    }
}
