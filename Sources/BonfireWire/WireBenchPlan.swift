// The methodology of `bonfire-bench wire` (throughput), kept here so that its flag checks, round order, thread
// placement and statistics are tested (Tests/BonfireWireTests/WireBenchPlanTests.swift); the bench itself only
// moves messages and prints.
//
// Sixth pass (docs/performance.md, "Wire benchmark, sixth pass"): every round runs every path back to back (raw,
// ours, ours + admission; the order reverses each round, ABC CBA, so neither path always runs first or last), and
// the result is the median and range of the per-round ratios raw time / path time. A slow minute then slows both
// sides of a pair instead of deciding which path's "best round" wins. Before (passes ≤ 5) the ratio was best raw
// round / best ours round, which on 2 vCPUs moved 0.53–1.02 for one binary at 64 KiB.
#if canImport(Glibc)
import Glibc
#endif

/// A rejected `bonfire-bench wire` flag: which one, and what to pass instead.
package struct WireBenchPlanError: Error, CustomStringConvertible, Equatable, Sendable {
    package var description: String
}

/// The paths a throughput round measures, in the order a forward round runs them.
package enum WireBenchPath: Int, CaseIterable, Sendable {
    /// Bytes through `zmq_send` → `zmq_msg_recv`, not parsed: the transport alone.
    case raw
    /// `ZMQSocket.send(WireEnvelope)` → `receiveEnvelope` (FastCodec decode, run-id and protocol checks).
    case ours
    /// Ours, and the receiver also validates each rollout against the learner's admission context.
    case oursAdmission
}

/// Validated settings of a throughput run: rounds, warm-up, sizes and message counts.
package struct WireBenchPlan: Equatable, Sendable {
    /// Largest rollout size accepted (KiB): with HWM 64 on both sockets, up to ~2 × 64 messages are in flight.
    package static let maxKiB = 16 << 10
    /// Largest message count per round (a hostile `--scale` must not make a round run for days).
    package static let maxMessagesPerRound = 10_000_000
    /// Bytes a round moves at `scale` 1 for large messages (≈ 0.3 s on loopback at ~1.7 GB/s) and the message cap
    /// for small ones (1 KiB: 100 000 messages ≈ 0.2–0.4 s).
    package static let bytesPerRound = 512 << 20
    package static let messagesPerRoundCap = 100_000

    package let rounds: Int
    package let warmupRounds: Int
    package let kib: [Int]
    package let scale: Double
    package let highWaterMark: Int32

    /// Throws a message naming the flag for: rounds < 1, warm-up < 0, no sizes, a size ≤ 0 or > `maxKiB`, a scale
    /// that is not finite and positive, or an HWM < 1 (0 would mean "unlimited": memory grows without bound).
    package init(rounds: Int, warmupRounds: Int, kib: [Int], scale: Double, highWaterMark: Int32) throws(WireBenchPlanError) {
        guard rounds >= 1 else {
            throw WireBenchPlanError(description: "--rounds must be at least 1 (got \(rounds)); 9 or more for a quotable ratio")
        }
        guard rounds <= 10_000 else { throw WireBenchPlanError(description: "--rounds \(rounds) is too many (at most 10000)") }
        guard warmupRounds >= 0, warmupRounds <= 1000 else {
            throw WireBenchPlanError(description: "--warmup must be 0…1000 rounds (got \(warmupRounds))")
        }
        guard !kib.isEmpty else { throw WireBenchPlanError(description: "--kib needs at least one size, e.g. --kib 1 64 1024") }
        for k in kib where k < 1 || k > Self.maxKiB {
            throw WireBenchPlanError(description: "--kib \(k) is out of range: sizes are 1…\(Self.maxKiB) KiB")
        }
        guard scale.isFinite, scale > 0 else {
            throw WireBenchPlanError(description: "--scale must be a finite number > 0 (got \(scale)); 1 = about 0.3 s per path and round")
        }
        guard highWaterMark >= 1 else {
            throw WireBenchPlanError(description: "--hwm must be at least 1 message (got \(highWaterMark)); 0 would mean unlimited")
        }
        self.rounds = rounds
        self.warmupRounds = warmupRounds
        self.kib = kib
        self.scale = scale
        self.highWaterMark = highWaterMark
    }

    /// Messages per path and round for a rollout of `kib` KiB: about `bytesPerRound` bytes, at most
    /// `messagesPerRoundCap` messages, times `scale`, clamped to 10…`maxMessagesPerRound`.
    /// (1 KiB: 100 000; 64 KiB: 8 192; 1 MiB: 512.)
    package func messagesPerRound(kib: Int) -> Int {
        let base = Double(min(Self.messagesPerRoundCap, Self.bytesPerRound / max(1, kib << 10)))
        let scaled = (base * scale).rounded()
        return Int(min(Double(Self.maxMessagesPerRound), max(10, scaled)))
    }

    /// The order of the paths in round `round` (0-based; warm-up rounds count from 0 too): forward on even rounds,
    /// reversed on odd ones, so each path runs first, in the middle and last equally often over pairs of rounds.
    package static func order(round: Int) -> [WireBenchPath] {
        round.isMultiple(of: 2) ? WireBenchPath.allCases : WireBenchPath.allCases.reversed()
    }
}

/// Per-round ratios baseline time / candidate time (> 1: the candidate is faster), from rounds that ran both back to
/// back. Sorted; `median` / `min` / `max` describe them.
package struct PairedRatios: Equatable, Sendable {
    package let sorted: [Double]

    /// `baseline[i]` and `candidate[i]` are the seconds of round i. Rounds where either time is not finite and
    /// positive are left out (a clock that did not move says nothing).
    package init(baseline: [Double], candidate: [Double]) {
        precondition(baseline.count == candidate.count,
                     "paired rounds need as many baseline (\(baseline.count)) as candidate (\(candidate.count)) times")
        sorted = zip(baseline, candidate).compactMap { b, c in
            b.isFinite && c.isFinite && b > 0 && c > 0 ? b / c : nil
        }.sorted()
    }

    package var count: Int { sorted.count }
    package var min: Double { sorted.first ?? .nan }
    package var max: Double { sorted.last ?? .nan }
    /// The middle ratio (mean of the two middle ones for an even count); NaN without rounds.
    package var median: Double { Self.median(ofSorted: sorted) }

    package static func median(ofSorted s: [Double]) -> Double {
        if s.isEmpty { return .nan }
        let m = s.count / 2
        return s.count.isMultiple(of: 2) ? (s[m - 1] + s[m]) / 2 : s[m]
    }

    package static func median(_ xs: [Double]) -> Double { median(ofSorted: xs.sorted()) }
}

/// CPUs for the bench's threads. `senderIO == nil`: one ZeroMQ context (one I/O thread, on `io`, doing the PUSH's
/// TCP writes and the PULL's reads); otherwise the sender has its own context whose I/O thread runs on `senderIO`
/// and the receiver's context's I/O thread runs on `io`, as an actor process and a learner process would.
package struct WireBenchCPUs: Equatable, Sendable {
    package var sender: Int
    package var receiver: Int
    package var io: Int
    package var senderIO: Int?

    package init(sender: Int, receiver: Int, io: Int, senderIO: Int? = nil) {
        self.sender = sender
        self.receiver = receiver
        self.io = io
        self.senderIO = senderIO
    }
}

/// Where the bench's busy threads run: the sender, the receiver, and ZeroMQ's I/O thread(s). Passes ≤ 5 used one
/// context and left placement to the OS (`os`).
package enum WireBenchPlacement: String, CaseIterable, Sendable {
    /// One context; the scheduler places and migrates the threads (passes ≤ 5).
    case os
    /// Two contexts, as two processes: the sender and its I/O thread on the first allowed CPU, the receiver and its
    /// I/O thread on the second. Each side's CPU work (encode, decode) competes with its own transport only.
    case sides
    /// One context; the I/O thread alone on the first allowed CPU, sender and receiver share the second.
    case ioAlone = "io-alone"
    /// One context; the sender alone on the first allowed CPU, receiver and I/O thread share the second.
    case senderAlone = "sender-alone"
    /// One context; the receiver alone on the first allowed CPU, sender and I/O thread share the second.
    case receiverAlone = "receiver-alone"

    /// The CPUs given those this process may run on (nil for `os`); throws when a pinned placement has fewer than
    /// two (e.g. under `taskset -c 0`), saying what to pass instead.
    package func cpus(allowed: [Int]) throws(WireBenchPlanError) -> WireBenchCPUs? {
        if self == .os { return nil }
        guard allowed.count >= 2 else {
            throw WireBenchPlanError(description: "--placement \(rawValue) needs two CPUs, this process may use "
                                     + "\(allowed.isEmpty ? "an unknown set" : "only \(allowed)"); pass --placement os")
        }
        let a = allowed[0], b = allowed[1]
        switch self {
        case .os: return nil
        case .sides: return WireBenchCPUs(sender: a, receiver: b, io: b, senderIO: a)
        case .ioAlone: return WireBenchCPUs(sender: b, receiver: b, io: a)
        case .senderAlone: return WireBenchCPUs(sender: a, receiver: b, io: b)
        case .receiverAlone: return WireBenchCPUs(sender: b, receiver: a, io: b)
        }
    }

    /// One line for the bench's header.
    package func describe(_ cpus: WireBenchCPUs?) -> String {
        guard let c = cpus else { return "one ZeroMQ context, threads placed by the OS" }
        if let sio = c.senderIO {
            let on = { (a: Int, b: Int) in a == b ? "CPU \(a)" : "CPUs \(a) / \(b)" }
            return "two ZeroMQ contexts: sender + its I/O thread on \(on(c.sender, sio)), receiver + its I/O thread on \(on(c.receiver, c.io))"
        }
        return "one ZeroMQ context: sender CPU \(c.sender), receiver CPU \(c.receiver), I/O thread CPU \(c.io)"
    }
}

/// The calling thread's CPU affinity (Linux: sched_getaffinity/sched_setaffinity on thread id 0 = this thread).
/// Swift's Glibc module hides these GNU functions, so they are looked up by name, as `WireMemory` does mallopt.
package enum ThreadAffinity {
    /// Bits in the CPU masks passed to the kernel (glibc's CPU_SETSIZE).
    package static let maxCPUs = 1024

    #if os(Linux)
    private typealias AffinityCall = @convention(c) (Int32, Int, UnsafeMutableRawPointer) -> Int32
    private typealias GetCPU = @convention(c) () -> Int32
    private static func symbol<T>(_ name: String, as: T.Type) -> T? {
        dlsym(nil, name).map { unsafeBitCast($0, to: T.self) }
    }
    #endif

    /// CPUs the calling thread may run on, ascending; empty where unsupported.
    package static func current() -> [Int] {
        #if os(Linux)
        guard let get = symbol("sched_getaffinity", as: AffinityCall.self) else { return [] }
        var mask = [UInt8](repeating: 0, count: maxCPUs / 8)
        guard mask.withUnsafeMutableBytes({ get(0, $0.count, $0.baseAddress!) }) == 0 else { return [] }
        return (0..<maxCPUs).filter { mask[$0 / 8] & (1 << UInt8($0 % 8)) != 0 }
        #else
        return []
        #endif
    }

    /// Restricts the calling thread to `cpus`. Throws (with errno text) for CPUs outside 0..<`maxCPUs`, an empty
    /// list, if the kernel refuses, or on other systems.
    package static func set(_ cpus: [Int]) throws(WireBenchPlanError) {
        #if os(Linux)
        guard let setAffinity = symbol("sched_setaffinity", as: AffinityCall.self) else {
            throw WireBenchPlanError(description: "sched_setaffinity is not available; pass --placement os")
        }
        var mask = [UInt8](repeating: 0, count: maxCPUs / 8)
        for c in cpus {
            guard c >= 0, c < maxCPUs else { throw WireBenchPlanError(description: "CPU \(c) is outside 0..<\(maxCPUs)") }
            mask[c / 8] |= 1 << UInt8(c % 8)
        }
        guard mask.withUnsafeMutableBytes({ setAffinity(0, $0.count, $0.baseAddress!) }) == 0 else {
            throw WireBenchPlanError(description: "sched_setaffinity(\(cpus)) failed: \(String(cString: strerror(errno))); "
                                     + "pass --placement os")
        }
        #else
        throw WireBenchPlanError(description: "thread pinning is Linux-only; pass --placement os")
        #endif
    }

    /// The CPU the calling thread is on right now (-1 where unknown).
    package static func currentCPU() -> Int {
        #if os(Linux)
        guard let get = symbol("sched_getcpu", as: GetCPU.self) else { return -1 }
        return Int(get())
        #else
        return -1
        #endif
    }
}
