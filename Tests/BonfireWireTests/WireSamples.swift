// Sample messages of every family for the wire tests, plus a tiny protobuf writer for hand-made bad frames and a
// seeded SplitMix64 generator (the test target does not depend on BonfireMath).
import BonfireWire

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}

enum Samples {
    static let runID = "run-test-0001"

    static func bonBatch(groups: Int = 2, n: Int = 3, tokens: Int = 5, seed: UInt64 = 1) -> WireBoNGroupBatch {
        var rng = SplitMix64(seed: seed)
        return WireBoNGroupBatch(task: "math", groups: (0..<groups).map { g in
            WireBoNGroup(itemID: UInt64(100 + g), promptTokens: (0..<7).map { _ in rng.int(64) },
                         behaviourVersion: UInt64(17 + g), temperature: 0.8,
                         responses: (0..<n).map { i in
                             WireBoNResponse(tokens: (0..<(tokens + i)).map { _ in rng.int(64) },
                                             tokenLogProbs: (0..<(tokens + i)).map { _ in -abs(rng.float()) },
                                             verifierScore: Double(rng.float()), reward: Double(i % 2))
                         })
        })
    }

    static func episodes(steps: Int = 6, dim: Int = 4) -> WireEpisodeBatch {
        var rng = SplitMix64(seed: 9)
        return WireEpisodeBatch(
            env: "chain", observationDim: dim, observations: (0..<(steps * dim)).map { _ in rng.float() },
            actions: (0..<steps).map { Int32($0 % 3) - 1 }, rewards: (0..<steps).map { _ in rng.float() },
            dones: (0..<steps).map { $0 == 2 }, truncations: (0..<steps).map { $0 == steps - 1 },
            behaviourLogProbs: (0..<steps).map { _ in -abs(rng.float()) },
            behaviourVersions: (0..<steps).map { UInt64(40 + $0 / 3) },
            bootstrapObservation: (0..<dim).map { Float($0) })
    }

    static let payloads: [WirePayload] = [
        .hello(WireHello(role: .actor, id: 3, host: "127.0.0.1", pid: 4242, capabilities: ["bon-groups", "eval"])),
        .helloAck(WireHelloAck(accepted: false, reason: "duplicate id", currentVersion: 12, heartbeatIntervalMs: 500,
                               liveness: 3)),
        .heartbeat(WireHeartbeat(policyVersion: 12, unixTimeMs: 1_700_000_000_123, state: "sampling")),
        .parameters(WireParameters(version: 12, layoutHash: 0xDEAD_BEEF_CAFE_F00D,
                                   values: (0..<1000).map { Float($0) * 0.25 - 3 })),
        .bonGroups(bonBatch()),
        .episodes(episodes()),
        .evalRequest(WireEvalRequest(requestID: 5, version: 12, task: "math", split: "test", nList: [1, 4, 16],
                                     temperatures: [0.7, 1.0], numPrompts: 200)),
        .evalReport(WireEvalReport(requestID: 5, version: 12, task: "math", rows: [
            WireEvalRow(n: 1, temperature: 0.7, passAtN: 0.25, boN: 0.25, meanReward: 0.25, numPrompts: 200),
            WireEvalRow(n: 16, temperature: 1.0, passAtN: 0.75, boN: 0.5, meanReward: 0.2, numPrompts: 200),
        ])),
        .metrics(WireMetrics(step: 300, version: 12, values: ["loss/policy": 1.25, "eval/bo8": 0.5,
                                                              "throughput/samples_per_s": 1234.5])),
        .shutdown(WireShutdown(reason: "SIGTERM")),
        .parameterNotice(WireParameterNotice(version: 12, layoutHash: 0xDEAD_BEEF_CAFE_F00D, byteLength: 4000, slot: 1,
                                             checksum: .max - 7, fileName: "bonfire-params-r-1-" + String(repeating: "a", count: 32),
                                             hostIdentity: "0b6f-boot/1000/node7")),
    ]

    static func envelope(_ payload: WirePayload, sequence: UInt64 = 1) -> WireEnvelope {
        WireEnvelope(runID: runID, senderRole: .actor, senderID: 3, sequence: sequence, payload: payload)
    }
}

/// Minimal protobuf writer for frames our encoder would never produce.
struct ProtoWriter {
    var bytes: [UInt8] = []
    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 { bytes.append(UInt8(v & 0x7F) | 0x80); v >>= 7 }
        bytes.append(UInt8(v))
    }
    mutating func uint(_ field: Int, _ v: UInt64) { varint(UInt64(field << 3)); varint(v) }
    mutating func lengthDelimited(_ field: Int, _ b: [UInt8]) { varint(UInt64(field << 3 | 2)); varint(UInt64(b.count)); bytes += b }
    mutating func string(_ field: Int, _ s: String) { lengthDelimited(field, Array(s.utf8)) }

    /// An envelope around an already-encoded payload message at `payloadField`.
    static func envelope(version: UInt64 = 1, runID: String = Samples.runID, payloadField: Int, payload: [UInt8]) -> [UInt8] {
        var w = ProtoWriter()
        w.uint(1, version)
        w.string(2, runID)
        w.uint(3, 3)
        w.uint(4, 1)
        w.uint(5, 1)
        w.lengthDelimited(payloadField, payload)
        return w.bytes
    }
}
