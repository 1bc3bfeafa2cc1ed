// FastCodec (Sources/BonfireWire/FastCodec.swift) against protobuf-c, the reference: the same bytes out for every
// parameters and BoN-groups envelope (ordinary, edge and hostile values), and on fuzzed frames the fast decoder
// either declines or returns exactly what protobuf-c returns — so WireDecoder accepts and rejects what it did before.
import BonfireWire
import CBonfireKernels
import XCTest

final class FastCodecTests: XCTestCase {
    /// Envelopes the fast codec handles, with edge values: zero fields (omitted by proto3), empty arrays, −0, NaN,
    /// infinities, the largest ids and counters, empty strings.
    private func edgeEnvelopes() -> [WireEnvelope] {
        var rng = SplitMix64(seed: 0xFA57)
        var out: [WireEnvelope] = []
        let payloads: [WirePayload] = [
            .bonGroups(Samples.bonBatch()),
            .bonGroups(Samples.bonBatch(groups: 3, n: 8, tokens: 300, seed: 2)),
            // Around the stack-buffer sizes the decoder used until the sixth pass (128 ids, 256 log-probs) and
            // pre-counted response arrays.
            .bonGroups(Samples.bonBatch(groups: 1, n: 4, tokens: 126, seed: 3)),
            .bonGroups(Samples.bonBatch(groups: 2, n: 3, tokens: 255, seed: 4)),
            .bonGroups(Samples.bonBatch(groups: 1, n: 33, tokens: 1, seed: 5)),
            // Just past them, and the 64 KiB bench rollout's length.
            .bonGroups(Samples.bonBatch(groups: 1, n: 2, tokens: 129, seed: 6)),
            .bonGroups(Samples.bonBatch(groups: 1, n: 2, tokens: 257, seed: 7)),
            .bonGroups(Samples.bonBatch(groups: 1, n: 8, tokens: 1020, seed: 8)),
            .bonGroups(WireBoNGroupBatch(task: "", groups: [])),
            .bonGroups(WireBoNGroupBatch(task: "math", groups: [
                WireBoNGroup(itemID: 0, promptTokens: [], behaviourVersion: 0, temperature: 0, responses: []),
                WireBoNGroup(itemID: .max, promptTokens: [0, Int(UInt32.max)], behaviourVersion: .max, temperature: -0.0,
                             responses: [
                                WireBoNResponse(tokens: [], tokenLogProbs: [], verifierScore: 0, reward: 0),
                                WireBoNResponse(tokens: [Int(UInt32.max), 0], tokenLogProbs: [.nan, -.infinity],
                                                verifierScore: -0.0, reward: .nan),
                                WireBoNResponse(tokens: [1], tokenLogProbs: [-0.0], verifierScore: .infinity,
                                                reward: -.greatestFiniteMagnitude),
                             ]),
                WireBoNGroup(itemID: 1 << 63, promptTokens: [127, 128, 16383, 16384], behaviourVersion: 127,
                             temperature: .nan, responses: []),
            ])),
            .parameters(WireParameters(version: 12, layoutHash: 0xDEAD_BEEF, values: (0..<4096).map { _ in rng.float() })),
            .parameters(WireParameters(version: 0, layoutHash: 0, values: [])),
            .parameters(WireParameters(version: .max, layoutHash: .max, values: [.nan, -0.0, .infinity, 0])),
        ]
        for (i, p) in payloads.enumerated() {
            out.append(Samples.envelope(p, sequence: UInt64(i + 1)))
            out.append(WireEnvelope(runID: "", senderRole: .unspecified, senderID: 0, sequence: 0, payload: p,
                                    protocolVersion: 0))
            out.append(WireEnvelope(runID: String(repeating: "r", count: 200), senderRole: .tool, senderID: .max,
                                    sequence: .max, payload: p, protocolVersion: .max))
        }
        for i in 0..<200 {  // the fuzzer's valid-but-hostile values
            let p: WirePayload = i % 2 == 0 ? .bonGroups(FuzzWorld.bon(&rng, hostile: true))
                                            : .parameters(FuzzWorld.parameters(&rng, hostile: true))
            out.append(Samples.envelope(p, sequence: rng.next()))
        }
        return out
    }

    func testEncodingIsByteIdenticalToProtobufC() throws {
        for (i, env) in edgeEnvelopes().enumerated() {
            XCTAssertTrue(env.isFastCodecEncoded, "envelope \(i) should take the fast path")
            let reference = env.encodedWithProtobufC()
            XCTAssertEqual(env.encoded(), reference, "envelope \(i) (\(env.payload.kind))")
            XCTAssertEqual(env.encodedSize, reference.count, "envelope \(i)")
        }
    }

    func testFastDecodeEqualsProtobufCDecodeOnEverythingItEncodes() throws {
        for (i, env) in edgeEnvelopes().enumerated() {
            let bytes = env.encodedWithProtobufC()
            guard let fast = WireEnvelope.fastCodecDecoded(bytes) else { XCTFail("envelope \(i) declined"); continue }
            let slow = try WireEnvelope(protobufCWire: bytes)
            // Compare encodings, not values: NaN != NaN.
            XCTAssertEqual(fast.encodedWithProtobufC(), slow.encodedWithProtobufC(), "envelope \(i)")
            XCTAssertEqual(fast.encodedWithProtobufC(), bytes, "envelope \(i)")
        }
    }

    func testOtherPayloadsAndStringsWithNULGoThroughProtobufC() throws {
        for p in Samples.payloads {
            let env = Samples.envelope(p)
            switch p {
            case .parameters, .bonGroups: XCTAssertTrue(env.isFastCodecEncoded, p.kind)
            default:
                XCTAssertFalse(env.isFastCodecEncoded, p.kind)
                XCTAssertNil(WireEnvelope.fastCodecDecoded(env.encoded()), p.kind)
            }
        }
        // A NUL cuts a C string: protobuf-c sends "ab"; the fast path must not send "ab\0cd".
        let env = WireEnvelope(runID: "ab\u{0}cd", senderRole: .actor, senderID: 1, sequence: 1,
                               payload: .bonGroups(Samples.bonBatch()))
        XCTAssertFalse(env.isFastCodecEncoded)
        XCTAssertEqual(try WireEnvelope(wire: env.encoded()).runID, "ab")
    }

    /// Frames the fast decoder must decline, each with the drop reason WireDecoder gives (unchanged from protobuf-c).
    func testInconsistentOrUnusualFramesAreDeclinedAndStillRejectedForTheSameReason() throws {
        func response(_ tokens: [UInt8], _ logprobs: [UInt8]) -> [UInt8] {
            var w = ProtoWriter(); w.lengthDelimited(1, tokens); w.lengthDelimited(2, logprobs); return w.bytes
        }
        func batch(_ responses: [[UInt8]], extra: (inout ProtoWriter) -> Void = { _ in }) -> [UInt8] {
            var g = ProtoWriter(); g.uint(1, 7)
            for r in responses { g.lengthDelimited(4, r) }
            extra(&g)
            var b = ProtoWriter(); b.string(1, "math"); b.lengthDelimited(2, g.bytes); return b.bytes
        }
        func params(byteLength: UInt64, data: [UInt8]) -> [UInt8] {
            var w = ProtoWriter(); w.uint(1, 3); w.uint(2, 9); w.uint(3, byteLength); w.lengthDelimited(4, data); return w.bytes
        }
        let four = [UInt8](repeating: 1, count: 4), eight = [UInt8](repeating: 1, count: 8)
        let cases: [(String, [UInt8], WireDropReason?)] = [
            ("byte_length ≠ len(data)", ProtoWriter.envelope(payloadField: 13, payload: params(byteLength: 8, data: four)), .invalidField),
            ("data not whole floats", ProtoWriter.envelope(payloadField: 13, payload: params(byteLength: 5, data: four + [0])), .invalidField),
            ("tokens not whole ids", ProtoWriter.envelope(payloadField: 14, payload: batch([response([1, 2, 3], [])])), .invalidField),
            ("one log-prob per token", ProtoWriter.envelope(payloadField: 14, payload: batch([response(eight, four)])), .invalidField),
            ("wrong wire type", ProtoWriter.envelope(payloadField: 14, payload: batch([], extra: { $0.lengthDelimited(3, four) })), .malformed),
            ("truncated", Array(ProtoWriter.envelope(payloadField: 14, payload: batch([response(four, four)])).dropLast(3)), .malformed),
            ("no payload", { var w = ProtoWriter(); w.uint(1, 1); w.string(2, Samples.runID); return w.bytes }(), .missingPayload),
            // Valid for protobuf-c, but outside the fast subset: declined, then accepted by the protobuf-c path.
            ("unknown field", ProtoWriter.envelope(payloadField: 14, payload: batch([], extra: { $0.uint(9, 1) })), nil),
            ("duplicate scalar", ProtoWriter.envelope(payloadField: 14, payload: batch([], extra: { $0.uint(1, 8) })), nil),
            ("non-ASCII run id", ProtoWriter.envelope(runID: "r\u{e9}", payloadField: 14, payload: batch([])), .unknownRunID),
        ]
        // Parsed by the fast decoder (the checks after parsing are WireDecoder's, whichever codec parsed).
        for (name, frame, reason) in [
            ("unknown run id", ProtoWriter.envelope(runID: "other", payloadField: 14, payload: batch([])), WireDropReason.unknownRunID),
            ("wrong protocol", ProtoWriter.envelope(version: 2, payloadField: 14, payload: batch([])), .wrongProtocolVersion),
        ] {
            XCTAssertNotNil(WireEnvelope.fastCodecDecoded(frame), name)
            var decoder = WireDecoder(runID: Samples.runID)
            guard case .failure(let e) = decoder.accept(frame) else { XCTFail("\(name): accepted"); continue }
            XCTAssertEqual(e.reason, reason, "\(name): \(e)")
        }
        for (name, frame, reason) in cases {
            XCTAssertNil(WireEnvelope.fastCodecDecoded(frame), "\(name): the fast decoder must decline")
            var decoder = WireDecoder(runID: Samples.runID)
            switch decoder.accept(frame) {
            case .success: XCTAssertNil(reason, "\(name): accepted, expected drop \(String(describing: reason))")
            case .failure(let e): XCTAssertEqual(e.reason, reason, "\(name): \(e)")
            }
        }
    }

    /// Differential fuzzing: random, mutated, structure-aware and hostile frames; whenever the fast decoder accepts,
    /// protobuf-c must accept the same frame with the same value. Also checks the fast path was really exercised.
    func testFastDecoderNeverAcceptsWhatProtobufCRejectsOrDecodesDifferently() throws {
        var rng = SplitMix64(seed: 0xD1FF)
        let seeds = edgeEnvelopes().prefix(60).map { $0.encoded() }
        var fastAccepted = 0, declined = 0, parametersRejected = 0
        let validator = ValidationContext(receiver: .actor, runID: nil)
        for i in 0..<40_000 {
            let frame = Mutator.frame(seeds, hostile: { rng in
                Samples.envelope(rng.int(2) == 0 ? .bonGroups(FuzzWorld.bon(&rng, hostile: true))
                                                 : .parameters(FuzzWorld.parameters(&rng, hostile: true))).encoded()
            }, &rng, i: i)
            guard let fast = WireEnvelope.fastCodecDecoded(frame) else { declined += 1; continue }
            fastAccepted += 1
            do {
                let slow = try WireEnvelope(protobufCWire: frame)
                if fast.encodedWithProtobufC() != slow.encodedWithProtobufC() {
                    XCTFail("frame \(i): fast and protobuf-c decodes differ: \(frame)"); return
                }
                // The largest |x| computed while decoding gives the validator's verdict of the plain pass.
                if case .parameters(let f) = fast.payload, case .parameters(let s) = slow.payload {
                    XCTAssertEqual(f.largestMagnitudeBits, WireParameters.largestMagnitudeBits(f.values), "frame \(i)")
                    XCTAssertNil(s.largestMagnitudeBits)
                    XCTAssertEqual(validator.validate(f), validator.validate(s), "frame \(i)")
                    if validator.validate(s) != .valid { parametersRejected += 1 }
                }
            } catch {
                XCTFail("frame \(i): fast decoder accepted what protobuf-c rejects (\(error)): \(frame)"); return
            }
        }
        XCTAssertGreaterThan(fastAccepted, 5_000, "the fast path must take most valid and value-mutated frames")
        XCTAssertGreaterThan(declined, 5_000, "and decline the malformed ones")
        XCTAssertGreaterThan(parametersRejected, 100, "hostile parameter values must reach the validator")
        print("FastCodec differential fuzz: \(fastAccepted) accepted by both, \(declined) declined")
    }

    func testEnvelopesGoOverZeroMQThroughTheFastPathIntact() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull)
        try pull.bind("inproc://fast-codec")
        let push = try ZMQSocket(ctx, .push)
        try push.connect("inproc://fast-codec")
        let sent = edgeEnvelopes().filter { $0.protocolVersion == WireEnvelope.protocolVersion }.prefix(30)
        var decoder = WireDecoder(runID: nil)
        for env in sent {
            XCTAssertTrue(try push.send(env, timeout: .seconds(5)))
            let got = try XCTUnwrap(pull.receiveEnvelope(&decoder, timeout: .seconds(5)))
            XCTAssertEqual(try got.envelope.get().encodedWithProtobufC(), env.encodedWithProtobufC())
        }
        XCTAssertEqual(decoder.dropped, 0)
    }

    func testTheLargestMagnitudeFoundWhileDecodingIsClearedWhenTheValuesChange() throws {
        var values = (0..<70_000).map { Float($0 % 1000) * 0.5 }  // more than one 64 KiB slice
        values[65_537] = -3e5
        let env = Samples.envelope(.parameters(WireParameters(version: 3, layoutHash: 1, values: values)))
        guard case .parameters(var p) = try XCTUnwrap(WireEnvelope.fastCodecDecoded(env.encoded())).payload else {
            return XCTFail("not parameters")
        }
        XCTAssertEqual(p.largestMagnitudeBits, Float(3e5).bitPattern)
        var ctx = ValidationContext(receiver: .actor, runID: nil)
        ctx.parameterBound = 1e6
        XCTAssertEqual(ctx.validate(p), .valid)
        p.values[12] = .nan  // a changed value must not hide behind the stale maximum
        XCTAssertNil(p.largestMagnitudeBits)
        guard case .invalid(.parameterNonFinite, _) = ctx.validate(p) else { return XCTFail("NaN accepted") }
    }

    /// The summary FastCodec computes while copying a response out of the frame is exact: the OR of the ids (the
    /// stack-buffer and in-place paths, ids with the top bit set) and whether every log-prob is finite and inside
    /// `ValidationContext.defaultLogProbRange` (a bad value at any position: lanes of sixteen and the scalar tail).
    func testTheDecodeSummaryIsTheExactIdBitsAndLogProbRangeCheck() throws {
        var rng = SplitMix64(seed: 0x5EED)
        let range = ValidationContext.defaultLogProbRange
        let bad: [Float] = [.nan, -.nan, .infinity, -.infinity, range.lowerBound.nextDown, range.upperBound.nextUp, 1, -1e30,
                            Float(bitPattern: 0x7FC0_0001), Float(bitPattern: 0xFFFF_FFFF)]
        let edge: [Float] = [range.lowerBound, range.upperBound, -0.0, 0, -.leastNonzeroMagnitude, .leastNonzeroMagnitude]
        let bigIDs: [Int] = [Int(UInt32.max), 1 << 31, (1 << 31) - 1, (1 << 31) + 1, 65_535, 65_536, 64, 63]
        var checked = 0, outside = 0
        for length in [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 255, 256, 257, 258, 1000, 4099] {
            for trial in 0..<12 {
                var ids = (0..<length).map { _ in rng.int(64) }
                if trial % 3 != 0 { ids[rng.int(length)] = bigIDs[rng.int(bigIDs.count)] }
                if trial % 4 == 1 { ids[length - 1] = bigIDs[rng.int(bigIDs.count)] }  // in the scalar tail
                var lp = (0..<length).map { _ in -Float(rng.int(10_000)) * 0.01 }
                if trial % 2 == 1 { lp[rng.int(length)] = bad[rng.int(bad.count)] }
                if trial % 5 == 2 { lp[length - 1] = bad[rng.int(bad.count)] }
                if trial % 3 == 2 { lp[rng.int(length)] = edge[rng.int(edge.count)] }
                let prompt = (0..<(1 + rng.int(length))).map { _ in rng.int(Int(UInt32.max) + 1) }
                let g = WireBoNGroup(itemID: 3, promptTokens: prompt, behaviourVersion: 1, temperature: 1, responses: [
                    WireBoNResponse(tokens: ids, tokenLogProbs: lp, verifierScore: 1, reward: 0),
                    WireBoNResponse(tokens: [], tokenLogProbs: [], verifierScore: 0, reward: 0),
                ])
                let env = Samples.envelope(.bonGroups(WireBoNGroupBatch(task: "math", groups: [g])))
                guard case .bonGroups(let b) = try XCTUnwrap(WireEnvelope.fastCodecDecoded(env.encoded())).payload else {
                    return XCTFail("not BoN groups")
                }
                let d = b.groups[0]
                XCTAssertEqual(d.promptTokens, prompt)
                XCTAssertEqual(d.responses[0].tokens, ids)
                XCTAssertEqual(d.responses[0].tokenLogProbs.map(\.bitPattern), lp.map(\.bitPattern))  // (NaN ≠ NaN)
                XCTAssertEqual(d.decodedPromptIDBits, prompt.reduce(0) { $0 | UInt32($1) }, "length \(length) trial \(trial)")
                let s = try XCTUnwrap(d.responses[0].decodedSummary)
                XCTAssertEqual(s.tokenIDBits, ids.reduce(0) { $0 | UInt32($1) }, "length \(length) trial \(trial)")
                let within = lp.allSatisfy { $0.isFinite && range.contains($0) }
                XCTAssertEqual(s.logProbsWithinDefaultRange, within, "length \(length) trial \(trial): \(lp.filter { !range.contains($0) })")
                XCTAssertEqual(d.responses[1].decodedSummary, WireResponseSummary(tokenIDBits: 0, logProbsWithinDefaultRange: true))
                checked += 1
                if !within { outside += 1 }
            }
        }
        XCTAssertGreaterThan(outside, 50)
        XCTAssertGreaterThan(checked - outside, 50)
    }

    /// A decoded group whose arrays change afterwards (a receiver editing, or a bug) must be validated on its new
    /// contents: any change to a response's ids or log-probs, or to the prompt, drops the summary.
    func testTheDecodeSummaryIsClearedWhenTheArraysChange() throws {
        let env = Samples.envelope(.bonGroups(Samples.bonBatch(groups: 1, n: FuzzWorld.n, tokens: 10)))
        func decoded() throws -> WireBoNGroup {
            guard case .bonGroups(let b) = try XCTUnwrap(WireEnvelope.fastCodecDecoded(env.encoded())).payload else {
                throw XCTSkip("not BoN groups")
            }
            return b.groups[0]
        }
        var c = FuzzWorld.context(.learner)
        c.groupSizes = nil; c.itemCount = nil; c.currentVersion = nil
        XCTAssertEqual(c.validate(try decoded()), .valid)

        var g = try decoded()
        g.responses[1].tokens[3] = FuzzWorld.vocab
        XCTAssertNil(g.responses[1].decodedSummary)
        guard case .invalid(.tokenOutOfVocabulary, _) = c.validate(g) else { return XCTFail("id at the vocabulary accepted") }

        g = try decoded()
        g.responses[2].tokenLogProbs[0] = .nan
        XCTAssertNil(g.responses[2].decodedSummary)
        guard case .invalid(.logProbNonFinite, _) = c.validate(g) else { return XCTFail("NaN log-prob accepted") }

        g = try decoded()
        g.responses[0].tokenLogProbs.append(-1); g.responses[0].tokens.append(1)
        XCTAssertNil(g.responses[0].decodedSummary)
        g.responses[0].tokens[0] = Int(UInt32.max) + 1  // not even a wire value
        guard case .invalid(.tokenOutOfVocabulary, _) = c.validate(g) else { return XCTFail("id above uint32 accepted") }

        g = try decoded()
        g.promptTokens = [1, -1]
        XCTAssertNil(g.decodedPromptIDBits)
        guard case .invalid(.tokenOutOfVocabulary, _) = c.validate(g) else { return XCTFail("negative prompt id accepted") }

        g = try decoded()
        g.responses[0] = WireBoNResponse(tokens: [70], tokenLogProbs: [-1], verifierScore: 0, reward: 0)
        guard case .invalid(.tokenOutOfVocabulary, _) = c.validate(g) else { return XCTFail("replaced response accepted") }
    }

    /// The decoder's two copies (C kernels at every instruction-set level this CPU has) against their plain Swift
    /// twins: same output bits and the same summary, over lengths around the vector widths, every source alignment,
    /// and hostile values (NaN, ±infinity, the range's ends and just outside them, −0, subnormals; ids 0, 2³¹,
    /// UInt32.max). A wrong summary would let admission skip a check, so each hostile value is also placed alone.
    func testDecodeCopyKernelsEqualTheirPlainTwinsAtEveryLevel() {
        let lo = ValidationContext.defaultLogProbRange.lowerBound, hi = ValidationContext.defaultLogProbRange.upperBound
        let hostileFloats: [Float] = [.nan, -.nan, .infinity, -.infinity, lo, hi, lo.nextDown, hi.nextUp, -0.0, 0,
                                      .leastNonzeroMagnitude, -.leastNonzeroMagnitude, -1, -99.5, 1e-5, -Float.greatestFiniteMagnitude]
        let hostileIDs: [UInt32] = [0, 1, 1 << 31, UInt32.max, 49_151, 151_935, 0x7FFF_FFFF]
        var rng = SplitMix64(seed: 0xC0DE)
        let detected = bfk_isa_detected()
        defer { bfk_set_isa(detected) }
        var checked = 0
        for level in 0...detected {
            bfk_set_isa(level)
            for n in [0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 255, 1000, 8160] {
                for offset in 0..<4 {
                    // Ordinary values, then each hostile value alone at a random position, then all of them mixed in.
                    var cases: [[Float]] = [(0..<n).map { _ in -Float(rng.next() % 10_000) / 100 }]
                    if n > 0 {
                        for h in hostileFloats {
                            var v = cases[0]; v[Int(rng.next() % UInt64(n))] = h; cases.append(v)
                        }
                        cases.append((0..<n).map { i in hostileFloats[(i * 7 + offset) % hostileFloats.count] })
                    }
                    for values in cases {
                        var bytes = [UInt8](repeating: 0xAB, count: offset + 4 * n)
                        for (i, x) in values.enumerated() { withUnsafeBytes(of: x.bitPattern.littleEndian) { for b in 0..<4 { bytes[offset + 4 * i + b] = $0[b] } } }
                        var fast = [Float](repeating: 7, count: n), plain = [Float](repeating: 7, count: n)
                        let (okFast, okPlain) = bytes.withUnsafeBytes { raw -> (Bool, Bool) in
                            let src = raw.baseAddress! + offset
                            return (fast.withUnsafeMutableBytes { FastCodec.copyLogProbsFast(src, $0.baseAddress!, n) },
                                    plain.withUnsafeMutableBytes { FastCodec.copyLogProbsPlain(src, $0.baseAddress!, n) })
                        }
                        XCTAssertEqual(okFast, okPlain, "level \(level) n \(n) offset \(offset)")
                        XCTAssertEqual(okPlain, values.allSatisfy { $0 >= lo && $0 <= hi }, "plain summary, n \(n)")
                        XCTAssertEqual(fast.map(\.bitPattern), values.map(\.bitPattern), "level \(level) n \(n) offset \(offset)")
                        XCTAssertEqual(plain.map(\.bitPattern), values.map(\.bitPattern))
                        checked += 1
                    }
                    var idCases: [[UInt32]] = [(0..<n).map { _ in UInt32(rng.next() % 64) }]
                    if n > 0 { for h in hostileIDs { var v = idCases[0]; v[Int(rng.next() % UInt64(n))] = h; idCases.append(v) } }
                    for ids in idCases {
                        var bytes = [UInt8](repeating: 0xCD, count: offset + 4 * n)
                        for (i, x) in ids.enumerated() { withUnsafeBytes(of: x.littleEndian) { for b in 0..<4 { bytes[offset + 4 * i + b] = $0[b] } } }
                        var fast = [Int](repeating: -1, count: n), plain = [Int](repeating: -1, count: n)
                        let (bitsFast, bitsPlain) = bytes.withUnsafeBytes { raw -> (UInt32, UInt32) in
                            let src = raw.baseAddress! + offset
                            return (fast.withUnsafeMutableBufferPointer { FastCodec.widenTokensFast(src, $0.baseAddress!, n) },
                                    plain.withUnsafeMutableBufferPointer { FastCodec.widenTokensPlain(src, $0.baseAddress!, n) })
                        }
                        XCTAssertEqual(bitsFast, bitsPlain, "level \(level) n \(n) offset \(offset)")
                        XCTAssertEqual(bitsPlain, ids.reduce(0, |))
                        XCTAssertEqual(fast, ids.map { Int($0) }, "level \(level) n \(n) offset \(offset)")
                        XCTAssertEqual(plain, fast)
                        checked += 1
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 1000)
    }

}
