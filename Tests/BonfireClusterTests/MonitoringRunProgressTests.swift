// Progress lines of the long commands: RunProgress follows a run's metrics.jsonl (learner steps against maxSteps,
// hostile values ignored, earlier lines of a reused directory skipped), and through the real executable: under tmux
// `bonfire train` keeps ONE warm-up line and ONE train line on screen while the log scrolls above them; with stderr
// in a file `bonfire train-verifier` and `bonfire eval` write plain lines with rate and ETA, no carriage returns or
// escapes.
import BonfireCluster
import BonfireTasks
import Foundation
import XCTest

final class MonitoringRunProgressTests: XCTestCase {
    typealias T = MonitoringTestTools
    final class Sink { var writes: [String] = [] }

    func record(_ role: String, _ version: Int, _ values: [String: Double]) -> MetricsRecord {
        MetricsRecord(time: 1, role: role, version: version, values: values)
    }

    func testFollowsLearnerStepsAndFinishesAtMaxSteps() {
        let sink = Sink()
        var now = 0.0
        var initial: Int?
        let p = RunProgress(metricsURL: URL(fileURLWithPath: "/nonexistent/metrics.jsonl"), maxSteps: 10) { start, _ in
            initial = start
            return BonfireTasks.Progress("train", total: 10, initial: start, isTerminal: false,
                                         output: { sink.writes.append($0) }, clock: { now })
        }
        p.poll()   // no file: nothing, no trap
        p.observe([record("coordinator", 3, [MetricKey.learnerStep: 3]), record("learner", 0, [:])])
        XCTAssertFalse(p.started, "only learner records with learner/step start the line")
        p.observe([record("learner", 4, [MetricKey.learnerStep: 4, MetricKey.policyLoss: 0.5,
                                         MonitoringKey.verifierScoreMean: 0.7, MonitoringKey.rewardMean: 0.1])])
        XCTAssertEqual(initial, 4, "a resumed run counts its rate from where it began")
        XCTAssertTrue(sink.writes.last!.hasPrefix("train  4/10") && sink.writes.last!.contains("v4  loss 0.5  r 0.700  R 0.100"),
                      sink.writes.last!)
        for hostile in [Double.nan, -1, .infinity, 1e300] {
            p.observe([record("learner", 5, [MetricKey.learnerStep: hostile])])
        }
        now = 20
        p.observe([record("learner", 7, [MetricKey.learnerStep: 7])])
        XCTAssertTrue(sink.writes.last!.hasPrefix("train  7/10") && sink.writes.last!.contains("0.15 steps/s") && sink.writes.last!.contains("ETA 20s"),
                      "3 steps in 20 s since step 4; 3 left: \(sink.writes.last!)")
        now = 30
        p.observe([record("learner", 10, [MetricKey.learnerStep: 10])])
        XCTAssertTrue(sink.writes.last!.contains("10/10") && sink.writes.last!.contains("done in 30s"), sink.writes.last!)
        let count = sink.writes.count
        p.stop()
        XCTAssertEqual(sink.writes.count, count, "finished once")
    }

    func testReadsOnlyWhatTheRunAppendsAfterItStarts() throws {
        let dir = T.tempDir("runprogress")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("metrics.jsonl")
        try (record("learner", 500, [MetricKey.learnerStep: 500]).jsonLine() + "\n").write(to: url, atomically: true, encoding: .utf8)
        let sink = Sink()
        let p = RunProgress(metricsURL: url, maxSteps: 20) { start, _ in
            BonfireTasks.Progress("train", total: 20, initial: start, isTerminal: false, output: { sink.writes.append($0) }, clock: { 0 })
        }
        p.poll()
        XCTAssertFalse(p.started, "the previous run's lines in a reused directory are skipped")
        let h = try FileHandle(forWritingTo: url)
        try h.seekToEnd()
        try h.write(contentsOf: Data(("not json\n" + record("learner", 2, [MetricKey.learnerStep: 2]).jsonLine() + "\n").utf8))
        try h.close()
        p.poll()
        XCTAssertTrue(p.started)
        XCTAssertTrue(sink.writes.last!.hasPrefix("train  2/20"), sink.writes.joined())
    }

    /// Rate and duration come from the records' time stamps: a short run whose records all arrive in one poll
    /// (8 steps, one per 10 ms) reads 100 steps/s over 0.07 s, not thousands of steps/s over no time.
    func testRateUsesTheRecordsTimeStampsNotWhenTheyWereRead() {
        let sink = Sink()
        let p = RunProgress(metricsURL: URL(fileURLWithPath: "/nonexistent/metrics.jsonl"), maxSteps: 8) { start, clock in
            BonfireTasks.Progress("train", total: 8, initial: start, isTerminal: false, output: { sink.writes.append($0) },
                                  clock: clock)
        }
        p.observe((1...8).map { MetricsRecord(time: 1000 + 0.01 * Double($0), role: "learner", version: $0,
                                              values: [MetricKey.learnerStep: Double($0)]) }
                  + [MetricsRecord(time: .nan, role: "learner", version: 8, values: [MetricKey.learnerStep: 8])])
        p.stop()
        let last = sink.writes.last ?? ""
        XCTAssertTrue(last.contains("8/8") && (last.contains(" 100 steps/s") || last.contains(" 100.0 steps/s")) && last.contains("done in 0s"), last)
    }

    // MARK: through the real executable

    func testTrainUnderTmuxKeepsOneProgressLineBelowTheScrollingLog() throws {
        let tmux = MonitoringStatusTests.Tmux(try T.require("tmux", install: "apt-get install tmux"))
        defer { tmux.kill() }
        let exe = try T.bonfireExecutable()
        let dir = T.tempDir("train-tmux")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sets = ["model.layers=1", "model.dim=32", "algorithm.sftWarmupSteps=400", "eval.everyVersions=0",
                    "learner.groupsPerStep=2", "sampling.groupSize=4", "algorithm.trainN=2", "sampling.maxNewTokens=8",
                    "logging.periodSeconds=1"].map { "--set \($0)" }.joined(separator: " ")
        let cmd = "OPENBLAS_NUM_THREADS=1 '\(exe)' train --steps 60 --out '\(dir.path)' \(sets); echo EXIT=$?; sleep 60"
        let started = try tmux.callAny(["new-session", "-d", "-s", "p", "-x", "150", "-y", "50", cmd])
        XCTAssertEqual(started.status, 0, started.err)
        func screen() -> String { (try? tmux.callAny(["capture-pane", "-p", "-t", "p", "-S", "-", "-E", "-"]).out) ?? "" }
        XCTAssertTrue(T.waitUntil(240) { screen().contains("EXIT=") }, screen())
        let s = screen()
        XCTAssertTrue(s.contains("EXIT=0"), s)
        let lines = s.split(separator: "\n")
        let warm = lines.filter { $0.contains("learner: sft warm-up  ") }
        let train = lines.filter { $0.hasPrefix("train  ") }
        XCTAssertEqual(warm.count, 1, "one warm-up line, redrawn in place:\n\(s)")
        XCTAssertEqual(train.count, 1, "one train line, redrawn in place:\n\(s)")
        XCTAssertTrue(warm[0].contains("400/400") && warm[0].contains("done in"), String(warm[0]))
        XCTAssertTrue(train[0].hasPrefix("train  60/60") && train[0].contains("steps/s") && train[0].contains("done in"), String(train[0]))
        XCTAssertTrue(lines.contains { $0.contains("coordinator: run finished at version 60") }, "log lines still shown:\n\(s)")
        XCTAssertFalse(lines.contains { $0.contains("train  ") && !$0.hasPrefix("train  ") }, "no log line glued to the progress line:\n\(s)")

        // `bonfire eval` of that run's final checkpoint, stderr in a file: plain progress lines.
        let ckpt = dir.appendingPathComponent("checkpoints/v000060.safetensors").path
        let e = try T.run(exe, ["eval", "--checkpoint", ckpt, "--prompts", "16", "--samples", "4", "--n", "1,2,4",
                                "--temperatures", "0.5,1.0", "--out", dir.appendingPathComponent("eval-out").path],
                          timeout: 120, env: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(e.status, 0, e.err)
        let evalLines = e.err.split(separator: "\n").filter { $0.hasPrefix("eval math  ") }
        XCTAssertTrue(evalLines.first.map { $0.contains("/32") && $0.contains("prompts/s") && $0.contains("ETA") } ?? false, e.err)
        XCTAssertTrue(evalLines.last.map { $0.contains("32/32") && $0.contains("done in") } ?? false, e.err)
        XCTAssertFalse(e.err.contains("\r") || e.err.contains("\u{1B}"), "no terminal control in a log")
    }

    func testTrainVerifierWithStderrInAFileWritesPlainLinesWithRateAndETA() throws {
        let exe = try T.bonfireExecutable()
        let dir = T.tempDir("tv-log")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let r = try T.run(exe, ["train-verifier", "--prompts", "40", "--held-out-prompts", "8", "--steps", "60", "--layers", "1",
                                "--dim", "32", "--out", dir.appendingPathComponent("v.safetensors").path],
                          timeout: 120, env: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.err.split(separator: "\n").filter { $0.hasPrefix("train-verifier  ") }
        XCTAssertGreaterThanOrEqual(lines.count, 2, r.err)
        XCTAssertTrue(lines[0].contains("/60") && lines[0].contains("steps/s") && lines[0].contains("ETA"), String(lines[0]))
        XCTAssertTrue(lines.last!.contains("60/60") && lines.last!.contains("done in") && lines.last!.contains("loss/bce"), String(lines.last!))
        XCTAssertFalse(r.err.contains("\r") || r.err.contains("\u{1B}"), "no terminal control in a log")
        XCTAssertTrue(r.out.contains("held-out AUC"), r.out)
    }
}
