// `bonfire-bench wire`: throughput of rollout messages (BoN group batches) over tcp://127.0.0.1, ours beside raw
// libzmq in the same run (same encoded sizes, PUSH → PULL, same SNDHWM/RCVHWM, same counts). Sixth pass: paired
// rounds — each round runs every path back to back, order reversing each round — and the ratio is the median
// [min–max] of the per-round ratios; sender and receiver each have their own ZeroMQ context and each side is
// pinned with its I/O thread to one CPU (`--placement`, default sides). Plan, order, statistics and pinning: BonfireWire/WireBenchPlan.swift. Passes ≤ 5 took the best round of
// each path (still printed as "best/best") with threads placed by the OS. Paths:
// - raw: a byte buffer of the encoded size through `zmq_send` (libzmq copies it into a message) → `zmq_msg_recv`,
//   not copied out, not parsed: the transport alone.
// - ours: `ZMQSocket.send(WireEnvelope)` (FastCodec writes the protobuf bytes straight into the ZeroMQ message) →
//   `receiveEnvelope` (WireDecoder: size limit, parse into Swift arrays, protocol and run-id checks).
// - ours + admission: ours, and the receiver also validates each envelope against the learner's admission context
//   (`learnerContext`), as `LearnerLink.receiveRollout` does before a rollout is used: the learner's whole receive.
// Then the parameter broadcast (1 M and 10 M floats) over PUB/SUB, raw beside ours, and ours through the same-host
// shared-memory ring (see `parameterLatency`).
// Encode/decode µs and ms are also given for protobuf-c, the codec before FastCodec and for the other payloads.
// `bonfire-bench wire codec`: ours' CPU cost per rollout message alone (encode, decode, validate; one thread, no
// sockets, fastest of many short batches: robust on a loaded machine, where the throughput ratio is not).
// `bonfire-bench wire interop`: the Python interoperability check (Scripts/wire_interop.py).
// Each measurement runs a sender thread and a receiver thread in one process: with `--placement sides` (default)
// each has its own ZeroMQ context (own I/O thread) and is pinned with it to one CPU; otherwise one context's I/O
// thread does both the PUSH's TCP writes and the PULL's reads.
import ArgumentParser
import BonfireCluster
import BonfireWire
import Foundation

struct WireBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Wire-layer throughput and parameter-broadcast latency over tcp loopback; Python interop check.",
        subcommands: [WireThroughput.self, WireCodec.self, WireInterop.self],
        defaultSubcommand: WireThroughput.self)
}

/// A lock-protected box for handing values between the bench's threads.
private final class Box<T>: @unchecked Sendable {  // every access goes through `lock`
    private let lock = NSLock()
    private var value: T
    init(_ v: T) { value = v }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
}

private let benchRunID = "bench-run"

/// A rollout message of about `bytes` encoded bytes: one BoN group, N = 8 responses of T tokens
/// (8 bytes per token: uint32 id + float32 log-prob).
private func rollout(bytes: Int) -> WireEnvelope {
    let n = 8
    let t = max(1, (bytes - 256) / (n * 8))
    let group = WireBoNGroup(
        itemID: 7, promptTokens: Array(repeating: 5, count: 32), behaviourVersion: 3, temperature: 1,
        responses: (0..<n).map { i in
            WireBoNResponse(tokens: (0..<t).map { ($0 * 7 + i) % 64 },
                            tokenLogProbs: (0..<t).map { -Float($0 % 13) * 0.1 }, verifierScore: 0.5,
                            reward: Double(i % 2))
        })
    return WireEnvelope(runID: benchRunID, senderRole: .actor, senderID: 1, sequence: 1,
                        payload: .bonGroups(WireBoNGroupBatch(task: "math", groups: [group])))
}

/// The learner's admission context for `rollout(bytes:)` messages (what `LearnerLink.receiveRollout` checks):
/// task, vocabulary, context length, group size, item range, version window.
private func learnerContext(for env: WireEnvelope) -> ValidationContext {
    guard case .bonGroups(let b) = env.payload else { preconditionFailure("not a rollout") }
    var c = ValidationContext(receiver: .learner, runID: benchRunID)
    c.rolloutKind = .bonGroups
    c.task = b.task
    c.itemCount = 1000
    c.vocabSize = 64
    let longest = b.groups.flatMap(\.responses).map(\.tokens.count).max() ?? 0
    c.maxNewTokens = longest
    c.contextLength = (b.groups.map(\.promptTokens.count).max() ?? 0) + longest
    c.groupSizes = 8...8
    c.currentVersion = 3
    c.maxLag = 4
    c.rewardRange = 0...1
    return c
}

struct WireCodec: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec",
        abstract: "Encode / decode / validate µs per rollout message, ours and protobuf-c (one thread, no sockets).")

    @Option(help: "Timed batches per measurement (the fastest batch counts).")
    var batches = 300

    @Option(parsing: .upToNextOption, help: "Rollout sizes in KiB.")
    var kib: [Int] = [1, 64, 1024]

    mutating func run() throws {
        WireMemory.configureForLargeMessages()
        print("bonfire-bench wire codec: µs per message, fastest of \(batches) batches (each ≈ 0.2 ms of work)")
        print("| payload | encoded bytes | encode µs | decode µs | validate µs | ours total µs | validate µs, no decode summary | protobuf-c encode µs | protobuf-c decode µs |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in kib {
            let label = k % 1024 == 0 ? "\(k / 1024) MiB" : "\(k) KiB"
            let env = rollout(bytes: k << 10)
            let bytes = env.encoded()
            precondition(bytes == env.encodedWithProtobufC(), "FastCodec and protobuf-c encodings differ")
            let decoder = WireDecoder(runID: benchRunID)
            let context = learnerContext(for: env)
            let decoded = try decoder.decode(bytes)
            precondition(decoded == env && context.validate(decoded) == .valid, "rollout round trip or verdict differs")
            // Batches of ≈ 0.2 ms at ~1 GB/s: short enough that some run without being preempted.
            let reps = max(1, (200 << 10) / bytes.count)
            var sink = 0
            func best(_ body: () throws -> Int) rethrows -> Double {
                var fastest = Double.infinity
                for _ in 0..<batches {
                    let t = ContinuousClock.now
                    for _ in 0..<reps { sink &+= try body() }
                    fastest = min(fastest, ms(ContinuousClock.now - t) * 1000 / Double(reps))
                }
                return fastest
            }
            let encode = best { env.encoded().count }
            let decode = try best {
                guard case .bonGroups(let b) = try decoder.decode(bytes).payload else { return 0 }
                return b.groups.count
            }
            let validate = best { context.validate(decoded) == .valid ? 1 : 0 }
            // The same value built locally: no summary from FastCodec, so validation reads every id and log-prob.
            let plainValidate = best { context.validate(env) == .valid ? 1 : 0 }
            let slowEncode = best { env.encodedWithProtobufC().count }
            let slowDecode = try best {
                guard case .bonGroups(let b) = try WireEnvelope(protobufCWire: bytes).payload else { return 0 }
                return b.groups.count
            }
            precondition(sink > 0)
            print(String(format: "| %@ | %d | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |", label, bytes.count, encode, decode,
                         validate, encode + decode + validate, plainValidate, slowEncode, slowDecode))
        }
    }
}

extension WireBenchPlacement: ExpressibleByArgument {}

struct WireThroughput: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "throughput",
        abstract: "Rollout messages/s and MB/s, ours vs raw libzmq, in paired rounds.",
        discussion: """
            Each round runs raw, ours and ours + admission back to back (order ABC, then CBA, alternating) with the \
            same message count and size; the ratio columns are the median [min–max] over rounds of raw time / path \
            time in the same round (> 1: ours faster). Progress lines per round go to stderr.
            "best/best" is the ratio passes ≤ 5 reported (best raw round / best ours round, threads placed by the \
            OS): it moved 0.53–1.02 between runs of one binary at 64 KiB on a 2-vCPU VM; compare new numbers with \
            old ones only through that column and only with --placement os.
            Placement (--placement): where the sender thread, the receiver thread and ZeroMQ's I/O thread(s) run. \
            sides (default) gives the sender and the receiver each its own ZeroMQ context, as an actor process and a \
            learner process have, and pins each side with its I/O thread to one CPU (the first and second this \
            process may use): each side's encode or decode competes with its own transport work only. os: one \
            context (one I/O thread for both sockets), placed by the scheduler (passes ≤ 5; its rounds are bimodal \
            on 2 vCPUs). io-alone / sender-alone / receiver-alone: one context, the named thread alone on the first \
            CPU, the other two on the second. Pinned placements need two CPUs; see docs/performance.md, "Wire \
            benchmark, sixth pass".
            Encode / decode / validate µs per message: `bonfire-bench wire codec` (one thread, no sockets).
            """)

    @Option(help: "Scale the message counts (1 = about 0.3 s per path and round: 100 000 × 1 KiB, 8 192 × 64 KiB, 512 × 1 MiB).")
    var scale: Double = 1

    @Option(help: "Measured rounds; each runs every path once (ratios: median [min–max] of the per-round ratios).")
    var rounds: Int = 9

    @Option(help: "Warm-up rounds per size, run like the others and not counted.")
    var warmup: Int = 1

    @Option(parsing: .upToNextOption, help: "Rollout sizes in KiB (1…16384).")
    var kib: [Int] = [1, 64, 1024]

    @Option(help: "Thread placement: sides | os | io-alone | sender-alone | receiver-alone (see the discussion above).")
    var placement: WireBenchPlacement = .sides

    @Option(help: "Send/receive high-water mark (messages) for both paths.")
    var hwm: Int32 = 64

    @Flag(help: "Keep glibc's default malloc settings (skip WireMemory.configureForLargeMessages()).")
    var defaultMalloc = false

    @Flag(help: "Measure what ZeroMQ CURVE costs: raw and ours, each with and without CURVE (ZAP-authenticated).")
    var curve = false

    @Flag(help: "Skip the parameter-broadcast table.")
    var noBroadcast = false

    func validate() throws {
        do {
            _ = try plan()
            _ = try placement.cpus(allowed: ThreadAffinity.current())
        } catch { throw ValidationError(error.description) }
    }

    private func plan() throws(WireBenchPlanError) -> WireBenchPlan {
        try WireBenchPlan(rounds: rounds, warmupRounds: warmup, kib: kib, scale: scale, highWaterMark: hwm)
    }

    mutating func run() throws {
        let tuned = defaultMalloc ? false : WireMemory.configureForLargeMessages()
        let plan = try plan()
        let cpus = try placement.cpus(allowed: ThreadAffinity.current())
        if curve { return try curveTable(tuned: tuned, plan: plan, cpus: cpus) }
        let where_ = placement.describe(cpus)
        print("bonfire-bench wire: libzmq \(ZMQContext.libraryVersion), tcp://127.0.0.1, HWM \(hwm), \(plan.rounds) paired rounds "
              + "(+\(plan.warmupRounds) warm-up), placement \(placement.rawValue) (\(where_)), malloc tuned for large messages: \(tuned)")
        print("| payload | encoded bytes | msgs/round | raw MB/s median [min–max] | ours MB/s median | **ours/raw** median [min–max] | ours+admission/raw median [min–max] | best/best (passes ≤ 5) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for k in plan.kib {
            let (label, env, encodedBytes, n) = payload(kib: k, plan)
            let context = learnerContext(for: env)
            var seconds = [[Double]](repeating: [], count: WireBenchPath.allCases.count)
            for round in 0..<(plan.warmupRounds + plan.rounds) {
                var line = "wire \(label) round \(round < plan.warmupRounds ? "warm-up \(round + 1)" : "\(round - plan.warmupRounds + 1)/\(plan.rounds)"):"
                var this = [Double](repeating: 0, count: WireBenchPath.allCases.count)
                for path in WireBenchPlan.order(round: round) {
                    let s = try measure(count: n, bytes: encodedBytes, ours: path == .raw ? nil : env,
                                        admission: path == .oursAdmission ? context : nil, cpus: cpus)
                    this[path.rawValue] = s
                    line += String(format: " %@ %.0f MB/s", "\(path)", Double(n) * Double(encodedBytes) / 1e6 / s)
                }
                line += String(format: "; ours/raw %.2f", this[0] / this[1])
                FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
                if round >= plan.warmupRounds { for p in this.indices { seconds[p].append(this[p]) } }
            }
            let mbs = { (s: Double) in Double(n) * Double(encodedBytes) / 1e6 / s }
            let raw = seconds[WireBenchPath.raw.rawValue], ours = seconds[WireBenchPath.ours.rawValue]
            let admitted = seconds[WireBenchPath.oursAdmission.rawValue]
            let rawMB = raw.map(mbs).sorted()
            let paired = PairedRatios(baseline: raw, candidate: ours)
            let pairedAdmitted = PairedRatios(baseline: raw, candidate: admitted)
            print(String(format: "| %@ | %d | %d | %.0f [%.0f–%.0f] | %.0f | **%.2f** [%.2f–%.2f] | %.2f [%.2f–%.2f] | %.2f |",
                         label, encodedBytes, n, PairedRatios.median(ofSorted: rawMB), rawMB.first!, rawMB.last!,
                         PairedRatios.median(ours.map(mbs)), paired.median, paired.min, paired.max,
                         pairedAdmitted.median, pairedAdmitted.min, pairedAdmitted.max,
                         raw.min()! / ours.min()!))
        }
        if !noBroadcast { try parameterLatency() }
    }

    /// One payload size of the plan, as both tables use it: its label, the rollout message, that message's encoded
    /// size and the messages sent per round.
    private func payload(kib k: Int, _ plan: WireBenchPlan) -> (label: String, env: WireEnvelope, bytes: Int, count: Int) {
        let env = rollout(bytes: k << 10)
        return (k % 1024 == 0 ? "\(k / 1024) MiB" : "\(k) KiB", env, env.encodedSize, plan.messagesPerRound(kib: k))
    }

    /// raw / ours, each plain and with CURVE, same sizes and counts, in paired rounds (order reversing each round);
    /// MB/s are medians over rounds, ratios medians of the per-round ratios.
    private func curveTable(tuned: Bool, plan: WireBenchPlan, cpus: WireBenchCPUs?) throws {
        print("bonfire-bench wire --curve: libzmq \(ZMQContext.libraryVersion) (CURVE available: \(Curve.isAvailable)), "
              + "tcp://127.0.0.1, HWM \(hwm), \(plan.rounds) paired rounds (+\(plan.warmupRounds) warm-up), "
              + "placement \(placement.rawValue), malloc tuned: \(tuned)")
        print("| payload | encoded bytes | raw MB/s | raw+CURVE MB/s | ours MB/s | ours+CURVE MB/s | ours+CURVE msg/s | CURVE cost (ours) | ours+CURVE / raw |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in plan.kib {
            let (label, env, encodedBytes, n) = payload(kib: k, plan)
            var seconds = [[Double]](repeating: [], count: 4)  // raw, raw+curve, ours, ours+curve
            for round in 0..<(plan.warmupRounds + plan.rounds) {
                let order = round.isMultiple(of: 2) ? [0, 1, 2, 3] : [3, 2, 1, 0]
                var this = [Double](repeating: 0, count: 4)
                for p in order {
                    this[p] = try measure(count: n, bytes: encodedBytes, ours: p >= 2 ? env : nil, curve: p % 2 == 1, cpus: cpus)
                }
                FileHandle.standardError.write(String(format: "wire --curve %@ round %d: raw %.3f s, raw+CURVE %.3f s, ours %.3f s, ours+CURVE %.3f s\n",
                                                      label, round + 1, this[0], this[1], this[2], this[3]).data(using: .utf8)!)
                if round >= plan.warmupRounds { for p in 0..<4 { seconds[p].append(this[p]) } }
            }
            let mbs = seconds.map { PairedRatios.median($0.map { Double(n) / $0 * Double(encodedBytes) / 1e6 }) }
            print(String(format: "| %@ | %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f× | %.2f |", label, encodedBytes,
                         mbs[0], mbs[1], mbs[2], mbs[3], PairedRatios.median(seconds[3].map { Double(n) / $0 }),
                         PairedRatios(baseline: seconds[3], candidate: seconds[2]).median,
                         PairedRatios(baseline: seconds[0], candidate: seconds[3]).median))
        }
    }

    /// Seconds to move `count` messages; `ours == nil` measures the raw byte path. `curve`: the PULL is a CURVE
    /// server behind a ZAP handler, the PUSH a CURVE client with an allow-listed key (as between actor and learner).
    /// `admission`: the receiver also validates every envelope against it, as the learner admits a rollout
    /// (`LearnerLink.receiveRollout`: decode, then `ValidationContext.validate`).
    /// `cpus`: pin the sender thread, this (receiving) thread for the round's duration, and the context's I/O thread.
    private func measure(count: Int, bytes: Int, ours: WireEnvelope?, curve: Bool = false,
                         admission: ValidationContext? = nil,
                         cpus: WireBenchCPUs?) throws -> Double {
        let ctx = try ZMQContext(ioThreadCPUs: cpus.map { [$0.io] } ?? [])
        // `sides`: the sender gets its own context (own I/O thread), as an actor process would.
        let senderContext = try cpus?.senderIO.map { try ZMQContext(ioThreadCPUs: [$0]) } ?? ctx
        let before = ThreadAffinity.current()
        if let cpus { try ThreadAffinity.set([cpus.receiver]) }
        defer { if cpus != nil { try? ThreadAffinity.set(before) } }
        let pull = try ZMQSocket(ctx, .pull)
        try pull.set(.receiveHighWaterMark(hwm))
        var auth: ZAPAuthenticator?
        defer { auth?.stop() }
        let serverKeys = curve ? try CurveKeyPair.generate() : nil
        let clientKeys = curve ? try CurveKeyPair.generate() : nil
        if let serverKeys, let clientKeys {
            var allow = CurveAllowList()
            try allow.allow(clientKeys.publicKey, as: .actor)
            auth = try ZAPAuthenticator.start(context: ctx, allow: allow)
            try pull.configureCurveServer(keys: serverKeys, authenticator: auth!)
        }
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try pull.lastEndpoint()
        let hwm = self.hwm
        let failure = Box<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        let sender = Thread {
            defer { done.signal() }
            do {
                if let cpus { try ThreadAffinity.set([cpus.sender]) }
                let push = try ZMQSocket(senderContext, .push)
                try push.set(.sendHighWaterMark(hwm))
                if let serverKeys, let clientKeys {
                    try push.configureCurveClient(serverPublicKey: serverKeys.publicKey, keys: clientKeys)
                }
                try push.connect(endpoint)
                if let ours {
                    var env = ours
                    for i in 0..<count {
                        env.sequence = UInt64(i + 1)
                        guard try push.send(env, timeout: .seconds(30)) else { throw ValidationError("send timed out") }
                    }
                } else {
                    let buffer = [UInt8](repeating: 0xAB, count: bytes)
                    for _ in 0..<count {
                        guard try push.send(buffer, timeout: .seconds(30)) else { throw ValidationError("send timed out") }
                    }
                }
            } catch { failure.set("sender: \(error)") }
        }
        var decoder = WireDecoder(runID: benchRunID)
        let start = ContinuousClock.now
        sender.start()
        var checksum = 0
        for i in 0..<count {
            if ours != nil {
                guard let got = try pull.receiveEnvelope(&decoder, timeout: .seconds(30)) else {
                    throw ValidationError("receiver: timed out at message \(i); \(failure.get() ?? "")")
                }
                let env = try got.envelope.get()
                guard case .bonGroups(let b) = env.payload else { throw ValidationError("bad payload") }
                if let admission, admission.validate(env) != .valid { throw ValidationError("rollout \(i) not admitted") }
                checksum &+= b.groups[0].responses[0].tokens.count
            } else {
                guard let n = try pull.receiveDiscarding(timeout: .seconds(30)) else {
                    throw ValidationError("receiver: timed out at message \(i); \(failure.get() ?? "")")
                }
                checksum &+= n
            }
        }
        let elapsed = ContinuousClock.now - start
        done.wait()
        if let f = failure.get() { throw ValidationError(f) }
        precondition(checksum > 0)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// Parameter broadcast over PUB/SUB (the learner → actor pattern of the runtime: PUB SNDHWM 4, SUB CONFLATE, one
    /// subscriber), one publish at a time, latency = publish call → the subscriber holds the parameters installed.
    /// - raw: a byte buffer of the same encoded size through `zmq_send` (one copy into the message) → `zmq_msg_recv`
    ///   without copying out: the transport floor.
    /// - ours: the learner's [Float] encoded straight into the ZeroMQ message (FastCodec: one memcpy) → received →
    ///   `WireDecoder` (decoded with one memcpy into a new [Float]) → `ValidationContext.validate` (version, count,
    ///   layout hash, every value finite and bounded: one read pass) → installed (assigned as the model's `params`, as
    ///   BoNJob.install does: no copy).
    /// - ours, same host (`endpoints.sharedMemoryParameters`, the runtime's default when actors share the learner's
    ///   host): the learner writes the [Float] into the next slot of the shared-memory ring (ParameterSlotRing: one
    ///   copy + checksum pass) and publishes the notice (~150 bytes) over the same PUB/SUB → the subscriber validates
    ///   the notice, copies the slot out verifying checksum, slot version and finite values in one pass, into its
    ///   installed parameters (reused buffer). The ring file lives in /dev/shm and is removed at the end.
    /// Encode / decode / validate ms: each step alone on one thread (decode: protobuf-c path in brackets); ring write
    /// / read ms likewise (best of 3).
    private func parameterLatency() throws {
        print("")
        print("Parameter broadcast, PUB → SUB (CONFLATE), tcp://127.0.0.1, min / median of \(broadcastRepeats) publishes, "
              + "rounds alternate raw / ours / ours through shared memory")
        print("| parameters | bytes | encode ms | decode ms (protobuf-c) | validate ms | raw latency ms | ours latency ms | ours/raw | ring write ms | ring read ms | ours shm latency ms | shm/raw |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for count in [1_000_000, 10_000_000] {
            let params = WireParameters(version: 1, layoutHash: 9, values: (0..<count).map { Float($0 & 1023) * 1e-3 })
            let env = WireEnvelope(runID: benchRunID, senderRole: .learner, senderID: 0, sequence: 1,
                                   payload: .parameters(params))
            var context = ValidationContext(receiver: .actor, runID: benchRunID)
            context.parameterCount = count
            context.layoutHash = 9
            // Each step alone, best of 3.
            var encodeMs = Double.infinity, decodeMs = Double.infinity, slowDecodeMs = Double.infinity
            var validateMs = Double.infinity
            var bytes: [UInt8] = []
            for _ in 0..<3 {
                var t = ContinuousClock.now
                bytes = env.encoded()
                encodeMs = min(encodeMs, ms(ContinuousClock.now - t))
                t = ContinuousClock.now
                let decoded = try WireDecoder(runID: benchRunID).decode(bytes)
                decodeMs = min(decodeMs, ms(ContinuousClock.now - t))
                t = ContinuousClock.now
                let slow = try WireEnvelope(protobufCWire: bytes)
                slowDecodeMs = min(slowDecodeMs, ms(ContinuousClock.now - t))
                t = ContinuousClock.now
                let verdict = context.validate(decoded)
                validateMs = min(validateMs, ms(ContinuousClock.now - t))
                precondition(decoded == env && slow == env && verdict == .valid, "parameter round trip differs")
            }
            let ring = try ParameterSlotRing.create(directory: ParameterSlotRing.directory(fallback: NSTemporaryDirectory()),
                                                    runID: benchRunID, layoutHash: 9, parameterCount: count)
            defer { ring.close() }
            var writeMs = Double.infinity, readMs = Double.infinity
            let reader = try ParameterSlotRing.open(directory: ParameterSlotRing.directory(fallback: NSTemporaryDirectory()),
                                                    fileName: ring.fileName, runID: benchRunID, layoutHash: 9,
                                                    parameterCount: count)
            var copy: [Float] = []
            for k in 0..<3 {
                var t = ContinuousClock.now
                let notice = params.values.withUnsafeBufferPointer { ring.write($0, version: UInt64(k + 1), hostIdentity: "bench") }
                writeMs = min(writeMs, ms(ContinuousClock.now - t))
                t = ContinuousClock.now
                let why = reader.read(notice, into: &copy)
                readMs = min(readMs, ms(ContinuousClock.now - t))
                precondition(why == nil && copy == params.values, "ring round trip differs: \(String(describing: why))")
            }
            reader.close()
            var raw: [Double] = [], ours: [Double] = [], shm: [Double] = []
            for _ in 0..<broadcastRounds {
                raw += try broadcast(env, bytes: bytes.count, mode: .raw, context: context)
                ours += try broadcast(env, bytes: bytes.count, mode: .ours, context: context)
                shm += try broadcast(env, bytes: bytes.count, mode: .sharedMemory(ring), context: context)
            }
            raw.sort(); ours.sort(); shm.sort()
            let rawMedian = raw[raw.count / 2]
            print(String(format: "| %d M floats | %d | %.1f | %.1f (%.1f) | %.1f | %.1f / %.1f | %.1f / %.1f | %.2f | %.1f | %.1f | %.1f / %.1f | %.2f |",
                         count / 1_000_000, bytes.count, encodeMs, decodeMs, slowDecodeMs, validateMs,
                         raw[0], rawMedian, ours[0], ours[ours.count / 2], ours[ours.count / 2] / rawMedian,
                         writeMs, readMs, shm[0], shm[shm.count / 2], shm[shm.count / 2] / rawMedian))
        }
    }

    /// What one broadcast round sends: raw bytes, our full parameters message, or a shared-memory notice.
    private enum BroadcastMode {
        case raw, ours
        case sharedMemory(ParameterSlotRing)
        var isRaw: Bool { if case .raw = self { true } else { false } }
    }

    private var broadcastRepeats: Int { broadcastRounds * 5 }
    private var broadcastRounds: Int { max(1, rounds) }

    /// Five publishes of `env` (or, `raw`, of a byte buffer of `bytes` bytes; or, `sharedMemory`, of `env`'s values
    /// written into the ring with a notice); returns the latencies in ms.
    private func broadcast(_ env: WireEnvelope, bytes: Int, mode: BroadcastMode, context: ValidationContext) throws -> [Double] {
        let raw = mode.isRaw
        var ring: ParameterSlotRing?
        if case .sharedMemory(let r) = mode { ring = r }
        let ringName = ring?.fileName
        let directory = ParameterSlotRing.directory(fallback: NSTemporaryDirectory())
        let ctx = try ZMQContext()
        let pub = try ZMQSocket(ctx, .pub)
        try pub.set(.sendHighWaterMark(4))
        try pub.bind("tcp://127.0.0.1:*")
        let endpoint = try pub.lastEndpoint()
        let sentAt = Box<ContinuousClock.Instant?>(nil)
        let latencies = Box<[Double]>([])
        let joined = Box(false)
        let failure = Box<String?>(nil)
        let done = DispatchSemaphore(value: 0)
        let repeats = 5
        let subscriber = Thread {
            defer { done.signal() }
            do {
                let sub = try ZMQSocket(ctx, .sub)
                try sub.set(.conflate(true))
                try sub.set(.subscribe([]))
                try sub.connect(endpoint)
                var decoder = WireDecoder(runID: benchRunID)
                var installed: [Float] = []  // the model's parameters
                var reader: ParameterSlotRing?
                defer { reader?.close() }
                var got = 0
                while got < repeats {
                    if raw {
                        guard let n = try sub.receiveDiscarding(timeout: .seconds(30)) else { throw ValidationError("subscriber timed out") }
                        if n < 64 { joined.set(true); continue }  // a probe: the subscription is live
                    } else {
                        guard let r = try sub.receiveEnvelope(&decoder, timeout: .seconds(30)) else {
                            throw ValidationError("subscriber timed out")
                        }
                        let e = try r.envelope.get()
                        switch e.payload {
                        case .parameters(let p):
                            guard context.validate(e) == .valid else { throw ValidationError("parameters rejected") }
                            installed = p.values
                        case .parameterNotice(let n):
                            guard context.validate(e) == .valid else { throw ValidationError("notice rejected") }
                            if reader == nil {
                                reader = try ParameterSlotRing.open(directory: directory, fileName: ringName ?? "",
                                                                    runID: benchRunID, layoutHash: 9,
                                                                    parameterCount: context.parameterCount ?? 0)
                            }
                            if let why = reader!.read(n, into: &installed) { throw ValidationError("ring read: \(why)") }
                        default: joined.set(true); continue
                        }
                    }
                    let now = ContinuousClock.now
                    latencies.set(latencies.get() + [ms(now - sentAt.get()!)])
                    got += 1
                }
                precondition(raw || installed.count * 4 < bytes)
            } catch { failure.set("\(error)") }
        }
        subscriber.start()
        // Slow joiner: publish small probes until the subscriber sees one.
        let probe = WireEnvelope(runID: benchRunID, senderRole: .learner, senderID: 0, sequence: 0,
                                 payload: .heartbeat(WireHeartbeat(policyVersion: 0, unixTimeMs: 0)))
        while !joined.get() && failure.get() == nil {
            _ = raw ? try pub.send([0], timeout: .zero) : try pub.send(probe, timeout: .zero)
            Thread.sleep(forTimeInterval: 0.01)
        }
        Thread.sleep(forTimeInterval: 0.05)
        let buffer = raw ? [UInt8](repeating: 0xAB, count: bytes) : []
        var values: [Float] = []
        if case .parameters(let p) = env.payload { values = p.values }
        for i in 0..<repeats {
            sentAt.set(ContinuousClock.now)
            let sent: Bool
            if raw {
                sent = try pub.send(buffer, timeout: .seconds(30))
            } else if let ring {
                // The learner's publish: write the slot, then broadcast the notice.
                let notice = values.withUnsafeBufferPointer { ring.write($0, version: UInt64(100 + i), hostIdentity: "bench") }
                sent = try pub.send(WireEnvelope(runID: benchRunID, senderRole: .learner, senderID: 0, sequence: UInt64(i + 1),
                                                 payload: .parameterNotice(notice)), timeout: .seconds(30))
            } else {
                sent = try pub.send(env, timeout: .seconds(30))
            }
            guard sent else { throw ValidationError("publish timed out") }
            while latencies.get().count <= i && failure.get() == nil { Thread.sleep(forTimeInterval: 0.0002) }
        }
        done.wait()
        if let f = failure.get() { throw ValidationError(f) }
        return latencies.get()
    }
}

private func ms(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e3 + Double(d.components.attoseconds) * 1e-15
}

/// Runs Scripts/wire_interop.py against this process over tcp://127.0.0.1. Exit 0 = passed, 77 = SKIPPED (Python
/// dependencies missing: not a pass), anything else = failed.
struct WireInterop: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interop", abstract: "Check that Python protobuf + pyzmq decode what we send and send what we accept.")

    @Option(help: "Python interpreter.") var python = "python3"
    @Option(help: "Path of the interop script.") var script = "Scripts/wire_interop.py"
    @Option(help: "Seconds to wait for each step before failing.") var timeout = 20

    mutating func run() throws {
        guard FileManager.default.fileExists(atPath: script) else {
            throw ValidationError("\(script) not found: run from the repository root or pass --script")
        }
        let runID = "interop-\(getpid())"
        let ctx = try ZMQContext()
        let push = try ZMQSocket(ctx, .push)
        try push.bind("tcp://127.0.0.1:*")
        let pull = try ZMQSocket(ctx, .pull)
        try pull.bind("tcp://127.0.0.1:*")

        let sent = interopSamples().enumerated().map { i, payload in
            WireEnvelope(runID: runID, senderRole: .actor, senderID: 3, sequence: UInt64(i + 1), payload: payload)
        }
        let proc = Process()
        proc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        proc.arguments = [python, script, "--pull", try push.lastEndpoint(), "--push", try pull.lastEndpoint(),
                          "--run-id", runID, "--count", "\(sent.count)", "--timeout-ms", "\(timeout * 1000)"]
        try proc.run()
        defer { if proc.isRunning { proc.terminate(); proc.waitUntilExit() } }

        func fail(_ why: String) -> Never {
            if proc.isRunning { proc.terminate() }
            proc.waitUntilExit()
            print("wire interop: FAILED: \(why)")
            Foundation.exit(1)
        }
        let step = Duration.seconds(timeout)
        for env in sent {
            guard try push.send(env, timeout: step) else {
                if !proc.isRunning && proc.terminationStatus == 77 { break }
                fail("python did not take message \(env.sequence) within \(timeout) s")
            }
        }
        var decoder = WireDecoder(runID: runID)
        // 1. Echoes re-serialized by Python equal what we sent.
        var echoed = 0
        while echoed < sent.count {
            guard let r = try pull.receiveEnvelope(&decoder, timeout: .milliseconds(200)) else {
                if !proc.isRunning { break }
                continue
            }
            guard try r.envelope.get() == sent[echoed] else { fail("echo \(echoed + 1) differs from what was sent") }
            echoed += 1
        }
        if echoed < sent.count {
            proc.waitUntilExit()
            if proc.terminationStatus == 77 {
                print("wire interop: SKIPPED (not passed): the Python side is missing a dependency, see its message above")
                Foundation.exit(77)
            }
            fail("python exited with status \(proc.terminationStatus) after \(echoed) of \(sent.count) echoes")
        }
        // 2. Messages Python built from scratch.
        var fromPython: [WirePayload] = []
        while fromPython.count < 4 {
            guard let r = try pull.receiveEnvelope(&decoder, timeout: step) else { fail("python sent only \(fromPython.count) of 4 messages") }
            let env = try r.envelope.get()
            guard env.senderRole == .tool, env.senderID == 7 else { fail("unexpected sender \(env.senderRole) \(env.senderID)") }
            fromPython.append(env.payload)
        }
        guard case .hello(let h) = fromPython[0], h.role == .actor, h.id == 9, h.capabilities == ["python", "interop"]
        else { fail("python hello decoded as \(fromPython[0])") }
        guard case .bonGroups(let b) = fromPython[1], b.task == "math", b.groups.count == 1,
              b.groups[0].behaviourVersion == 12, b.groups[0].promptTokens == [1, 5, 6, 7],
              b.groups[0].responses.count == 4,
              b.groups[0].responses[3].tokenLogProbs == [-0.5, -0.25, -0.375],
              b.groups[0].responses[2].reward == 1, b.groups[0].temperature == 0.5
        else { fail("python BoN group batch decoded as \(fromPython[1])") }
        guard case .metrics(let m) = fromPython[2], m.values == ["loss/policy": 0.75, "eval/bo4": 0.5], m.step == 5
        else { fail("python metrics decoded as \(fromPython[2])") }
        guard case .shutdown(let s) = fromPython[3], s.reason == "python done" else { fail("python shutdown: \(fromPython[3])") }

        let deadline = Date().addingTimeInterval(Double(timeout))
        while proc.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if proc.isRunning { fail("python did not exit within \(timeout) s") }
        guard proc.terminationStatus == 0 else { fail("python exited with status \(proc.terminationStatus)") }
        print("wire interop: PASSED: python decoded and echoed \(sent.count) Swift envelopes (all payload kinds); "
              + "Swift decoded 4 python-built messages; drops \(decoder.dropped)")
    }
}

/// One of each payload kind, with values the Python side checks (parameters are k·0.25 − 3).
private func interopSamples() -> [WirePayload] {
    [
        .hello(WireHello(role: .actor, id: 3, host: "127.0.0.1", pid: UInt32(getpid()), capabilities: ["bon-groups"])),
        .helloAck(WireHelloAck(accepted: true, currentVersion: 12, heartbeatIntervalMs: 500, liveness: 3)),
        .heartbeat(WireHeartbeat(policyVersion: 12, unixTimeMs: 1_700_000_000_123, state: "sampling")),
        .parameters(WireParameters(version: 12, layoutHash: 0xDEAD_BEEF, values: (0..<4096).map { Float($0) * 0.25 - 3 })),
        .bonGroups(WireBoNGroupBatch(task: "math", groups: [
            WireBoNGroup(itemID: 5, promptTokens: [1, 20, 21], behaviourVersion: 11, temperature: 0.8, responses: [
                WireBoNResponse(tokens: [30, 31, 2], tokenLogProbs: [-0.5, -1.25, -0.125], verifierScore: 0.9, reward: 1),
                WireBoNResponse(tokens: [33, 2], tokenLogProbs: [-2, -0.0625], verifierScore: 0.1, reward: 0),
            ]),
        ])),
        .episodes(WireEpisodeBatch(env: "chain", observationDim: 2, observations: [0, 1, 1, 0, 0.5, 0.5],
                                   actions: [1, 0, -1], rewards: [0, 0, 1], dones: [false, false, true],
                                   truncations: [false, false, false], behaviourLogProbs: [-0.7, -0.7, -0.1],
                                   behaviourVersions: [11, 11, 12], bootstrapObservation: [0, 0])),
        .evalRequest(WireEvalRequest(requestID: 2, version: 12, task: "math", nList: [1, 4, 16], temperatures: [1.0])),
        .evalReport(WireEvalReport(requestID: 2, version: 12, task: "math", rows: [
            WireEvalRow(n: 4, temperature: 1, passAtN: 0.5, boN: 0.375, meanReward: 0.25, numPrompts: 64)])),
        .metrics(WireMetrics(step: 300, version: 12, values: ["loss/policy": 1.25, "throughput/samples_per_s": 99.5])),
        .shutdown(WireShutdown(reason: "done")),
    ]
}
