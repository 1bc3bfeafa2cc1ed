// LivenessTracker driven by a hand-made clock: death after the window, re-registration, goodbyes.
import XCTest
import Foundation
import BonfireCluster

final class LivenessTests: XCTestCase {
    func testPeerIsDeadExactlyAfterTheLivenessWindow() {
        var t = LivenessTracker(heartbeatIntervalMs: 100, livenessCount: 3)
        XCTAssertEqual(t.windowMs, 300)
        XCTAssertEqual(t.register("actor-0", role: .actor, now: 0), .joined(peer: "actor-0", role: .actor))
        XCTAssertEqual(t.register("learner", role: .learner, now: 0), .joined(peer: "learner", role: .learner))
        // Heartbeats keep actor-0 alive; the learner goes silent.
        for now in stride(from: Int64(100), through: 600, by: 100) {
            XCTAssertNil(t.heartbeat("actor-0", now: now))
            let events = t.tick(now: now)
            if now < 300 { XCTAssertEqual(events, [], "at \(now)") }
            if now == 300 { XCTAssertEqual(events, [.dead(peer: "learner", role: .learner, silentForMs: 300)]) }
            if now > 300 { XCTAssertEqual(events, [], "dead is reported once (at \(now))") }
        }
        XCTAssertEqual(t.livePeers(role: .actor), ["actor-0"])
        XCTAssertEqual(t.livePeers(role: .learner), [])
        XCTAssertEqual(t.livePeers(), ["actor-0"])
        XCTAssertEqual(t.peer("learner")?.deaths, 1)
    }

    func testJustInsideTheWindowIsStillAlive() {
        var t = LivenessTracker(heartbeatIntervalMs: 500, livenessCount: 6)
        t.register("a", role: .actor, now: 1000)
        XCTAssertEqual(t.tick(now: 1000 + 2999), [])
        XCTAssertTrue(t.isAlive("a"))
        XCTAssertEqual(t.tick(now: 1000 + 3000), [.dead(peer: "a", role: .actor, silentForMs: 3000)])
        XCTAssertFalse(t.isAlive("a"))
    }

    func testDeadPeerMustReRegisterAndThenRejoins() {
        var t = LivenessTracker(RunConfig.LivenessSection())   // 500 ms × 6
        t.register("actor-1", role: .actor, now: 0)
        XCTAssertEqual(t.tick(now: 5000), [.dead(peer: "actor-1", role: .actor, silentForMs: 5000)])
        XCTAssertEqual(t.heartbeat("actor-1", now: 5100), .mustRegister(peer: "actor-1"),
                       "a heartbeat does not resurrect a dead peer")
        XCTAssertFalse(t.isAlive("actor-1"))
        XCTAssertEqual(t.register("actor-1", role: .actor, now: 7000),
                       .rejoined(peer: "actor-1", role: .actor, downForMs: 2000))
        XCTAssertEqual(t.livePeers(role: .actor), ["actor-1"])
        XCTAssertEqual(t.peer("actor-1")?.registrations, 2)
        XCTAssertEqual(t.tick(now: 7000 + 2999), [], "the window restarts at re-registration")
    }

    func testUnknownPeersAndFastRestartsAndGoodbyes() {
        var t = LivenessTracker(heartbeatIntervalMs: 100, livenessCount: 2)
        XCTAssertEqual(t.heartbeat("ghost", now: 0), .mustRegister(peer: "ghost"))
        t.register("a", role: .actor, now: 0)
        XCTAssertEqual(t.register("a", role: .actor, now: 50), .restarted(peer: "a", role: .actor))
        XCTAssertEqual(t.leave("a", now: 60), .left(peer: "a", role: .actor))
        XCTAssertEqual(t.tick(now: 1000), [], "a peer that left is not reported dead")
        XCTAssertEqual(t.register("a", role: .actor, now: 1060), .rejoined(peer: "a", role: .actor, downForMs: 1000))
    }

    func testManyPeersEventsAreSortedById() {
        var t = LivenessTracker(heartbeatIntervalMs: 10, livenessCount: 1)
        for id in ["actor-2", "actor-0", "actor-1"] { t.register(id, role: .actor, now: 0) }
        XCTAssertEqual(t.tick(now: 10).map { if case .dead(let p, _, _) = $0 { return p } else { return "" } },
                       ["actor-0", "actor-1", "actor-2"])
    }

    func testMonotonicClockAdvances() {
        let a = monotonicMillis()
        usleep(20_000)
        let b = monotonicMillis()
        XCTAssertGreaterThanOrEqual(b - a, 15)
    }
}
