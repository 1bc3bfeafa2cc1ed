// Bonfire's multi-threading: big products split by rows or columns (BLAS.sgemm), attention over (sequence × head),
// LayerNorm, GELU, the token loss and the optimiser over rows or chunks, and the decode step over sampling slots.
//
// Rules that keep results deterministic and independent of the thread count:
//   - work is split into contiguous ranges of independent items (rows, (sequence, head) pairs, slots, columns);
//     each item is computed by exactly the same code, in the same order, whichever thread runs it;
//   - no float is ever summed across threads: a reduction either runs over columns (each thread owns whole output
//     columns and walks the rows in order) or fills per-chunk partial results that the caller adds in a fixed order.
// So the threaded result equals the 1-thread result bit for bit (Tests/BonfireMathTests/ParallelTests.swift).
//
// `Parallel.threads` is the configured thread count: OPENBLAS_NUM_THREADS (else the CPU count) at start, or
// BLAS.setNumThreads. It is the only thread pool: OpenBLAS runs single-threaded and BLAS.sgemm splits big products
// over these threads too. At 1 nothing changes: every loop runs on the caller, as before. Threads come from the
// worker pool in Sources/CBonfireKernels/pool.c (`bfk_parallel_run`: persistent workers that spin up to 200 µs between
// regions, then sleep), used only when a loop has enough work to pay for the hand-off. Fast path beside the simple
// one: `usesWorkerPool = false` runs the same ranges through Dispatch's `concurrentPerform`, which on 2-vCPU VMs
// starts its second thread 50–170 µs late in every region (pool.c's header has the measurements).

import Dispatch
import CBonfireKernels

package enum Parallel {
    /// Threads Bonfire's math may use (≥ 1). Starts at OpenBLAS's thread count (see BLAS.prepare).
    package static var threads: Int {
        let t = Int(bfk_threads())
        if t > 0 { return t }
        BLAS.prepare()
        return max(1, Int(bfk_threads()))
    }

    /// Sets Bonfire's thread count (loops and split products; BLAS.setNumThreads does the same).
    package static func setThreads(_ n: Int) {
        precondition(n >= 1, "Parallel.setThreads: need ≥ 1 thread, got \(n)")
        bfk_set_threads(Int32(n))
    }

    /// Runs `body` over `count` items split into contiguous ranges, one per thread, when there are ≥ 2 threads and
    /// the loop has at least `minItems` items (below that, a wake-up costs more than it saves); otherwise runs
    /// `body(0..<count)` on the caller. `body` must treat items independently (see the rules above). The second
    /// argument is the index of the range (0 ..< number of ranges), for per-thread scratch.
    package static func forRanges(_ count: Int, minItems: Int = 2, _ body: (Range<Int>, Int) -> Void) {
        if count <= 0 { return }
        let t = ranges(count, minItems: minItems)
        if t <= 1 { body(0..<count, 0); return }
        // `body` only runs until the region returns, and its ranges are disjoint (the contract above).
        withoutActuallyEscaping(body) { run in
            var job = RangeJob(count: count, parts: t, body: run)
            if usesWorkerPool {
                withUnsafeMutablePointer(to: &job) { p in
                    bfk_parallel_run(t, { ctx, i in
                        ctx!.assumingMemoryBound(to: RangeJob.self).pointee.run(Int(i))
                    }, p)
                }
            } else {
                let shared = UncheckedSendable(job)
                DispatchQueue.concurrentPerform(iterations: t) { i in shared.value.run(i) }
            }
        }
    }

    /// Tests and A/B benchmarks only: false runs parallel regions through Dispatch instead of the worker pool (same
    /// ranges, same results). Not thread-safe.
    package nonisolated(unsafe) static var usesWorkerPool = true

    /// The number of ranges `forRanges` would use for `count` items (size per-thread scratch with it).
    /// A loop inside a range (nested) runs on its own thread: one level of threads only.
    package static func ranges(_ count: Int, minItems: Int = 2) -> Int {
        let t = min(threads, count)
        return t <= 1 || count < max(2, minItems) || bfk_in_parallel() != 0 ? 1 : t
    }

    /// `minItems` for a loop over rows of `width` floats: parallel from about 32 K floats of work on.
    package static func minRows(width: Int) -> Int { max(2, (1 << 15) / max(1, width)) }
}

/// One `Parallel.forRanges` region: range i of `parts` contiguous ranges over `count` items.
private struct RangeJob {
    let count: Int, parts: Int
    let body: (Range<Int>, Int) -> Void
    func run(_ i: Int) {
        let outer = bfk_in_parallel()
        bfk_set_in_parallel(1)
        body((i * count / parts)..<((i + 1) * count / parts), i)
        bfk_set_in_parallel(outer)
    }
}

/// A value handed to the threads of one `Parallel.forRanges` call (which keeps them apart by range).
private struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
