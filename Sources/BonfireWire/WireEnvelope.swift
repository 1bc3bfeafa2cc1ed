// The envelope around every frame (protocol version, run id, sender role and id, sequence number, one payload) and
// the receiving side's `WireDecoder`, which never trusts input: size limit before parsing, protobuf-c parse,
// protocol version, run id, payload presence and per-field consistency; every drop is counted by reason.
import CBonfireProto

/// The payload of an envelope (proto `oneof payload`).
package enum WirePayload: Equatable, Sendable {
    case hello(WireHello)
    case helloAck(WireHelloAck)
    case heartbeat(WireHeartbeat)
    case parameters(WireParameters)
    case bonGroups(WireBoNGroupBatch)
    case episodes(WireEpisodeBatch)
    case evalRequest(WireEvalRequest)
    case evalReport(WireEvalReport)
    case metrics(WireMetrics)
    case shutdown(WireShutdown)
    /// Same-host broadcast: the parameters wait in the learner's shared-memory ring (ParameterNotice+Wire.swift).
    case parameterNotice(WireParameterNotice)

    /// Short name for logs and metric keys.
    package var kind: String {
        switch self {
        case .hello: "hello"
        case .helloAck: "hello_ack"
        case .heartbeat: "heartbeat"
        case .parameters: "parameters"
        case .bonGroups: "bon_groups"
        case .episodes: "episodes"
        case .evalRequest: "eval_request"
        case .evalReport: "eval_report"
        case .metrics: "metrics"
        case .shutdown: "shutdown"
        case .parameterNotice: "parameter_notice"
        }
    }
}

package struct WireEnvelope: Equatable, Sendable {
    /// The protocol version this build speaks. Bump on any incompatible change to Proto/bonfire.proto.
    package static let protocolVersion: UInt32 = 1

    package var protocolVersion: UInt32
    package var runID: String
    package var senderRole: WireRole
    package var senderID: UInt32
    /// Per-sender counter, starting at 1.
    package var sequence: UInt64
    package var payload: WirePayload

    package init(runID: String, senderRole: WireRole, senderID: UInt32, sequence: UInt64, payload: WirePayload,
                 protocolVersion: UInt32 = WireEnvelope.protocolVersion) {
        self.protocolVersion = protocolVersion; self.runID = runID; self.senderRole = senderRole
        self.senderID = senderID; self.sequence = sequence; self.payload = payload
    }

    /// Parses without any acceptance policy beyond well-formedness (no size, version or run-id checks: use
    /// `WireDecoder` for frames from peers).
    package init(wire: [UInt8]) throws(WireError) {
        self = try wire.withUnsafeBytes { raw in
            Result { () throws(WireError) -> WireEnvelope in try WireEnvelope(parsing: raw) }
        }.get()
    }

    /// Parameters and BoN-group envelopes go through `FastCodec` (one copy per field); anything it declines —
    /// other payloads, and every frame it does not fully understand — through protobuf-c, as before.
    init(parsing raw: UnsafeRawBufferPointer) throws(WireError) {
        if let env = FastCodec.decode(raw) { self = env; return }
        try self.init(parsingWithProtobufC: raw)
    }

    init(parsingWithProtobufC raw: UnsafeRawBufferPointer) throws(WireError) {
        self = try unpackMessage(raw, what: "Envelope", unpack: bonfire__v1__envelope__unpack, convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] { FastCodec.encoded(self) ?? withCTree { packMessage($0) } }

    /// Encoded size in bytes (walks the message; for protobuf-c payloads as costly as building it).
    package var encodedSize: Int { FastCodec.encodedSize(self) ?? withCTree { packedSize($0) } }

    // The two codecs side by side, for FastCodecTests (byte-identical encoding, the same decode results) and for
    // `bonfire-bench wire --codec protobuf-c`.

    /// Encoded by protobuf-c only.
    package func encodedWithProtobufC() -> [UInt8] { withCTree { packMessage($0) } }

    /// Parsed by protobuf-c only (no acceptance policy, as `init(wire:)`).
    package init(protobufCWire wire: [UInt8]) throws(WireError) {
        self = try wire.withUnsafeBytes { raw in
            Result { () throws(WireError) -> WireEnvelope in try WireEnvelope(parsingWithProtobufC: raw) }
        }.get()
    }

    /// Parsed by `FastCodec` only; nil where it declines (the frame would go to protobuf-c).
    package static func fastCodecDecoded(_ wire: [UInt8]) -> WireEnvelope? {
        wire.withUnsafeBytes { FastCodec.decode($0) }
    }

    /// Whether `FastCodec` encodes this envelope (parameters and BoN groups without NUL in their strings).
    package var isFastCodecEncoded: Bool { FastCodec.encodedSize(self) != nil }

    /// Builds the protobuf-c tree for the duration of `body` (used to pack straight into a ZeroMQ message).
    func withCTree<R>(_ body: (UnsafeMutablePointer<Bonfire__V1__Envelope>) -> R) -> R {
        let arena = PackArena()
        return withExtendedLifetime(arena) {
            let env = arena.make(Bonfire__V1__Envelope.self, bonfire__v1__envelope__init)
            env.pointee.protocol_version = protocolVersion
            env.pointee.run_id = arena.string(runID)
            env.pointee.sender_role = senderRole.c
            env.pointee.sender_id = senderID
            env.pointee.sequence = sequence
            switch payload {
            case .hello(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_HELLO
                env.pointee.hello = m.build(in: arena)
            case .helloAck(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_HELLO_ACK
                env.pointee.hello_ack = m.build(in: arena)
            case .heartbeat(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_HEARTBEAT
                env.pointee.heartbeat = m.build(in: arena)
            case .parameters(let m):
                // Borrow the float storage: no copy before protobuf-c packs it.
                return m.values.withUnsafeBytes { raw in
                    env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_PARAMETERS
                    env.pointee.parameters = m.build(in: arena, borrowing: raw)
                    return body(env)
                }
            case .bonGroups(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_BON_GROUPS
                env.pointee.bon_groups = m.build(in: arena)
            case .episodes(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_EPISODES
                env.pointee.episodes = m.build(in: arena)
            case .evalRequest(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_EVAL_REQUEST
                env.pointee.eval_request = m.build(in: arena)
            case .evalReport(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_EVAL_REPORT
                env.pointee.eval_report = m.build(in: arena)
            case .metrics(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_METRICS
                env.pointee.metrics = m.build(in: arena)
            case .shutdown(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_SHUTDOWN
                env.pointee.shutdown = m.build(in: arena)
            case .parameterNotice(let m):
                env.pointee.payload_case = BONFIRE__V1__ENVELOPE__PAYLOAD_PARAMETER_NOTICE
                env.pointee.parameter_notice = m.build(in: arena)
            }
            return body(env)
        }
    }

    init(c: UnsafePointer<Bonfire__V1__Envelope>) throws(WireError) {
        let m = c.pointee
        func need<T>(_ p: UnsafeMutablePointer<T>?, _ name: String) throws(WireError) -> UnsafePointer<T> {
            guard let p else { throw WireError(.missingPayload, "Envelope.\(name) is set but empty") }
            return UnsafePointer(p)
        }
        let payload: WirePayload
        switch m.payload_case {
        case BONFIRE__V1__ENVELOPE__PAYLOAD_HELLO: payload = .hello(try WireHello(c: need(m.hello, "hello")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_HELLO_ACK:
            payload = .helloAck(try WireHelloAck(c: need(m.hello_ack, "hello_ack")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_HEARTBEAT:
            payload = .heartbeat(try WireHeartbeat(c: need(m.heartbeat, "heartbeat")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_PARAMETERS:
            payload = .parameters(try WireParameters(c: need(m.parameters, "parameters")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_BON_GROUPS:
            payload = .bonGroups(try WireBoNGroupBatch(c: need(m.bon_groups, "bon_groups")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_EPISODES:
            payload = .episodes(try WireEpisodeBatch(c: need(m.episodes, "episodes")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_EVAL_REQUEST:
            payload = .evalRequest(try WireEvalRequest(c: need(m.eval_request, "eval_request")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_EVAL_REPORT:
            payload = .evalReport(try WireEvalReport(c: need(m.eval_report, "eval_report")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_METRICS:
            payload = .metrics(try WireMetrics(c: need(m.metrics, "metrics")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_SHUTDOWN:
            payload = .shutdown(try WireShutdown(c: need(m.shutdown, "shutdown")))
        case BONFIRE__V1__ENVELOPE__PAYLOAD_PARAMETER_NOTICE:
            payload = .parameterNotice(try WireParameterNotice(c: need(m.parameter_notice, "parameter_notice")))
        default:
            throw WireError(.missingPayload, "Envelope has no payload this build knows (case \(m.payload_case.rawValue))")
        }
        self.init(runID: swiftString(m.run_id), senderRole: try WireRole(c: m.sender_role, field: "Envelope.sender_role"),
                  senderID: m.sender_id, sequence: m.sequence, payload: payload, protocolVersion: m.protocol_version)
    }
}

/// What a receiver accepts. Defaults are generous but finite.
package struct WireLimits: Equatable, Sendable {
    /// Frames longer than this are dropped unparsed (`.oversized`). Default 256 MiB: 10 M float parameters are 40 MB.
    package var maxMessageBytes: Int

    package init(maxMessageBytes: Int = 256 << 20) {
        precondition(maxMessageBytes > 0, "maxMessageBytes must be positive, got \(maxMessageBytes)")
        self.maxMessageBytes = maxMessageBytes
    }
}

/// Validates incoming frames for one receiver and counts what it drops. A value type owned by the receiving thread.
///
///     var inbox = WireDecoder(runID: config.runID)
///     switch inbox.accept(frame) {
///     case .success(let env): handle(env)
///     case .failure(let e): log.warning("from \(peer): \(e)")   // already counted in inbox.drops
///     }
package struct WireDecoder: Sendable {
    /// The run this receiver belongs to; `nil` accepts any run id (for tools that listen to any run).
    package var runID: String?
    package var limits: WireLimits
    package private(set) var accepted: Int = 0
    package private(set) var drops: [WireDropReason: Int] = [:]

    package init(runID: String?, limits: WireLimits = WireLimits()) {
        self.runID = runID
        self.limits = limits
    }

    /// Total frames dropped for any reason.
    package var dropped: Int { drops.values.reduce(0, +) }

    /// Decodes and checks one frame without counting. Throws `WireError` naming the reason.
    package func decode(_ frame: UnsafeRawBufferPointer) throws(WireError) -> WireEnvelope {
        guard frame.count <= limits.maxMessageBytes else {
            throw WireError(.oversized, "\(frame.count) bytes > maxMessageBytes \(limits.maxMessageBytes)")
        }
        let env = try WireEnvelope(parsing: frame)
        guard env.protocolVersion == WireEnvelope.protocolVersion else {
            throw WireError(.wrongProtocolVersion,
                            "peer speaks protocol \(env.protocolVersion), this build speaks \(WireEnvelope.protocolVersion); run the same Bonfire version everywhere")
        }
        if let runID, env.runID != runID {
            throw WireError(.unknownRunID, "run id \"\(env.runID.prefix(64))\" is not this run (\"\(runID)\"); a process from another run is sending here")
        }
        return env
    }

    package func decode(_ frame: [UInt8]) throws(WireError) -> WireEnvelope {
        try frame.withUnsafeBytes { raw in
            Result { () throws(WireError) -> WireEnvelope in try decode(raw) }
        }.get()
    }

    /// Decodes, checks and counts one frame.
    package mutating func accept(_ frame: UnsafeRawBufferPointer) -> Result<WireEnvelope, WireError> {
        do {
            let env = try decode(frame)
            accepted += 1
            return .success(env)
        } catch {
            drops[error.reason, default: 0] += 1
            return .failure(error)
        }
    }

    package mutating func accept(_ frame: [UInt8]) -> Result<WireEnvelope, WireError> {
        frame.withUnsafeBytes { accept($0) }
    }

    /// Counts a drop decided by the caller after decoding (e.g. a layout-hash mismatch).
    package mutating func countDrop(_ reason: WireDropReason) { drops[reason, default: 0] += 1 }
}

extension WireLimits {
    /// Limits for a run whose biggest message is the parameter broadcast of `parameterCount` floats: 4·P bytes plus
    /// 1 MiB for the envelope, never below `minimumBytes` (BoN batches and episode chunks are far smaller).
    /// Use the same value for `ZMQSocket.limitIncoming(to:)` so libzmq drops the peer before buffering a huge frame.
    package init(parameterCount: Int, minimumBytes: Int = 16 << 20) {
        precondition(parameterCount >= 0 && minimumBytes > 0, "parameterCount \(parameterCount), minimumBytes \(minimumBytes)")
        let (blob, o) = parameterCount.multipliedReportingOverflow(by: 4)
        let total = o ? Int.max : blob.addingReportingOverflow(1 << 20).partialValue
        self.init(maxMessageBytes: max(minimumBytes, total < 0 ? Int.max : total))
    }
}
