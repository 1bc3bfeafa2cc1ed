import BonfireCluster
import XCTest

final class CoordinatorWatchTests: XCTestCase {
    func testLossIsReportedOnceAfterTheWindowAndTheReturnWithItsDuration() {
        var w = CoordinatorWatch(windowMs: 3000, now: 0)
        XCTAssertNil(w.tick(now: 2999))
        XCTAssertNil(w.contact(now: 2000))
        XCTAssertNil(w.tick(now: 5000), "3000 ms since the last contact is not yet over the window")
        XCTAssertEqual(w.tick(now: 5001), .lost(silentMs: 3001))
        XCTAssertTrue(w.isLost)
        XCTAssertNil(w.tick(now: 9000), "reported once")
        XCTAssertEqual(w.contact(now: 12_000), .back(downMs: 10_000))
        XCTAssertFalse(w.isLost)
        XCTAssertNil(w.contact(now: 12_100))
        XCTAssertEqual(w.tick(now: 15_101), .lost(silentMs: 3001), "a second loss is reported again")
    }

    func testThePausePolicyStopsWorkOnlyWhileTheCoordinatorIsLostAndParsesFromTheConfig() throws {
        XCTAssertTrue(CoordinatorLossPolicy.continue.mayWork(coordinatorLost: true))
        XCTAssertTrue(CoordinatorLossPolicy.pause.mayWork(coordinatorLost: false))
        XCTAssertFalse(CoordinatorLossPolicy.pause.mayWork(coordinatorLost: true))
        XCTAssertEqual(try RunConfig.load(sets: []).liveness.onCoordinatorLoss, .continue)
        XCTAssertEqual(try RunConfig.load(sets: ["liveness.onCoordinatorLoss=pause"]).liveness.onCoordinatorLoss, .pause)
        XCTAssertThrowsError(try RunConfig.load(sets: ["liveness.onCoordinatorLoss=wait"])) { e in
            XCTAssertTrue("\(e)".contains("pause"), "the error lists the allowed values: \(e)")
        }
    }
}
