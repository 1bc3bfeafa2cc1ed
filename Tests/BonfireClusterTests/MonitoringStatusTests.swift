// `bonfire status` on bad directories (missing, file, empty, foreign, half-written), corrupt metrics lines, the
// follow frame in narrow terminals, and `bonfire status --follow` driven under tmux: it redraws in place as the test
// appends to metrics.jsonl, fits a 44-column terminal, exits on Ctrl-C with the cursor restored, and exits by itself
// when the run finishes.
import BonfireCluster
import BonfireMath
import Foundation
import XCTest

final class MonitoringStatusTests: XCTestCase {
    typealias T = MonitoringTestTools

    func makeRun(_ dir: URL, versions: ClosedRange<Int>, time: Double = Date().timeIntervalSince1970) throws -> RunDirectory {
        var config = RunConfig()
        config.run.id = "follow-test"
        config.actors.count = 2
        let run = try RunDirectory.create(at: dir, config: config)
        try append(run, versions: versions, time: time)
        return run
    }

    func append(_ run: RunDirectory, versions: ClosedRange<Int>, time: Double = Date().timeIntervalSince1970) throws {
        for v in versions {
            try run.append(MetricsRecord(time: time, role: "learner", version: v, values: [
                MetricKey.policyLoss: 1 / Double(v + 1), MetricKey.learnerStep: Double(v), MetricKey.accepted: Double(10 * v),
                MetricKey.acceptedStale: Double(v), MetricKey.meanLag: 0.1,
                MonitoringKey.verifierScoreMean: 0.5, MonitoringKey.rewardMean: 0.25]))
            try run.append(MetricsRecord(time: time, role: "actor-0", version: v, values: [MetricKey.samplesPerSecond: 100]))
            try run.append(MetricsRecord(time: time, role: "coordinator", version: v, values: [MetricKey.liveActors: 1, MetricKey.samplesPerSecond: 100]))
        }
    }

    func testBadDirectoriesSayExactlyWhatIsMissing() throws {
        let base = T.tempDir("statusbad")
        defer { try? FileManager.default.removeItem(at: base) }
        func message(_ url: URL) -> String {
            do { _ = try StatusReport.load(runDirectory: url); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(message(base.appendingPathComponent("missing")).contains("does not exist"))
        let file = base.appendingPathComponent("file.txt")
        try "x".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertTrue(message(file).contains("it is a file"))
        let empty = base.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertTrue(message(empty).contains("it is empty (no config.json, no metrics.jsonl)"), message(empty))
        let foreign = base.appendingPathComponent("foreign")
        try FileManager.default.createDirectory(at: foreign, withIntermediateDirectories: true)
        for n in ["a.py", "README", "data.csv"] { try "x".write(to: foreign.appendingPathComponent(n), atomically: true, encoding: .utf8) }
        XCTAssertTrue(message(foreign).contains("holds 3 entries (README, a.py, data.csv) but none of a run's"), message(foreign))

        // Half-written: config.json only.
        let half = base.appendingPathComponent("half")
        try FileManager.default.createDirectory(at: half, withIntermediateDirectories: true)
        try RunConfig().resolvedJSON().write(to: half.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        var s = try StatusReport.load(runDirectory: half)
        XCTAssertEqual(s.state, .empty)
        XCTAssertTrue(s.problems.contains { $0.contains("metrics.jsonl is missing") }, "\(s.problems)")
        // Metrics but a truncated config.json and a half-written eval table.
        try "{\"run\": {\"id\": ".write(to: half.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try MetricsRecord(time: 1, role: "learner", version: 3, values: ["loss/policy": 1]).jsonLine()
            .appending("\n{\"time\": 2, \"ro").write(to: half.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(at: half.appendingPathComponent("eval"), withIntermediateDirectories: true)
        try "{\"version\": 3, \"ro".write(to: half.appendingPathComponent("eval/v000003.json"), atomically: true, encoding: .utf8)
        s = try StatusReport.load(runDirectory: half)
        XCTAssertEqual(s.latestVersion, 3)
        XCTAssertEqual(s.malformedLines, 1, "the partial last line is counted")
        let text = s.render()
        for part in ["config.json is unreadable", "1 malformed line(s) in metrics.jsonl skipped", "v000003.json in eval/ is unreadable"] {
            XCTAssertTrue(text.contains(part), "missing '\(part)' in:\n\(text)")
        }
        // Metrics without config.json.
        try FileManager.default.removeItem(at: half.appendingPathComponent("config.json"))
        XCTAssertTrue(try StatusReport.load(runDirectory: half).problems.contains { $0.contains("config.json is missing") })

        // A truncated newest checkpoint and a half-written newest eval table: named, and the newest whole ones shown.
        try RunConfig().resolvedJSON().write(to: half.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let ckpts = half.appendingPathComponent("checkpoints")
        try FileManager.default.createDirectory(at: ckpts, withIntermediateDirectories: true)
        let whole = try SafeTensors.encode(tensors: [(name: "w", shape: [4], data: [1, 2, 3, 4])], metadata: ["policy_version": "2"])
        try whole.write(to: ckpts.appendingPathComponent("v000002.safetensors"))
        try whole.prefix(whole.count - 5).write(to: ckpts.appendingPathComponent("v000003.safetensors"))
        try Data([1, 2, 3]).write(to: ckpts.appendingPathComponent("v000004.safetensors"))
        try Data("not a checkpoint at all".utf8).write(to: ckpts.appendingPathComponent("v000005.safetensors"))
        try JSONEncoder().encode(EvalTable(version: 2, time: 1, prompts: 4, rows: [.init(temperature: 1, n: 1, passAtN: 0.5, boN: 0.5)]))
            .write(to: half.appendingPathComponent("eval/v000002.json"))
        s = try StatusReport.load(runDirectory: half)
        XCTAssertEqual(s.latestCheckpoint?.version, 2, "the newest whole checkpoint: \(s.problems)")
        XCTAssertEqual(s.latestEval?.version, 2, "the newest readable eval table")
        let t = s.render()
        for part in ["checkpoints/v000003.safetensors is truncated (\(whole.count - 5) of \(whole.count) bytes",
                     "checkpoints/v000004.safetensors is truncated (3 bytes", "checkpoints/v000005.safetensors is not a safetensors file",
                     "v000003.json in eval/ is unreadable", "checkpoint v2 v000002.safetensors"] {
            XCTAssertTrue(t.contains(part), "missing '\(part)' in:\n\(t)")
        }
        XCTAssertNil(StatusReport.checkpointProblem(ckpts.appendingPathComponent("v000002.safetensors")))
        try FileManager.default.removeItem(at: half.appendingPathComponent("config.json"))
        XCTAssertTrue(try StatusReport.load(runDirectory: half).render().contains("(defaults: config.json missing or unreadable)"),
                      "figures from defaults are labelled as such")

        // The executable says the same on stderr with exit code 1 (report too, once it exists).
        let exe = try T.bonfireExecutable()
        let r = try T.run(exe, ["status", foreign.path], timeout: 30)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("none of a run's"), r.err)
        let f = try T.run(exe, ["status", "--follow", empty.path], timeout: 30)
        XCTAssertEqual(f.status, 1)
        XCTAssertTrue(f.err.contains("it is empty"), f.err)
    }

    func testCorruptLinesAreSkippedAndCountedAndTheTailReadsOnlyWhatIsNew() throws {
        let dir = T.tempDir("tail")
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("metrics.jsonl")
        let good = MetricsRecord(time: 1, role: "learner", version: 1, values: ["loss/policy": 0.5]).jsonLine()
        try (good + "\n\u{0}\u{1}garbage\n[1,2]\n{\"time\":\"x\",\"role\":1}\n\n" + good + "\n{\"time\": 3, \"role\": \"learner\", \"ver")
            .write(to: url, atomically: true, encoding: .utf8)
        let tail = MetricsTail(url: url)
        XCTAssertEqual(tail.poll().count, 2)
        XCTAssertEqual(tail.malformed, 3)
        XCTAssertGreaterThan(tail.pendingBytes, 0)
        let h = try FileHandle(forWritingTo: url)
        h.seekToEndOfFile(); h.write(Data("sion\": 4}\n".utf8)); try h.close()
        let fresh = tail.poll()
        XCTAssertEqual(fresh.map(\.version), [4], "the partial line completes")
        XCTAssertEqual(tail.pendingBytes, 0)
        XCTAssertEqual(tail.poll().count, 0)
        try good.appending("\n").write(to: url, atomically: true, encoding: .utf8)   // replaced by a shorter file
        XCTAssertEqual(tail.poll().count, 1)
        XCTAssertEqual(tail.records.count, 1)
        XCTAssertEqual(MetricsTail(url: dir.appendingPathComponent("none")).poll().count, 0)
    }

    func testFrameFitsNarrowTerminalsAndDropsControlCharacters() throws {
        let dir = T.tempDir("frame")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try makeRun(dir, versions: 1...3)
        try run.append(MetricsRecord(time: Date().timeIntervalSince1970, role: "actor-\u{1B}[2J\tevil", version: 3,
                                     values: [MetricKey.samplesPerSecond: 1]))
        let report = try StatusReport.load(runDirectory: dir)
        for width in [10, 20, 44, 80] {
            let lines = StatusView.frame(report, width: width, height: 12)
            XCTAssertLessThanOrEqual(lines.count, 12)
            for l in lines {
                XCTAssertLessThanOrEqual(l.count, width, "'\(l)' wider than \(width)")
                XCTAssertFalse(l.unicodeScalars.contains { $0.value < 0x20 }, "control character in '\(l)'")
            }
        }
        XCTAssertTrue(StatusView.frame(report, width: 200).contains { $0.contains("r vs R") && $0.contains("gap +0.250") })
        XCTAssertTrue(StatusView.frame(report, width: 200).contains { $0.hasPrefix("staleness  lag 0: ") })
    }

    // MARK: tmux

    final class Tmux {
        let exe: String
        let socket = "bonfire-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        init(_ exe: String) { self.exe = exe }
        @discardableResult
        func callAny(_ args: [String]) throws -> T.ToolResult {
            try T.run(exe, ["-L", socket, "-f", "/dev/null"] + args, timeout: 20, env: ["TERM": "xterm-256color"])
        }
        func capture(_ target: String) -> String { (try? callAny(["capture-pane", "-p", "-J", "-t", target]).out) ?? "" }
        func display(_ target: String, _ format: String) -> String {
            ((try? callAny(["display-message", "-p", "-t", target, format]).out) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        func kill() { _ = try? callAny(["kill-server"]) }
    }

    func testFollowUnderTmuxRedrawsAsTheRunGrowsFitsTheWidthAndQuitsOnCtrlC() throws {
        let tmux = Tmux(try T.require("tmux", install: "apt-get install tmux"))
        defer { tmux.kill() }
        let exe = try T.bonfireExecutable()
        let dir = T.tempDir("follow")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try makeRun(dir, versions: 1...5)
        let width = 44
        let cmd = "'\(exe)' status '\(dir.path)' --follow --interval 0.2; echo EXIT=$?; sleep 30"
        let started = try tmux.callAny(["new-session", "-d", "-s", "f", "-x", String(width), "-y", "40", cmd])
        XCTAssertEqual(started.status, 0, started.err)
        XCTAssertTrue(T.waitUntil(20) { tmux.capture("f").contains("version    5") }, "first frame:\n\(tmux.capture("f"))")
        XCTAssertEqual(tmux.display("f", "#{cursor_flag}"), "0", "cursor hidden while following")
        try append(run, versions: 6...12)
        XCTAssertTrue(T.waitUntil(20) { tmux.capture("f").contains("version    12") }, "redrawn:\n\(tmux.capture("f"))")
        var screen = tmux.capture("f")
        XCTAssertEqual(screen.components(separatedBy: "bonfire status --follow").count - 1, 1, "redrawn in place, not appended:\n\(screen)")
        for line in screen.split(separator: "\n") {
            XCTAssertLessThanOrEqual(line.count, width, "line wider than the terminal: '\(line)'")
        }
        for part in ["running", "actor-0", "alive", "staleness", "r vs R", "loss"] {
            XCTAssertTrue(screen.contains(part), "missing '\(part)' in:\n\(screen)")
        }
        try tmux.callAny(["send-keys", "-t", "f", "C-c"])
        XCTAssertTrue(T.waitUntil(10) { tmux.capture("f").contains("EXIT=0") }, "Ctrl-C exit:\n\(tmux.capture("f"))")
        screen = tmux.capture("f")
        XCTAssertTrue(screen.contains("stopped following"), screen)
        XCTAssertEqual(tmux.display("f", "#{cursor_flag}"), "1", "cursor restored after Ctrl-C")
    }

    func testFollowExitsByItselfWhenTheRunFinishes() throws {
        let tmux = Tmux(try T.require("tmux", install: "apt-get install tmux"))
        defer { tmux.kill() }
        let exe = try T.bonfireExecutable()
        let dir = T.tempDir("followend")
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try makeRun(dir, versions: 1...3)
        let cmd = "'\(exe)' status '\(dir.path)' --follow --interval 0.2; echo EXIT=$?; sleep 30"
        try tmux.callAny(["new-session", "-d", "-s", "g", "-x", "100", "-y", "50", cmd])
        XCTAssertTrue(T.waitUntil(20) { tmux.capture("g").contains("version    3") }, tmux.capture("g"))
        try run.append(MetricsRecord(time: Date().timeIntervalSince1970, role: "coordinator", version: 3, values: [MetricKey.runFinished: 1]))
        XCTAssertTrue(T.waitUntil(20) { tmux.capture("g").contains("EXIT=0") }, tmux.capture("g"))
        let screen = tmux.capture("g")
        XCTAssertTrue(screen.contains("run finished: stopped following") && screen.contains("finished"), screen)
        XCTAssertEqual(tmux.display("g", "#{cursor_flag}"), "1")
    }
}
