// Fuzz-style robustness: ≥ 10⁵ random and mutated frames through WireDecoder must never crash; every frame is
// either accepted (and then re-encodes and decodes to the same value) or dropped with a counted reason.
import BonfireWire
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
}
