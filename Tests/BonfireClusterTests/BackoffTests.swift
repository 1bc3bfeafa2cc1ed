// Backoff: capped exponential growth, seeded jitter, give-up budget.
import XCTest
import BonfireCluster
import BonfireMath

final class BackoffTests: XCTestCase {
    func testDelaysGrowExponentiallyWithinJitterAndAreCapped() {
        var b = Backoff(initialMs: 100, maxMs: 1000, jitter: 0.2, rng: RNG(seed: 1))
        var delays: [Int] = []
        for _ in 0..<8 { delays.append(b.nextDelayMs()) }
        let bases = [100, 200, 400, 800, 1000, 1000, 1000, 1000]
        for (d, base) in zip(delays, bases) {
            XCTAssertGreaterThanOrEqual(Double(d), Double(base) * 0.8 - 1, "\(delays)")
            XCTAssertLessThanOrEqual(d, min(1000, Int(Double(base) * 1.2) + 1), "\(delays)")
        }
        XCTAssertEqual(b.attempts, 8)
        XCTAssertEqual(b.totalDelayMs, Int64(delays.reduce(0, +)))
        b.reset()
        XCTAssertEqual(b.baseDelayMs, 100)
        XCTAssertEqual(b.totalDelayMs, 0)
    }

    func testSameSeedSameDelaysAndJitterActuallyVaries() {
        var a = Backoff(RunConfig.LivenessSection(), rng: RNG(seed: 42, stream: 3))
        var b = Backoff(RunConfig.LivenessSection(), rng: RNG(seed: 42, stream: 3))
        let da = (0..<10).map { _ in a.nextDelayMs() }
        XCTAssertEqual(da, (0..<10).map { _ in b.nextDelayMs() })
        // At the cap (5000 ms) jitter still spreads delays below the cap.
        XCTAssertGreaterThan(Set(da.suffix(4)).count, 1, "\(da)")
        var noJitter = Backoff(initialMs: 10, maxMs: 80, jitter: 0, rng: RNG(seed: 0))
        XCTAssertEqual((0..<5).map { _ in noJitter.nextDelayMs() }, [10, 20, 40, 80, 80])
    }

    func testGiveUpBudget() {
        var b = Backoff(initialMs: 100, maxMs: 100, jitter: 0, rng: RNG(seed: 0))
        XCTAssertEqual(b.next(giveUpAfterMs: 250), 100)
        XCTAssertEqual(b.next(giveUpAfterMs: 250), 100)
        XCTAssertNil(b.next(giveUpAfterMs: 250), "a third wait would reach 300 ms > 250 ms")
        XCTAssertEqual(b.totalDelayMs, 200)
        b.reset()
        XCTAssertEqual(b.next(giveUpAfterMs: 250), 100)
    }
}
