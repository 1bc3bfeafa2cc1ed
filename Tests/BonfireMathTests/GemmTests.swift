import XCTest
import BonfireMath
import BonfireTestSupport

final class GemmTests: XCTestCase {
    /// Naive triple loop as the reference for every transpose case.
    func naive(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, tA: Bool, tB: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n {
            var s: Float = 0
            for p in 0..<k {
                let av = tA ? a[p * m + i] : a[i * k + p]
                let bv = tB ? b[j * k + p] : b[p * n + j]
                s += av * bv
            }
            c[i * n + j] = s
        } }
        return c
    }

    func testSgemmMatchesNaiveForAllTransposeCases() {
        var rng = RNG(seed: 7)
        let (m, n, k) = (5, 7, 3)
        for tA in [false, true] { for tB in [false, true] {
            let a = (0..<(m * k)).map { _ in Float(rng.normal()) }
            let b = (0..<(k * n)).map { _ in Float(rng.normal()) }
            var c = [Float](repeating: 1, count: m * n)
            BLAS.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, a, b, beta: 0, &c)
            expectClose(c, naive(a, b, m: m, n: n, k: k, tA: tA, tB: tB), rtol: 1e-5, atol: 1e-5, "tA=\(tA) tB=\(tB)")
        } }
    }

    func testSgemmAccumulatesWithBeta() {
        var c: [Float] = [1, 1, 1, 1]
        BLAS.sgemm(m: 2, n: 2, k: 1, [1, 2], [3, 4], beta: 1, &c)
        XCTAssertEqual(c, [4, 5, 7, 9])
    }

    func testRNGStreamsAreReproducibleAndIndependent() {
        var a = RNG(seed: 1, stream: 2, 3), b = RNG(seed: 1, stream: 2, 3), c = RNG(seed: 1, stream: 2, 4)
        let xa = (0..<8).map { _ in a.next() }, xb = (0..<8).map { _ in b.next() }, xc = (0..<8).map { _ in c.next() }
        XCTAssertEqual(xa, xb)
        XCTAssertNotEqual(xa, xc)
        var r = RNG(seed: 9)
        let mean = (0..<20000).map { _ in r.uniform() }.reduce(0, +) / 20000
        XCTAssertEqual(mean, 0.5, accuracy: 0.02)
    }

    /// BLAS.sgemm's split over Bonfire's threads (rows of C when it is taller, columns when wider), with leading
    /// dimensions larger than the matrices and beta ≠ 0, gives the single call's result bit for bit.
    func testThreadedSplitEqualsOneCallBitForBit() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        var rng = RNG(seed: 21)
        for (m, n, k) in [(2048, 96, 128), (64, 1500, 160), (700, 700, 33)] {
            for tA in [false, true] { for tB in [false, true] {
                let pad = 3
                let la = (tA ? m : k) + pad, lb = (tB ? k : n) + pad, lc = n + pad
                let a = (0..<((tA ? k : m) * la)).map { _ in Float(rng.normal()) }
                let b = (0..<((tB ? n : k) * lb)).map { _ in Float(rng.normal()) }
                let c0 = (0..<(m * lc)).map { _ in Float(rng.normal()) }
                func run(_ threads: Int) -> [Float] {
                    Parallel.setThreads(threads)
                    var c = c0
                    c.withUnsafeMutableBufferPointer { cp in
                        BLAS.sgemm(transA: tA, transB: tB, m: m, n: n, k: k, alpha: 0.5, a: a, lda: la, b: b, ldb: lb,
                                   beta: 0.25, c: cp.baseAddress!, ldc: lc)
                    }
                    return c
                }
                let one = run(1)
                XCTAssertEqual(BLAS.sgemmParts(m: m, n: n, k: k), 1, "threads 1 never splits")
                let two = run(2)
                XCTAssertEqual(BLAS.sgemmParts(m: m, n: n, k: k), 2, "\(m)×\(n)×\(k) is big enough to split")
                XCTAssertEqual(one, two, "m=\(m) n=\(n) k=\(k) tA=\(tA) tB=\(tB)")
                for i in 0..<m { for j in n..<lc { XCTAssertEqual(two[i * lc + j], c0[i * lc + j], "padding untouched") } }
            } }
        }
        Parallel.setThreads(2)
        XCTAssertEqual(BLAS.sgemmParts(m: 32, n: 32, k: 32), 1, "small products stay one call")
        XCTAssertEqual(BLAS.openBLASThreads, 1, "OpenBLAS itself runs single-threaded")
    }
}
