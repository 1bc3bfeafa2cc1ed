// Fuzz-style robustness: ≥ 10⁵ random and mutated frames through WireDecoder must never crash; every frame is
// either accepted (and then re-encodes and decodes to the same value) or dropped with a counted reason.
// Then, per decoder (Envelope and every message's init(wire:)), 10⁵ random, mutated, structure-aware and
// hostile-valued messages are decoded and validated (WireFuzzer.swift); BONFIRE_FUZZ_COUNT overrides the count
// (Scripts/fuzz.sh runs 10⁶ per decoder and prints the per-decoder table).
import BonfireWire
import Foundation
import XCTest

final class WireFuzzTests: XCTestCase {
    func testHundredThousandRandomAndMutatedFramesNeverCrash() throws {
        var rng = SplitMix64(seed: 0xB0F1)
        var decoder = WireDecoder(runID: Samples.runID, limits: WireLimits(maxMessageBytes: 64 << 10))
        let seeds = Samples.payloads.map { Samples.envelope($0).encoded() }
        let total = 100_000
        var reencoded = 0
        let start = ContinuousClock.now
        for i in 0..<total {
            var frame: [UInt8]
            switch i % 4 {
            case 0:  // pure random bytes
                frame = (0..<rng.int(300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            case 1:  // a valid frame with a few bytes flipped
                frame = seeds[rng.int(seeds.count)]
                for _ in 0..<(1 + rng.int(4)) where !frame.isEmpty {
                    frame[rng.int(frame.count)] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 2:  // truncated or extended
                frame = seeds[rng.int(seeds.count)]
                if rng.int(2) == 0 { frame = Array(frame.prefix(rng.int(frame.count + 1))) }
                else { frame += (0..<rng.int(20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
            default:  // spliced from two valid frames, or a random byte range copied over itself
                let a = seeds[rng.int(seeds.count)], b = seeds[rng.int(seeds.count)]
                frame = Array(a.prefix(rng.int(a.count + 1))) + Array(b.suffix(rng.int(b.count + 1)))
                if frame.count > 4 {
                    let from = rng.int(frame.count - 2), to = rng.int(frame.count - 2)
                    frame[to] = frame[from]; frame[to + 1] = frame[from + 1]
                }
            }
            if case .success(let env) = decoder.accept(frame) {
                // Whatever we accept must be consistent enough to encode again (no precondition trips).
                let again = env.encoded()
                // Compare bytes, not values: a mutated float may be NaN, and NaN != NaN.
                XCTAssertEqual(try WireEnvelope(wire: again).encoded(), again)
                reencoded += 1
            }
        }
        let elapsed = ContinuousClock.now - start
        XCTAssertEqual(decoder.accepted + decoder.dropped, total)
        XCTAssertGreaterThan(decoder.dropped, total / 2, "most random frames must be dropped")
        XCTAssertGreaterThan(decoder.drops[.malformed, default: 0], 0)
        XCTAssertGreaterThan(reencoded, 0, "some mutations (e.g. in float data) stay valid")
        print("fuzz: \(total) frames in \(elapsed), accepted \(decoder.accepted), drops \(decoder.drops)")
    }

    func testEveryDecoderSurvivesRandomMutatedAndHostileMessagesAndTheValidatorRejectsTheHostileOnes() throws {
        let env = ProcessInfo.processInfo.environment
        let count = env["BONFIRE_FUZZ_COUNT"].flatMap { Int($0) }.map { max($0, 100) } ?? 100_000
        let seed = env["BONFIRE_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0xF022
        let start = ContinuousClock.now
        var lines: [String] = []
        let targets = FuzzTarget.all
        for (i, target) in targets.enumerated() {
            let t0 = ContinuousClock.now
            let s = target.fuzz(count: count, seed: seed &+ UInt64(i))
            let line = s.report + " (\(ContinuousClock.now - t0))"
            lines.append(line)
            print("fuzz " + line)
            XCTAssertEqual(s.total, count)
            XCTAssertEqual(s.decoded, s.validatorRejected.total + s.accepted, target.name)
            XCTAssertGreaterThan(s.total - s.decoded, 0, "\(target.name): some mutations must fail to decode")
            XCTAssertGreaterThan(s.validatorRejected.total, 0, "\(target.name): hostile values must be rejected")
            XCTAssertGreaterThan(s.accepted, 0, "\(target.name): valid messages must still be accepted")
            XCTAssertEqual(s.violations, [:], "\(target.name): accepted messages that break the validator's guarantees")
        }
        print("fuzz: \(targets.count) decoders × \(count) messages in \(ContinuousClock.now - start)")
        if let out = env["BONFIRE_FUZZ_REPORT"] {
            try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        }
    }

    func testFuzzSeedsAreValidSoAcceptedCountsMeanSomething() {
        for target in FuzzTarget.all {
            for (i, s) in target.seeds.enumerated() {
                guard case .accepted = target.run(s) else {
                    XCTFail("\(target.name) seed \(i): \(target.run(s))"); continue
                }
            }
        }
    }

    func testStructuralMutatorRoundTripsUnmutatedMessages() {
        for target in FuzzTarget.all {
            for s in target.seeds {
                guard let f = PB.parse(s) else { XCTFail("\(target.name): seed does not parse"); continue }
                XCTAssertEqual(PB.serialize(f), s, target.name)
            }
        }
    }
}
