// Parallel (Sources/BonfireMath/Parallel.swift) and the loops that use it: every item is run exactly once, nested
// loops stay on their thread, and every threaded op gives the 1-thread result bit for bit (the partition never sums a
// float across threads). OpenBLAS stays at the test's thread count; only Bonfire's own threads change here.
import XCTest
import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import BonfireMath
import BonfireTestSupport

final class ParallelTests: XCTestCase {
    var savedThreads = 1
    override func setUp() { savedThreads = Parallel.threads }
    override func tearDown() { Parallel.setThreads(savedThreads) }

    func randoms(_ n: Int, _ rng: inout RNG, scale: Double = 1) -> [Float] {
        (0..<n).map { _ in Float(rng.normal() * scale) }
    }

    /// Runs `body` with Bonfire's threads at 1 and then at `threads`, returning both results.
    func atOneAnd<T>(_ threads: Int = 2, _ body: () -> T) -> (T, T) {
        Parallel.setThreads(1)
        let one = body()
        Parallel.setThreads(threads)
        let many = body()
        return (one, many)
    }

    func testForRangesCoversEveryItemOnceInContiguousOrderedRanges() {
        for threads in [1, 2, 3, 8] {
            Parallel.setThreads(threads)
            for count in [0, 1, 2, 3, 7, 100, 1001] {
                let hits = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
                hits.initialize(repeating: 0, count: max(count, 1))
                defer { hits.deallocate() }
                var seen = [Range<Int>](repeating: 0..<0, count: Parallel.ranges(count))
                seen.withUnsafeMutableBufferPointer { sp in
                    Parallel.forRanges(count) { r, slot in
                        sp[slot] = r
                        for i in r { hits[i] += 1 }
                    }
                }
                XCTAssertEqual((0..<count).map { hits[$0] }, [Int](repeating: 1, count: count), "threads \(threads) count \(count)")
                if count > 0 {
                    XCTAssertEqual(seen.first?.lowerBound, 0)
                    XCTAssertEqual(seen.last?.upperBound, count)
                    for k in 1..<seen.count { XCTAssertEqual(seen[k - 1].upperBound, seen[k].lowerBound) }
                }
            }
        }
    }

    func testSmallLoopsAndNestedLoopsStayOnOneRange() {
        Parallel.setThreads(2)
        XCTAssertEqual(Parallel.ranges(10, minItems: 11), 1)
        XCTAssertEqual(Parallel.ranges(1), 1)
        XCTAssertEqual(Parallel.ranges(10), 2)
        var inner = [Int](repeating: -1, count: 2)
        inner.withUnsafeMutableBufferPointer { ip in
            Parallel.forRanges(2) { r, _ in for i in r { ip[i] = Parallel.ranges(1000) } }
        }
        XCTAssertEqual(inner, [1, 1])
        XCTAssertEqual(Parallel.ranges(1000), 2, "the nesting flag is reset after the loop")
    }

    func testBLASSetNumThreadsSetsBonfireThreadsToo() {
        let blas = BLAS.numThreads
        BLAS.setNumThreads(2)
        XCTAssertEqual(Parallel.threads, 2)
        BLAS.setNumThreads(blas)
        XCTAssertEqual(Parallel.threads, blas)
    }

    func testThreadedLayerNormAndGeluAreBitIdenticalToOneThread() {
        var rng = RNG(seed: 11)
        for (n, c) in [(600, 128), (1001, 37), (3000, 16)] {   // enough rows to take the threaded path
            let x = randoms(n * c, &rng, scale: 3), w = randoms(c, &rng), b = randoms(c, &rng), dy = randoms(n * c, &rng)
            let (one, two) = atOneAnd { () -> [[Float]] in
                var o = [Float](repeating: 0, count: n * c), m = [Float](repeating: 0, count: n), r = m
                Ops.layerNormForward(out: &o, mean: &m, rstd: &r, inp: x, weight: w, bias: b, n: n, c: c)
                var dx = [Float](repeating: 0.25, count: n * c), dw = [Float](repeating: 1, count: c), db = dw
                Ops.layerNormBackward(dinp: &dx, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w, mean: m,
                                      rstd: r, n: n, c: c)
                var gl = [Float](repeating: 0, count: n * c), dg = [Float](repeating: 0.5, count: n * c)
                Ops.geluForward(out: &gl, inp: x, count: n * c)
                Ops.geluBackward(dinp: &dg, inp: x, dout: dy, count: n * c)
                return [o, m, r, dx, dw, db, gl, dg]
            }
            XCTAssertEqual(Parallel.ranges(n, minItems: Parallel.minRows(width: c)), 2, "n=\(n) c=\(c) must be threaded")
            for (i, name) in ["out", "mean", "rstd", "dinp", "dweight", "dbias", "gelu", "dgelu"].enumerated() {
                XCTAssertEqual(one[i], two[i], "\(name) n=\(n) c=\(c)")
            }
        }
    }

    func testThreadedAttentionIsBitIdenticalToOneThread() {
        var rng = RNG(seed: 12)
        let (b, t, c, h) = (5, 33, 64, 4)
        let lens = [33, 1, 20, 33, 7]
        let qkv = randoms(b * t * 3 * c, &rng, scale: 2), g = randoms(b * t * c, &rng)
        let (one, two) = atOneAnd { () -> [[Float]] in
            var out = [Float](repeating: 9, count: b * t * c), att = [Float](repeating: 0, count: b * h * t * t)
            Ops.attentionForward(out: &out, att: &att, qkv: qkv, lengths: lens, b: b, t: t, c: c, heads: h)
            var dqkv = [Float](repeating: 0.5, count: b * t * 3 * c), scratch = [Float](repeating: 0, count: t * t)
            Ops.attentionBackward(dqkv: &dqkv, scratch: &scratch, dout: g, qkv: qkv, att: att, lengths: lens,
                                  b: b, t: t, c: c, heads: h)
            return [out, att, dqkv]
        }
        XCTAssertEqual(one[0], two[0], "out")
        XCTAssertEqual(one[1], two[1], "att")
        XCTAssertEqual(one[2], two[2], "dqkv")
    }

    func testThreadedOptimiserStepAndClipAreBitIdenticalToOneThread() {
        var rng = RNG(seed: 13)
        let n = 300_001   // several clip chunks and AdamW ranges, with a ragged tail
        let p0 = randoms(n, &rng), g0 = randoms(n, &rng, scale: 5)
        let (one, two) = atOneAnd { () -> [Float] in
            var p = p0, g = g0, opt = AdamW(learningRate: 1e-2)
            let norm = clipGradNorm(&g, maxNorm: 1)
            opt.update(params: &p, grads: g)
            return [norm] + p + opt.m + opt.v
        }
        XCTAssertEqual(one, two)
    }

    func testClipGradNormMatchesThePlainSumAndScales() {
        var rng = RNG(seed: 14)
        for n in [1, 5, 65_536, 200_003] {
            let g0 = randoms(n, &rng, scale: 2)
            var a = g0, b = g0
            Parallel.setThreads(2)
            let na = clipGradNorm(&a, maxNorm: 1)
            let nb = clipGradNormPlain(&b, maxNorm: 1)
            XCTAssertEqual(na, nb, accuracy: 1e-6 * nb, "norm n=\(n)")
            expectClose(a, b, rtol: 1e-6, atol: 1e-9, "clipped n=\(n)")
        }
        var inf: [Float] = [1, .infinity, 2]
        XCTAssertEqual(clipGradNorm(&inf, maxNorm: 1), .infinity)
        XCTAssertEqual(inf, [1, .infinity, 2], "a non-finite norm never scales the gradient")
        var empty: [Float] = []
        XCTAssertEqual(clipGradNorm(&empty, maxNorm: 1), 0)
    }

    /// The worker pool (pool.c) under callers that race: four threads each run 300 regions of up to 8 parts at once
    /// (one holds the pool, the others run their parts themselves); every part of every region runs exactly once, on
    /// its own range, and a region returns only after all its parts finished. Then the same regions through
    /// Dispatch (`usesWorkerPool = false`) mark the same items.
    func testWorkerPoolRunsEveryPartOnceUnderConcurrentCallers() {
        for pool in [true, false] {
            Parallel.usesWorkerPool = pool
            defer { Parallel.usesWorkerPool = true }
            Parallel.setThreads(8)
            let callers = 4, regions = 300
            let failures = UnsafeMutablePointer<Int>.allocate(capacity: callers)
            failures.initialize(repeating: 0, count: callers)
            defer { failures.deallocate() }
            let failuresAddress = Int(bitPattern: failures)   // (a pointer is not Sendable; each caller owns its slot)
            DispatchQueue.concurrentPerform(iterations: callers) { c in
                let failures = UnsafeMutablePointer<Int>(bitPattern: failuresAddress)!
                var rng = RNG(seed: UInt64(c + 1))
                for _ in 0..<regions {
                    let count = 1 + Int(rng.next() % 3000)
                    let hits = UnsafeMutablePointer<Int32>.allocate(capacity: count)
                    hits.initialize(repeating: 0, count: count)
                    Parallel.forRanges(count) { range, _ in
                        for i in range { hits[i] += 1 }
                        if range.count > 1000 { usleep(20) }   // keep some parts busy while others finish
                    }
                    for i in 0..<count where hits[i] != 1 { failures[c] += 1 }
                    hits.deallocate()
                }
            }
            XCTAssertEqual((0..<callers).map { failures[$0] }, Array(repeating: 0, count: callers), "pool \(pool)")
        }
    }

}
