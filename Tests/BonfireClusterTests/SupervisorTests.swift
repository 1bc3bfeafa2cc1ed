// Supervisor with /bin/sh children: prefixed output, exit statuses, required vs optional, SIGKILL after the grace
// period, restart, signal forwarding. Every test waits for run() to return, so every child is reaped.
import XCTest
import Foundation
import Glibc
import BonfireCluster

/// Collects output lines from the supervisor thread.
private final class Lines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
    func contains(_ s: String) -> Bool { all.contains { $0.contains(s) } }
}

final class SupervisorTests: XCTestCase {
    private func sh(_ name: String, _ script: String, required: Bool = true) -> ChildSpec {
        ChildSpec(name: name, executable: "/bin/sh", arguments: ["-c", script], required: required)
    }

    private func runInBackground(_ sup: Supervisor) -> (wait: () -> Int32, done: () -> Bool) {
        let box = ResultBox()
        let t = Thread { box.set(sup.run()) }
        t.start()
        return ({ box.wait() }, { box.isSet })
    }

    private func waitUntil(_ timeout: Double = 5, _ cond: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end { if cond() { return true }; usleep(10_000) }
        return cond()
    }

    func testPrefixesEveryLineWithTheRoleAndSucceeds() {
        let out = Lines()
        let sup = Supervisor(children: [
            sh("coordinator", "echo hello; echo two words 1>&2; printf 'no newline'"),
            sh("actor-0", "for i in 1 2 3; do echo line $i; done"),
        ], gracePeriod: 1, handleSignals: false, output: out.add)
        XCTAssertEqual(sup.run(), 0)
        let lines = out.all
        XCTAssertTrue(lines.contains("[coordinator] hello"), "\(lines)")
        XCTAssertTrue(lines.contains("[coordinator] two words"), "stderr is captured too: \(lines)")
        XCTAssertTrue(lines.contains("[coordinator] no newline"), "\(lines)")
        XCTAssertEqual(lines.filter { $0.hasPrefix("[actor-0] line ") }, ["[actor-0] line 1", "[actor-0] line 2",
                                                                          "[actor-0] line 3"])
        XCTAssertEqual(sup.exits(of: "coordinator"), [.exited(0)])
    }

    func testRequiredFailureStopsTheOthersAndIsNamed() {
        let out = Lines()
        let t0 = Date()
        let sup = Supervisor(children: [
            sh("learner", "sleep 0.2; exit 3"),
            sh("actor-0", "exec sleep 30", required: false),
        ], gracePeriod: 2, handleSignals: false, output: out.add)
        XCTAssertEqual(sup.run(), 1)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5, "the sleeping actor was stopped, not waited for")
        XCTAssertEqual(sup.exits(of: "learner"), [.exited(3)])
        XCTAssertEqual(sup.exits(of: "actor-0"), [.signalled(SIGTERM)])
        XCTAssertTrue(out.contains("[supervisor] learner FAILED: exited with status 3"), "\(out.all)")
        XCTAssertTrue(out.contains("failed: learner"), "\(out.all)")
    }

    func testAChildThatEndsTheJobStopsTheOthersAndTheJobSucceeds() {
        let out = Lines()
        let t0 = Date()
        var coordinator = sh("coordinator", "sleep 0.2; exit 0")
        coordinator.endsJob = true
        let sup = Supervisor(children: [coordinator, sh("actor-0", "exec sleep 30")],
                             gracePeriod: 2, handleSignals: false, output: out.add)
        XCTAssertEqual(sup.run(), 0, "\(out.all)")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5, "the waiting actor was stopped, not waited for")
        XCTAssertEqual(sup.exits(of: "actor-0"), [.signalled(SIGTERM)])
        XCTAssertTrue(out.contains("coordinator finished the job"), "\(out.all)")
    }

    func testOptionalFailureDoesNotStopTheJob() {
        let out = Lines()
        let sup = Supervisor(children: [
            sh("coordinator", "sleep 0.5; echo done"),
            sh("actor-1", "exit 7", required: false),
        ], gracePeriod: 1, handleSignals: false, output: out.add)
        XCTAssertEqual(sup.run(), 0)
        XCTAssertTrue(out.contains("[coordinator] done"))
        XCTAssertTrue(out.contains("actor-1 failed: exited with status 7; the job continues"), "\(out.all)")
    }

    func testChildIgnoringSIGTERMIsKilledAfterTheGracePeriod() {
        let out = Lines()
        let sup = Supervisor(children: [
            sh("coordinator", "sleep 0.3; exit 0"),   // lets the stubborn child install its trap first
            sh("stubborn", "trap '' TERM; echo ready; while true; do sleep 0.05; done", required: false),
        ], gracePeriod: 0.5, handleSignals: false, output: out.add)
        let t0 = Date()
        XCTAssertEqual(sup.run(), 0)
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertGreaterThanOrEqual(elapsed, 0.75, "0.3 s of work + 0.5 s grace")
        XCTAssertLessThan(elapsed, 4)
        XCTAssertEqual(sup.exits(of: "stubborn"), [.signalled(SIGKILL)])
        XCTAssertTrue(out.contains("stubborn still running after 0.5 s; sending SIGKILL"), "\(out.all)")
    }

    func testShutdownRequestIsForwardedAndReturns128PlusSignal() {
        let out = Lines()
        let sup = Supervisor(children: [
            sh("learner", "trap 'echo stopping; exit 0' INT; echo up; while true; do sleep 0.05; done"),
        ], gracePeriod: 3, handleSignals: false, output: out.add)
        let bg = runInBackground(sup)
        XCTAssertTrue(waitUntil { out.contains("[learner] up") })
        sup.requestShutdown(signal: SIGINT)
        let code = bg.wait()
        XCTAssertTrue(out.contains("[learner] stopping"), "the child saw SIGINT and stopped gracefully: \(out.all)")
        XCTAssertEqual(sup.exits(of: "learner"), [.exited(0)])
        XCTAssertEqual(code, 0, "requestShutdown is not an interruption by a signal")
    }

    func testRealSIGTERMToUsIsForwardedToChildren() {
        let out = Lines()
        let sup = Supervisor(children: [
            sh("learner", "trap 'echo got term; exit 0' TERM; echo up; while true; do sleep 0.05; done"),
        ], gracePeriod: 3, handleSignals: true, output: out.add)
        let bg = runInBackground(sup)
        XCTAssertTrue(waitUntil { out.contains("[learner] up") })
        Glibc.kill(getpid(), SIGTERM)      // caught by the supervisor's handler while run() is active
        XCTAssertEqual(bg.wait(), 128 + SIGTERM)
        XCTAssertTrue(out.contains("[learner] got term"), "\(out.all)")
        XCTAssertTrue(out.contains("received SIGTERM"), "\(out.all)")
    }

    func testKillAndRestartAChildWhileTheJobRuns() throws {
        let out = Lines()
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-sup-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: marker) }
        let sup = Supervisor(children: [
            sh("coordinator", "while [ ! -e '\(marker.path)' ]; do sleep 0.05; done; echo finishing"),
            sh("actor-0", "echo started $$; exec sleep 30", required: false),
        ], gracePeriod: 1, handleSignals: false, output: out.add)
        let bg = runInBackground(sup)
        XCTAssertTrue(waitUntil { out.all.filter { $0.hasPrefix("[actor-0] started") }.count == 1 })
        let firstPid = try XCTUnwrap(sup.pid(of: "actor-0"))
        XCTAssertTrue(sup.kill(name: "actor-0", signal: SIGKILL))
        XCTAssertTrue(waitUntil { sup.exits(of: "actor-0") == [.signalled(SIGKILL)] })
        XCTAssertTrue(out.contains("actor-0 failed: killed by signal 9 (SIGKILL)"), "\(out.all)")
        XCTAssertFalse(bg.done(), "an optional child's death does not end the job")
        sup.restart(name: "actor-0")
        XCTAssertTrue(waitUntil { out.all.filter { $0.hasPrefix("[actor-0] started") }.count == 2 }, "\(out.all)")
        XCTAssertNotEqual(sup.pid(of: "actor-0"), firstPid)
        XCTAssertTrue(FileManager.default.createFile(atPath: marker.path, contents: nil))
        XCTAssertEqual(bg.wait(), 0)
        XCTAssertEqual(sup.exits(of: "actor-0"), [.signalled(SIGKILL), .signalled(SIGTERM)])
        XCTAssertTrue(Self.goneOrZombie(firstPid), "first incarnation is gone")
    }

    /// The restart decision alone: quick failures back off and, the `maxStartupFailures`-th in a row, give up; a run
    /// past `healthyAfterSeconds` starts both counts afresh; a kill from outside never counts as a start-up failure.
    func testRestartPolicyGivesUpOnlyOnStartupFailuresInARow() {
        let p = RestartPolicy(initialDelayMs: 500, maxDelayMs: 10_000, healthyAfterSeconds: 30, maxStartupFailures: 5)
        var f = 0, sf = 0
        var delays: [Int?] = []
        for _ in 0..<5 {
            let d = p.afterFailure(.exited(2), ranSeconds: 0.2, failures: f, startupFailures: sf)
            f = d.failures; sf = d.startupFailures; delays.append(d.delayMs)
        }
        XCTAssertEqual(delays, [500, 1000, 2000, 4000, nil])
        // A healthy run in between: counts start again (the backoff too).
        XCTAssertEqual(p.afterFailure(.signalled(SIGABRT), ranSeconds: 3600, failures: 4, startupFailures: 4),
                       RestartDecision(failures: 1, startupFailures: 0, delayMs: 500))
        // SIGKILL / SIGTERM from outside: backoff grows, the start-up count does not.
        for sig in [SIGKILL, SIGTERM, SIGINT, SIGHUP] {
            XCTAssertEqual(p.afterFailure(.signalled(sig), ranSeconds: 1, failures: 4, startupFailures: 4),
                           RestartDecision(failures: 5, startupFailures: 4, delayMs: 8000), "signal \(sig)")
        }
        // Traps and crashes are the child's own: they count.
        for exit in [ChildExit.signalled(SIGILL), .signalled(SIGTRAP), .signalled(SIGSEGV), .exited(1)] {
            XCTAssertNil(p.afterFailure(exit, ranSeconds: 1, failures: 4, startupFailures: 4).delayMs, "\(exit)")
        }
        let once = RestartPolicy(maxStartupFailures: 1)
        XCTAssertNil(once.afterFailure(.exited(2), ranSeconds: 0, failures: 0, startupFailures: 0).delayMs)
        XCTAssertEqual(once.afterFailure(.exited(2), ranSeconds: 31, failures: 0, startupFailures: 0).delayMs, 500)
    }

    /// A role that fails the same way at every start (a config error) ends the job after `maxStartupFailures` tries
    /// instead of being restarted forever; the job fails and names it.
    func testChildFailingAtEveryStartEndsTheJob() {
        let out = Lines()
        var learner = sh("learner", "echo 'cannot load algorithm.initCheckpoint'; exit 2")
        learner.restart = RestartPolicy(initialDelayMs: 10, maxDelayMs: 20, maxStartupFailures: 3)
        let sup = Supervisor(children: [learner, sh("actor-0", "exec sleep 30", required: false)],
                             gracePeriod: 1, handleSignals: false, output: out.add)
        XCTAssertEqual(sup.run(), 1, "\(out.all)")
        XCTAssertEqual(sup.exits(of: "learner"), [.exited(2), .exited(2), .exited(2)])
        XCTAssertTrue(out.contains("3 times in a row within 30 s of starting, so not restarting it"), "\(out.all)")
        XCTAssertTrue(out.contains("failed: learner"), "\(out.all)")
        XCTAssertEqual(sup.exits(of: "actor-0"), [.signalled(SIGTERM)], "the others are stopped")
    }

    func testMissingExecutableIsReportedAsAFailure() {
        let out = Lines()
        let sup = Supervisor(children: [
            ChildSpec(name: "learner", executable: "/nonexistent/bonfire"),
            sh("actor-0", "exec sleep 30", required: false),
        ], gracePeriod: 1, handleSignals: false, output: out.add)
        XCTAssertEqual(sup.run(), 1)
        XCTAssertTrue(out.contains("cannot start learner"), "\(out.all)")
        XCTAssertEqual(sup.exits(of: "learner"), [.couldNotStart(ENOENT)])
        XCTAssertEqual(sup.exits(of: "actor-0"), [.signalled(SIGTERM)], "the others are stopped")
    }

    /// True when no process `pid` exists or it is a zombie waiting for its (re)parent to reap it.
    private static func goneOrZombie(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        guard let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }

    func testGrandchildrenInTheProcessGroupAreNotLeftBehind() throws {
        let out = Lines()
        let sup = Supervisor(children: [
            sh("learner", "sleep 30 & echo bg $!; exit 0"),
        ], gracePeriod: 1, handleSignals: false, output: out.add)
        let t0 = Date()
        XCTAssertEqual(sup.run(), 0)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 5, "did not wait for the background sleep's pipe")
        let line = try XCTUnwrap(out.all.first { $0.hasPrefix("[learner] bg ") })
        let pid = try XCTUnwrap(pid_t(line.split(separator: " ").last!))
        XCTAssertTrue(waitUntil(2) { Self.goneOrZombie(pid) }, "background sleep \(pid) was killed")
    }

    func testLogDirectoryGetsRawLines() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-logs-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sup = Supervisor(children: [sh("actor-0", "echo a; echo b")], gracePeriod: 1, handleSignals: false,
                             logDirectory: dir, output: { _ in })
        XCTAssertEqual(sup.run(), 0)
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("actor-0.log"), encoding: .utf8), "a\nb\n")
    }
}

private final class ResultBox: @unchecked Sendable {
    private let cond = NSCondition()
    private var value: Int32?
    func set(_ v: Int32) { cond.lock(); value = v; cond.broadcast(); cond.unlock() }
    var isSet: Bool { cond.lock(); defer { cond.unlock() }; return value != nil }
    func wait() -> Int32 {
        cond.lock(); defer { cond.unlock() }
        while value == nil { cond.wait() }
        return value!
    }
}
