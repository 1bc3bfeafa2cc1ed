// Round trips for every wire message (standalone and inside an envelope), and the decoder's refusal of frames with
// a wrong protocol version, another run id, oversized or inconsistent content — each counted by reason.
import BonfireWire
import XCTest

final class WireMessageTests: XCTestCase {
    func testEveryMessageRoundTripsStandalone() throws {
        for payload in Samples.payloads {
            switch payload {
            case .hello(let m): XCTAssertEqual(try WireHello(wire: m.encoded()), m)
            case .helloAck(let m): XCTAssertEqual(try WireHelloAck(wire: m.encoded()), m)
            case .heartbeat(let m): XCTAssertEqual(try WireHeartbeat(wire: m.encoded()), m)
            case .parameters(let m): XCTAssertEqual(try WireParameters(wire: m.encoded()), m)
            case .bonGroups(let m): XCTAssertEqual(try WireBoNGroupBatch(wire: m.encoded()), m)
            case .episodes(let m): XCTAssertEqual(try WireEpisodeBatch(wire: m.encoded()), m)
            case .evalRequest(let m): XCTAssertEqual(try WireEvalRequest(wire: m.encoded()), m)
            case .evalReport(let m): XCTAssertEqual(try WireEvalReport(wire: m.encoded()), m)
            case .metrics(let m): XCTAssertEqual(try WireMetrics(wire: m.encoded()), m)
            case .shutdown(let m): XCTAssertEqual(try WireShutdown(wire: m.encoded()), m)
            case .parameterNotice(let m): XCTAssertEqual(try WireParameterNotice(wire: m.encoded()), m)
            }
        }
    }

    func testEveryPayloadRoundTripsInsideAnEnvelope() throws {
        var decoder = WireDecoder(runID: Samples.runID)
        for (i, payload) in Samples.payloads.enumerated() {
            let env = Samples.envelope(payload, sequence: UInt64(i + 1))
            let bytes = env.encoded()
            XCTAssertEqual(bytes.count, env.encodedSize, payload.kind)
            XCTAssertEqual(try decoder.accept(bytes).get(), env, payload.kind)
        }
        XCTAssertEqual(decoder.accepted, Samples.payloads.count)
        XCTAssertEqual(decoder.dropped, 0)
    }

    func testEmptyAndExtremeValuesRoundTrip() throws {
        let empty = WireBoNGroupBatch(task: "", groups: [
            WireBoNGroup(itemID: .max, promptTokens: [], behaviourVersion: 0, responses: []),
            WireBoNGroup(itemID: 0, promptTokens: [Int(UInt32.max)], behaviourVersion: .max, temperature: 0,
                         responses: [WireBoNResponse(tokens: [], tokenLogProbs: [], verifierScore: -.infinity,
                                                     reward: 0)]),
        ])
        XCTAssertEqual(try WireBoNGroupBatch(wire: empty.encoded()), empty)
        let noParams = WireParameters(version: 0, layoutHash: 0, values: [])
        XCTAssertEqual(try WireParameters(wire: noParams.encoded()), noParams)
        let e = WireEpisodeBatch(env: "x", observationDim: 0, observations: [], actions: [], rewards: [], dones: [],
                                 truncations: [], behaviourLogProbs: [], behaviourVersions: [])
        XCTAssertEqual(try WireEpisodeBatch(wire: e.encoded()), e)
        let unicode = WireShutdown(reason: "arrêt demandé ✓")
        XCTAssertEqual(try WireShutdown(wire: unicode.encoded()), unicode)
    }

    func testParameterFloatsTravelAsRawLittleEndianBytes() throws {
        let p = WireParameters(version: 1, layoutHash: 2, values: [1.0, -2.5])
        let bytes = p.encoded()
        // 1.0f = 00 00 80 3F, -2.5f = 00 00 20 C0, inside field 4 (tag 0x22, length 8).
        let tail: [UInt8] = [0x22, 8, 0, 0, 0x80, 0x3F, 0, 0, 0x20, 0xC0]
        XCTAssertEqual(Array(bytes.suffix(tail.count)), tail)
    }

    func testDecoderRejectsWrongProtocolVersion() {
        var decoder = WireDecoder(runID: Samples.runID)
        let env = WireEnvelope(runID: Samples.runID, senderRole: .actor, senderID: 1, sequence: 1,
                               payload: .shutdown(WireShutdown(reason: "x")), protocolVersion: 99)
        guard case .failure(let e) = decoder.accept(env.encoded()) else { return XCTFail("accepted version 99") }
        XCTAssertEqual(e.reason, .wrongProtocolVersion)
        XCTAssertEqual(decoder.drops[.wrongProtocolVersion], 1)
    }

    func testDecoderRejectsAnotherRun() {
        var decoder = WireDecoder(runID: "run-A")
        let env = WireEnvelope(runID: "run-B", senderRole: .learner, senderID: 0, sequence: 1,
                               payload: .heartbeat(WireHeartbeat(policyVersion: 1, unixTimeMs: 2)))
        guard case .failure(let e) = decoder.accept(env.encoded()) else { return XCTFail("accepted run-B") }
        XCTAssertEqual(e.reason, .unknownRunID)
        // A decoder without a run id accepts any run.
        var any = WireDecoder(runID: nil)
        XCTAssertNoThrow(try any.accept(env.encoded()).get())
    }

    func testDecoderRejectsOversizedFramesBeforeParsing() {
        var decoder = WireDecoder(runID: Samples.runID, limits: WireLimits(maxMessageBytes: 1024))
        let big = Samples.envelope(.parameters(WireParameters(version: 1, layoutHash: 1,
                                                              values: [Float](repeating: 1, count: 300))))
        guard case .failure(let e) = decoder.accept(big.encoded()) else { return XCTFail("accepted 1.2 KB") }
        XCTAssertEqual(e.reason, .oversized)
        XCTAssertEqual(decoder.drops[.oversized], 1)
    }

    func testDecoderRejectsGarbageAndMissingPayload() {
        var decoder = WireDecoder(runID: Samples.runID)
        XCTAssertEqual(decoder.accept([0xFF, 0xFF, 0xFF]).failureReason, .malformed)
        // A valid envelope header without a payload.
        XCTAssertEqual(decoder.accept(ProtoWriter.envelope(payloadField: 99, payload: [])).failureReason,
                       .missingPayload)
        XCTAssertEqual(decoder.accept([]).failureReason, .missingPayload)
        XCTAssertEqual(decoder.drops[.malformed], 1)
        XCTAssertEqual(decoder.drops[.missingPayload], 2)
        XCTAssertEqual(decoder.dropped, 3)
        XCTAssertEqual(decoder.accepted, 0)
    }

    func testDecoderRejectsInconsistentFields() {
        var decoder = WireDecoder(runID: Samples.runID)
        // Parameters: byte_length says 8 but data holds 6 bytes.
        var p = ProtoWriter()
        p.uint(1, 1); p.uint(3, 8); p.lengthDelimited(4, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(decoder.accept(ProtoWriter.envelope(payloadField: 13, payload: p.bytes)).failureReason,
                       .invalidField)
        // Parameters: 6 bytes is not a whole number of floats even when byte_length agrees.
        var p2 = ProtoWriter()
        p2.uint(3, 6); p2.lengthDelimited(4, [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(decoder.accept(ProtoWriter.envelope(payloadField: 13, payload: p2.bytes)).failureReason,
                       .invalidField)
        // BoN response with 2 tokens but 1 log-prob.
        var r = ProtoWriter()
        r.lengthDelimited(1, [5, 0, 0, 0, 6, 0, 0, 0]); r.lengthDelimited(2, [0, 0, 0x80, 0xBF])
        var g = ProtoWriter(); g.lengthDelimited(4, r.bytes)
        var b = ProtoWriter(); b.lengthDelimited(2, g.bytes)
        XCTAssertEqual(decoder.accept(ProtoWriter.envelope(payloadField: 14, payload: b.bytes)).failureReason,
                       .invalidField)
        // Episode batch claiming 3 steps with 1 action.
        var ep = ProtoWriter(); ep.uint(2, 3); ep.lengthDelimited(5, [1, 0, 0, 0])
        XCTAssertEqual(decoder.accept(ProtoWriter.envelope(payloadField: 15, payload: ep.bytes)).failureReason,
                       .invalidField)
        // Token ids that are not whole uint32s.
        var r2 = ProtoWriter(); r2.lengthDelimited(1, [5, 0, 0])
        var g2 = ProtoWriter(); g2.lengthDelimited(4, r2.bytes)
        var b2 = ProtoWriter(); b2.lengthDelimited(2, g2.bytes)
        XCTAssertEqual(decoder.accept(ProtoWriter.envelope(payloadField: 14, payload: b2.bytes)).failureReason,
                       .invalidField)
        // Unknown sender role.
        var w = ProtoWriter(); w.uint(1, 1); w.string(2, Samples.runID); w.uint(3, 77)
        w.lengthDelimited(19, [])
        XCTAssertEqual(decoder.accept(w.bytes).failureReason, .invalidField)
        XCTAssertEqual(decoder.drops[.invalidField], 6)
    }

    func testMetricsEncodingIsDeterministic() {
        let a = WireMetrics(step: 1, version: 2, values: ["b": 1, "a": 2, "c": 3])
        var values: [String: Double] = [:]
        for k in ["c", "a", "b"] { values[k] = a.values[k] }
        XCTAssertEqual(a.encoded(), WireMetrics(step: 1, version: 2, values: values).encoded())
    }
}

extension Result where Failure == WireError {
    var failureReason: WireDropReason? {
        if case .failure(let e) = self { return e.reason }
        return nil
    }
}
