// StalenessGate decisions and counters, truncated importance weights.
import XCTest
import Foundation
import BonfireCluster

final class StalenessTests: XCTestCase {
    func testLagWithinLimitIsAcceptedBeyondIsDroppedAndCounted() {
        var g = StalenessGate(maxPolicyLag: 2)
        XCTAssertEqual(g.decide(behaviourVersion: 10, currentVersion: 10), .accept(lag: 0))
        XCTAssertEqual(g.decide(behaviourVersion: 8, currentVersion: 10), .accept(lag: 2))
        XCTAssertEqual(g.decide(behaviourVersion: 7, currentVersion: 10), .drop(lag: 3))
        XCTAssertEqual(g.decide(behaviourVersion: 11, currentVersion: 10), .drop(lag: -1))
        XCTAssertEqual(g.accepted, 2)
        XCTAssertEqual(g.dropped, 2)
        XCTAssertEqual(g.droppedFromFuture, 1)
        XCTAssertEqual(g.acceptedStale, 1)
        XCTAssertEqual(g.meanAcceptedLag, 1.0)
    }

    func testZeroLagPolicyIsStrictlyOnPolicy() {
        var g = StalenessGate(RunConfig.LearnerSection())
        XCTAssertEqual(g.maxPolicyLag, 4)
        g = StalenessGate(maxPolicyLag: 0)
        XCTAssertTrue(g.decide(behaviourVersion: 5, currentVersion: 5).isAccepted)
        XCTAssertFalse(g.decide(behaviourVersion: 4, currentVersion: 5).isAccepted)
    }

    func testTruncatedImportanceWeight() {
        // ρ = min(ρ̄, exp(log π − log μ))
        XCTAssertEqual(truncatedImportanceWeight(logRatio: 0, clip: 1), 1, accuracy: 1e-15)
        XCTAssertEqual(truncatedImportanceWeight(logRatio: log(0.25), clip: 1), 0.25, accuracy: 1e-15)
        XCTAssertEqual(truncatedImportanceWeight(logRatio: log(3.0), clip: 2), 2)
        XCTAssertEqual(truncatedImportanceWeight(logRatio: log(1.5), clip: 2), 1.5, accuracy: 1e-12)
        XCTAssertEqual(StalenessGate.truncatedImportanceWeight(logRatio: 1e6, clip: 1), 1, "no overflow")
        XCTAssertEqual(truncatedImportanceWeight(logRatio: -1e6, clip: 1), 0)
    }
}
