// EvalSchedule: every E versions, once per version, catch-up on jumps, deadlines.
import XCTest
import BonfireCluster

final class EvalScheduleTests: XCTestCase {
    func testRequestsEveryEVersionsOnce() {
        var s = EvalSchedule(everyVersions: 5, timeoutMs: 1000)
        var requested: [Int] = []
        for v in 0...20 {
            for a in s.versionPublished(v, now: Int64(v)) {
                if case .requestEval(let x) = a { requested.append(x) }
            }
            _ = s.versionPublished(v, now: Int64(v))   // republished: nothing
        }
        XCTAssertEqual(requested, [5, 10, 15, 20])
        XCTAssertEqual(s.outstanding.keys.sorted(), [5, 10, 15, 20])
    }

    func testVersionJumpsCatchUpWithOneRequestForTheCurrentVersion() {
        var s = EvalSchedule(everyVersions: 25, timeoutMs: 1000)
        XCTAssertEqual(s.versionPublished(24, now: 0), [])
        XCTAssertEqual(s.versionPublished(60, now: 0), [.requestEval(version: 60)], "50 and 25 crossed: one eval")
        XCTAssertEqual(s.versionPublished(70, now: 0), [], "next boundary is 75")
        XCTAssertEqual(s.versionPublished(74, now: 0), [])
        XCTAssertEqual(s.versionPublished(76, now: 0), [.requestEval(version: 76)])
        XCTAssertEqual(s.versionPublished(50, now: 0), [], "going backwards never re-requests")
    }

    func testReportsCompleteAndDeadlinesTimeOut() {
        var s = EvalSchedule(everyVersions: 2, timeoutMs: 100)
        XCTAssertEqual(s.versionPublished(2, now: 0), [.requestEval(version: 2)])
        XCTAssertEqual(s.versionPublished(4, now: 50), [.requestEval(version: 4)])
        XCTAssertEqual(s.nextDeadline, 100)
        XCTAssertEqual(s.reportReceived(version: 2, now: 80), .completed(version: 2, latencyMs: 80))
        XCTAssertEqual(s.tick(now: 149), [])
        XCTAssertEqual(s.tick(now: 150), [.timedOut(version: 4)])
        XCTAssertEqual(s.tick(now: 500), [], "timed out once")
        XCTAssertEqual(s.reportReceived(version: 4, now: 600), .late(version: 4))
        XCTAssertEqual(s.reportReceived(version: 4, now: 601), .unexpected(version: 4))
        XCTAssertEqual(s.reportReceived(version: 3, now: 601), .unexpected(version: 3))
        XCTAssertEqual(s.completed, [2, 4])
        XCTAssertEqual(s.timedOut, [4])
        XCTAssertNil(s.nextDeadline)
    }

    func testFinalEvaluationAndNever() {
        var s = EvalSchedule(everyVersions: 10, timeoutMs: 100)
        _ = s.versionPublished(10, now: 0)
        XCTAssertEqual(s.finish(finalVersion: 10, now: 1), [], "already evaluated")
        _ = s.versionPublished(13, now: 2)
        XCTAssertEqual(s.finish(finalVersion: 13, now: 3), [.requestEval(version: 13)])
        var never = EvalSchedule(RunConfig.EvalSection())
        XCTAssertEqual(never.everyVersions, RunConfig.EvalSection().everyVersions, "the config default reaches the schedule")
        never = EvalSchedule(everyVersions: 0, timeoutMs: 1)
        XCTAssertEqual((0...100).flatMap { never.versionPublished($0, now: 0) }, [])
    }

    func testStartingVersionGetsOneBaselineEvaluationThenTheEveryERuleContinues() {
        var s = EvalSchedule(everyVersions: 25, timeoutMs: 1000)
        XCTAssertEqual(s.started(atVersion: 40, now: 0), [.requestEval(version: 40)], "resumed at 40: baseline")
        XCTAssertEqual(s.started(atVersion: 40, now: 1), [], "only once")
        XCTAssertEqual(s.versionPublished(45, now: 2), [], "next boundary is 50")
        XCTAssertEqual(s.versionPublished(50, now: 3), [.requestEval(version: 50)])
    }
}
