// End-to-end tests of the runtime through the real executable: `bonfire local` with 2 actors, an actor killed and
// restarted mid-run, and a learner killed and resumed. They need the `bonfire` product built next to the test
// bundle (Scripts/test.sh builds it first); without it they fail with a message saying so.
import BonfireCluster
import BonfireMath
import Foundation
import XCTest

final class LocalRunTests: XCTestCase {
    func bonfireExecutable() throws -> String { try bonfireExecutablePath() }

    func tempRunDir(_ name: String) -> URL { temporaryRunDir(name) }

    /// Small, fast settings shared by every test run (tiny model, short warm-up, short liveness window).
    func fastSets(runDir: URL, maxSteps: Int) -> [String] {
        [
            "run.dir=\(runDir.path)", "learner.maxSteps=\(maxSteps)", "learner.groupsPerStep=4",
            "learner.checkpointEvery=1", "algorithm.sftWarmupSteps=20", "model.layers=1", "model.dim=32",
            "sampling.groupSize=4", "sampling.maxNewTokens=12", "algorithm.trainN=2",
            "eval.everyVersions=3", "eval.prompts=4", "eval.samples=4", "eval.n=1,2,4",
            "liveness.heartbeatIntervalMs=200", "liveness.livenessCount=5", "logging.periodSeconds=1",
            "liveness.peerGiveUpMs=30000",
        ].flatMap { ["--set", $0] }
    }

    func metrics(_ runDir: URL) -> [MetricsRecord] { metricsRecords(runDir) }

    /// Runs `bonfire <arguments>` to its end: exit status and everything it printed (stdout and stderr).
    func runToEnd(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try bonfireExecutable())
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    func maxLearnerVersion(_ runDir: URL) -> Int {
        metrics(runDir).filter { $0.role == "learner" }.map(\.version).max() ?? -1
    }

    typealias Collected = CollectedLines

    func waitUntil(_ seconds: Double, _ what: String, _ collected: Collected, _ cond: () -> Bool) {
        waitFor(seconds, what, collected, cond)
    }

    func testLocalRunWithTwoActorsAdvancesVersionsEvaluatesAndExitsCleanly() throws {
        let dir = tempRunDir("local")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A warm-up several liveness windows long (1 s here): roles must stay in touch with the coordinator meanwhile.
        let (status, out) = try runToEnd(["local", "--actors", "2"] + fastSets(runDir: dir, maxSteps: 300)
                                         + ["--set", "algorithm.sftWarmupSteps=400"])
        XCTAssertEqual(status, 0, "bonfire local failed:\n\(out.suffix(6000))")
        XCTAssertGreaterThanOrEqual(maxLearnerVersion(dir), 300, out.suffix(4000).description)
        XCTAssertTrue(out.contains("[coordinator]") && out.contains("[learner]") && out.contains("[actor-0]")
                      && out.contains("[actor-1]"), "both actor processes ran; log lines are prefixed by role")
        // The run is short (a few hundred tiny updates): a slow-starting actor may find it already finished, which
        // must not fail the job; at least one actor registered and fed the learner.
        XCTAssertTrue(out.contains("actor-0 registered") || out.contains("actor-1 registered"), out.suffix(4000).description)
        XCTAssertTrue(out.contains("eval of version"), "the coordinator logs an evaluation table")
        XCTAssertTrue(metrics(dir).contains { $0.values.keys.contains { $0.hasPrefix("eval/pass@") } }, "eval metrics in metrics.jsonl")
        XCTAssertTrue(metrics(dir).contains { $0.values[MetricKey.runFinished] == 1 })
        // A clean run drops nothing and loses no peer: every role's admission accepts every message of every other
        // role (e.g. the coordinator's heartbeats carry the learner's version, ahead of what an actor holds).
        let dropLines = out.split(separator: "\n").filter { $0.contains("wire: dropped") }
        XCTAssertEqual(dropLines.count, 0, "a clean run dropped messages:\n\(dropLines.prefix(10).joined(separator: "\n"))")
        XCTAssertFalse(out.contains("coordinator silent"), "a role lost the coordinator in a clean run")
        XCTAssertFalse(out.contains("re-registered"), "a role registered again in a clean run (e.g. during the warm-up)")
        for r in metrics(dir) { XCTAssertEqual(r.values[MetricKey.wireDropped] ?? 0, 0, "\(r.role) reported drops") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("config.json").path))
        let ckpts = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("checkpoints").path)
        XCTAssertTrue(ckpts.contains("v000300.safetensors"), "final checkpoint, got \(ckpts)")
        // `bonfire status` reads the finished run.
        let shown = try runToEnd(["status", dir.path])
        XCTAssertEqual(shown.status, 0, shown.output)
        XCTAssertTrue(shown.output.contains("300"), shown.output)
    }

    /// A context too short for the task (a careless `--set`): `bonfire local` stops before starting any role, saying
    /// which key to change. It used to start them: the learner trapped in its SFT warm-up on a demonstration longer
    /// than the context, and the supervisor restarted it forever.
    func testContextTooShortForTheTaskFailsBeforeAnyRoleStarts() throws {
        let dir = tempRunDir("short-context")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, out) = try runToEnd(["local", "--set", "run.dir=\(dir.path)", "--set", "model.contextLength=40",
                                          "--set", "sampling.maxNewTokens=4"])
        XCTAssertNotEqual(status, 0, out)
        XCTAssertTrue(out.contains("model.contextLength") && out.contains("algorithm.sftWarmupSteps=0"), out)
        XCTAssertFalse(out.contains("[learner]") || out.contains("[actor-0]"), "no role was started:\n\(out)")
    }

    /// A learner that fails the same way at every start (an init checkpoint that does not exist) ends the job with
    /// its error after 5 tries, instead of being restarted forever.
    func testLearnerFailingAtEveryStartEndsTheJob() throws {
        let dir = tempRunDir("init-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, out) = try runToEnd(["local", "--set", "run.dir=\(dir.path)", "--set", "actors.restartInitialMs=50",
                                          "--set", "actors.restartMaxMs=200",
                                          "--set", "algorithm.initCheckpoint=\(dir.path)/missing.safetensors"])
        XCTAssertNotEqual(status, 0, out)
        XCTAssertTrue(out.contains("cannot load algorithm.initCheckpoint"), out)
        XCTAssertTrue(out.contains("learner FAILED") && out.contains("5 times in a row") && out.contains("not restarting it"), out)
        XCTAssertEqual(out.components(separatedBy: "cannot load algorithm.initCheckpoint").count - 1, 5, out)
    }

    func testKilledActorIsReportedDeadRunContinuesAndRestartedActorRejoins() throws {
        let exe = try bonfireExecutable()
        let dir = tempRunDir("fault")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ports = freePorts(4)
        // A run long enough to outlive the test's steps; the test stops it with SIGTERM at the end.
        let sets = fastSets(runDir: dir, maxSteps: 1_000_000) + [
            "endpoints.coordinatorPort=\(ports[0])", "endpoints.rolloutPort=\(ports[1])",
            "endpoints.paramsPort=\(ports[2])", "endpoints.paramsRequestPort=\(ports[3])",
        ].flatMap { ["--set", $0] }
        let role = { (args: [String]) in args + sets }
        let collected = Collected()
        let supervisor = Supervisor(children: [
            ChildSpec(name: "coordinator", executable: exe, arguments: role(["coordinator"])),
            ChildSpec(name: "learner", executable: exe, arguments: role(["learner"])),
            ChildSpec(name: "actor-0", executable: exe, arguments: role(["actor", "--id", "0"])),
            ChildSpec(name: "actor-1", executable: exe, arguments: role(["actor", "--id", "1"]), required: false),
        ], gracePeriod: 5, handleSignals: false, output: { collected.add($0) })
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var code: Int32 = -1
        Thread.detachNewThread { code = supervisor.run(); done.signal() }

        waitUntil(90, "version ≥ 3", collected) { maxLearnerVersion(dir) >= 3 }
        // Only a registered actor can be declared dead: with fast updates version 3 can come before actor-1's hello.
        waitUntil(60, "actor-1 registered", collected) { collected.contains("actor-1 registered as actor") }
        XCTAssertTrue(supervisor.kill(name: "actor-1", signal: SIGKILL))
        waitUntil(30, "coordinator reports actor-1 dead", collected) { collected.contains("actor-1 DEAD") }
        let versionAtDeath = maxLearnerVersion(dir)
        waitUntil(60, "training continues with one actor", collected) { maxLearnerVersion(dir) >= versionAtDeath + 2 }
        supervisor.restart(name: "actor-1")
        waitUntil(60, "actor-1 rejoins", collected) { collected.contains("actor-1 REJOINED") }
        let versionAtRejoin = maxLearnerVersion(dir)
        waitUntil(60, "training continues after the rejoin", collected) { maxLearnerVersion(dir) >= versionAtRejoin + 2 }
        // Graceful stop: every role exits, the learner writes a final checkpoint.
        supervisor.requestShutdown(signal: SIGTERM)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "all roles stop after SIGTERM")
        for name in ["coordinator", "learner", "actor-0", "actor-1"] {
            XCTAssertNil(supervisor.pid(of: name), "\(name) still running")
        }
        XCTAssertTrue(collected.contains("learner: stop signal"), collected.text.suffix(3000).description)
        // Nothing lost at the stop: every version up to the learner's final checkpoint has its metrics line (the
        // coordinator reads until the learner's goodbye; it used to return at once, losing the last lines in flight).
        let finalVersion = try XCTUnwrap(RunDirectory.open(at: dir).latestCheckpoint()?.version)
        let versions = Set(metricsRecords(dir).filter { $0.role == "learner" }.map(\.version))
        XCTAssertEqual((1...finalVersion).filter { !versions.contains($0) }, [],
                       "learner versions without a metrics line after a graceful stop at version \(finalVersion)")
        _ = code
    }

    /// SIGKILL of the coordinator: learner and actors notice within the liveness window, say so, keep training;
    /// the supervisor's restart policy brings the coordinator back and they register again.
    func testKilledCoordinatorIsNoticedTrainingGoesOnAndItIsRestarted() throws {
        let exe = try bonfireExecutable()
        let dir = tempRunDir("coordloss")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ports = freePorts(4)
        let sets = fastSets(runDir: dir, maxSteps: 1_000_000) + [
            "endpoints.coordinatorPort=\(ports[0])", "endpoints.rolloutPort=\(ports[1])",
            "endpoints.paramsPort=\(ports[2])", "endpoints.paramsRequestPort=\(ports[3])",
        ].flatMap { ["--set", $0] }
        let role = { (args: [String]) in args + sets }
        let collected = Collected()
        let policy = RestartPolicy(initialDelayMs: 2500, maxDelayMs: 2500)
        let supervisor = Supervisor(children: [
            ChildSpec(name: "coordinator", executable: exe, arguments: role(["coordinator"]), restart: policy),
            ChildSpec(name: "learner", executable: exe, arguments: role(["learner"])),
            ChildSpec(name: "actor-0", executable: exe, arguments: role(["actor", "--id", "0"])),
        ], gracePeriod: 5, handleSignals: false, output: { collected.add($0) })
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { _ = supervisor.run(); done.signal() }

        waitUntil(90, "version ≥ 3", collected) { maxLearnerVersion(dir) >= 3 }
        XCTAssertTrue(supervisor.kill(name: "coordinator", signal: SIGKILL))
        waitUntil(30, "the learner notices", collected) { collected.contains("learner: coordinator silent") }
        waitUntil(30, "the actor notices", collected) { collected.contains("actor-0: coordinator silent") }
        waitUntil(30, "the supervisor restarts it", collected) { collected.contains("restarting coordinator") }
        waitUntil(30, "the learner hears it again", collected) { collected.contains("learner: coordinator is back") }
        waitUntil(30, "both registered again", collected) {
            collected.count("learner registered") >= 2 && collected.count("actor-0 registered") >= 2
        }
        let v = maxLearnerVersion(dir)
        waitUntil(60, "training goes on and is logged again", collected) { maxLearnerVersion(dir) >= v + 2 }
        supervisor.requestShutdown(signal: SIGTERM)
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "all roles stop after SIGTERM")
        for name in ["coordinator", "learner", "actor-0"] { XCTAssertNil(supervisor.pid(of: name), "\(name) still running") }
    }

    func testLearnerKilledAndResumedContinuesTheVersionSequence() throws {
        let exe = try bonfireExecutable()
        let dir = tempRunDir("resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let collected = Collected()
        let ports = freePorts(4)
        let portSets = [
            "endpoints.coordinatorPort=\(ports[0])", "endpoints.rolloutPort=\(ports[1])",
            "endpoints.paramsPort=\(ports[2])", "endpoints.paramsRequestPort=\(ports[3])",
        ].flatMap { ["--set", $0] }
        let sets = fastSets(runDir: dir, maxSteps: 1000) + portSets
        let first = Supervisor(children: [
            ChildSpec(name: "coordinator", executable: exe, arguments: ["coordinator"] + sets),
            ChildSpec(name: "learner", executable: exe, arguments: ["learner"] + sets),
            ChildSpec(name: "actor-0", executable: exe, arguments: ["actor", "--id", "0"] + sets),
        ], gracePeriod: 3, handleSignals: false, output: { collected.add($0) })
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { _ = first.run(); done.signal() }
        // Old checkpoints are pruned (learner.keepCheckpoints): wait for any at version ≥ 3.
        waitUntil(90, "checkpoint ≥ v3", collected) { ((try? RunDirectory.open(at: dir))?.latestCheckpoint()?.version ?? 0) >= 3 }
        XCTAssertTrue(first.kill(name: "learner", signal: SIGKILL))
        first.requestShutdown()
        XCTAssertEqual(done.wait(timeout: .now() + 30), .success, "supervisor stops after the learner dies")
        let killedAt = maxLearnerVersion(dir)

        // Resume: the learner continues from its latest checkpoint; versions continue, they do not restart at 0.
        let (status, out) = try runToEnd(["local", "--resume", "--strict-ports", "--actors", "1"]
                                         + fastSets(runDir: dir, maxSteps: killedAt + 3) + portSets)
        XCTAssertEqual(status, 0, out.suffix(4000).description)
        XCTAssertTrue(out.contains("resumed from v"), out.suffix(4000).description)
        let versions = metrics(dir).filter { $0.role == "learner" }.map(\.version)
        XCTAssertGreaterThanOrEqual(versions.max() ?? 0, killedAt + 1, "versions continue past \(killedAt)")
        XCTAssertFalse(out.contains("serving version 0 ("), "a resumed learner must not restart at version 0")
    }

    /// Issue 11's deterministic resume, through the real entry point: synchronous schedule, 1 actor. "2K updates
    /// straight" and "K updates, SIGKILL the learner, `bonfire local`'s supervisor restarts it with
    /// --resume-if-any, K more" end with bit-identical parameters (the restarted learner resumes its newest
    /// checkpoint; the actor sees a new learner id, takes the resumed version again and, its rollout stream being a
    /// function of (seed, actor, incarnation, version), re-produces exactly the rollouts the lost learner saw).
    func testSIGKILLedLearnerUnderBonfireLocalResumesBitIdentically() throws {
        let K = 25
        func run(_ name: String, killAt: Int?) throws -> (params: [String: [Float]], log: String) {
            let dir = tempRunDir(name)
            defer { try? FileManager.default.removeItem(at: dir) }
            let collected = Collected()
            let p = try startBonfire(["local", "--actors", "1"] + fastSets(runDir: dir, maxSteps: 2 * K) + [
                "learner.schedule=sync", "eval.everyVersions=100", "actors.restartInitialMs=200",
            ].flatMap { ["--set", $0] }, into: collected)
            if let killAt {
                let until = Date().addingTimeInterval(120)
                while Date() < until, ((try? RunDirectory.open(at: dir))?.latestCheckpoint()?.version ?? 0) < killAt { usleep(10_000) }
                let pg = Process()
                pg.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
                pg.arguments = ["-KILL", "-f", "bonfire learner --config \(dir.path)/config.json"]
                try pg.run(); pg.waitUntilExit()
                XCTAssertEqual(pg.terminationStatus, 0, "no learner process found to kill")
            }
            let deadline = Date().addingTimeInterval(240)
            while p.isRunning, Date() < deadline { usleep(100_000) }
            if p.isRunning { p.terminate(); XCTFail("bonfire local did not finish:\n\(collected.text.suffix(6000))") }
            p.waitUntilExit()
            usleep(300_000)   // the last output lines
            XCTAssertEqual(p.terminationStatus, 0, collected.text.suffix(6000).description)
            let final = try RunDirectory.open(at: dir).checkpointURL(version: 2 * K)
            let t = try SafeTensors.read(from: final).tensors
            return (t.mapValues(\.data), collected.text)
        }
        let straight = try run("straight", killAt: nil)
        let killed = try run("killed", killAt: K)
        XCTAssertTrue(killed.log.contains("restarting learner"), "the supervisor must restart the killed learner:\n\(killed.log.suffix(4000))")
        XCTAssertTrue(killed.log.contains("resumed from v"), killed.log.suffix(4000).description)
        XCTAssertTrue(killed.log.contains("learner restarted"), "the actor must notice the new learner:\n\(killed.log.suffix(4000))")
        XCTAssertEqual(Set(straight.params.keys), Set(killed.params.keys))
        XCTAssertFalse(straight.params.isEmpty)
        for (name, a) in straight.params {
            let b = killed.params[name] ?? []
            XCTAssertTrue(a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern },
                          "\(name) differs after the SIGKILL + resume (first diff at \(a.indices.first { $0 < b.count && a[$0].bitPattern != b[$0].bitPattern } ?? -1))")
        }
    }
}
