import XCTest
import Foundation
import BonfireCluster
import BonfireMath
import BonfireWire

final class RunDirectoryTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-run-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    func testCreatesLayoutAndWritesResolvedConfig() throws {
        var config = RunConfig()
        config.run.id = "test-run"
        let dir = try RunDirectory.create(at: tmp, config: config)
        for sub in ["checkpoints", "eval", "logs"] {
            var isDir: ObjCBool = false
            XCTAssertTrue(FileManager.default.fileExists(atPath: tmp.appendingPathComponent(sub).path,
                                                         isDirectory: &isDir) && isDir.boolValue, sub)
        }
        XCTAssertEqual(try RunConfig.load(file: dir.configURL), config)
        XCTAssertTrue(RunDirectory.isRunDirectory(tmp))
        XCTAssertFalse(RunDirectory.isRunDirectory(tmp.appendingPathComponent("logs")))
    }

    func testMetricsLinesAreAppendedFlushedAndParseBack() throws {
        let dir = try RunDirectory.create(at: tmp, config: RunConfig())
        try dir.appendMetrics(role: "learner", version: 3, values: ["loss/policy": 0.5, "throughput/samples_per_s": 120],
                              time: Date(timeIntervalSince1970: 1000.25))
        try dir.appendMetrics(role: "coordinator", version: 3, values: ["loss/policy": .nan, "x/inf": .infinity],
                              time: Date(timeIntervalSince1970: 1001))
        // Visible to a reader immediately (no buffering), one JSON object per line.
        let text = try String(contentsOf: dir.metricsURL, encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertEqual(String(lines[0]),
                       #"{"time":1000.25,"role":"learner","version":3,"loss/policy":0.5,"throughput/samples_per_s":120}"#)
        for l in lines { XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(l.utf8))) }
        let (records, malformed) = try dir.readMetrics()
        XCTAssertEqual(malformed, 0)
        XCTAssertEqual(records[0].values["throughput/samples_per_s"], 120)
        XCTAssertTrue(records[1].values["loss/policy"]!.isNaN, "NaN survives the round trip")
        XCTAssertEqual(records[1].values["x/inf"], .infinity)
        XCTAssertEqual(records[1].role, "coordinator")

        // Re-creating (resume) keeps existing lines; a second writer appends after them.
        let again = try RunDirectory.create(at: tmp, config: RunConfig())
        try again.appendMetrics(role: "learner", version: 4, values: [:])
        XCTAssertEqual(try again.readMetrics().records.map(\.version), [3, 3, 4])
    }

    func testPartialLastLineIsCountedNotFatal() throws {
        let dir = try RunDirectory.create(at: tmp, config: RunConfig())
        try dir.appendMetrics(role: "learner", version: 1, values: ["loss/policy": 1])
        let h = try FileHandle(forWritingTo: dir.metricsURL)
        h.seekToEndOfFile()
        h.write(Data(#"{"time":5,"role":"lea"#.utf8))
        h.closeFile()
        let (records, malformed) = try dir.readMetrics()
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(malformed, 1)
    }

    func testConcurrentAppendsNeverInterleaveLines() throws {
        let dir = try RunDirectory.create(at: tmp, config: RunConfig())
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in 0..<200 {
                try! dir.appendMetrics(role: "actor-\(t)", version: i, values: ["k/\(i % 7)": Double(i)])
            }
        }
        let (records, malformed) = try dir.readMetrics()
        XCTAssertEqual(malformed, 0)
        XCTAssertEqual(records.count, 800)
    }

    func testLatestCheckpointPicksHighestVersionAndIgnoresTemporaries() throws {
        let dir = try RunDirectory.create(at: tmp, config: RunConfig())
        XCTAssertNil(dir.latestCheckpoint())
        for v in [25, 100, 50] { try Data([1]).write(to: dir.checkpointURL(version: v)) }
        try Data([1]).write(to: dir.checkpointsURL.appendingPathComponent("v000200.safetensors.tmp"))
        try Data([1]).write(to: dir.checkpointsURL.appendingPathComponent("notes.txt"))
        XCTAssertEqual(dir.checkpointURL(version: 25).lastPathComponent, "v000025.safetensors")
        XCTAssertEqual(dir.latestCheckpoint()?.version, 100)
        XCTAssertEqual(dir.latestCheckpoint()?.url.lastPathComponent, "v000100.safetensors")
        try Data([1]).write(to: dir.checkpointURL(version: 1_234_567))
        XCTAssertEqual(dir.latestCheckpoint()?.version, 1_234_567)
    }

    func testEvalTablesRoundTripAndLatestWins() throws {
        let dir = try RunDirectory.create(at: tmp, config: RunConfig())
        XCTAssertNil(try dir.latestEval())
        let t1 = EvalTable(version: 25, time: 1, prompts: 32, rows: [.init(temperature: 1, n: 1, passAtN: 0.2, boN: 0.2)])
        let t2 = EvalTable(version: 50, time: 2, prompts: 32, rows: [
            .init(temperature: 1, n: 1, passAtN: 0.3, boN: 0.3), .init(temperature: 1, n: 8, passAtN: 0.9, boN: 0.7),
        ])
        try dir.writeEval(t2)
        try dir.writeEval(t1)
        XCTAssertEqual(try dir.latestEval(), t2)
        XCTAssertTrue(t2.render().contains("0.900"))
    }

    func testOpeningSomethingElseIsAClearError() throws {
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        XCTAssertThrowsError(try RunDirectory.open(at: tmp)) { e in
            XCTAssertTrue("\(e)".contains("is not a run directory"), "\(e)")
        }
        XCTAssertThrowsError(try StatusReport.load(runDirectory: tmp.appendingPathComponent("nope"))) { e in
            XCTAssertTrue("\(e)".contains("is not a run directory"), "\(e)")
        }
    }
}

final class StatusReportTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-status-\(UUID().uuidString)")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    private func makeRun() throws -> RunDirectory {
        var config = RunConfig()
        config.run.id = "r42"
        config.actors.count = 3
        config.logging.periodSeconds = 1
        let dir = try RunDirectory.create(at: tmp, config: config)
        let t0 = 10_000.0
        try dir.append(MetricsRecord(time: t0, role: "learner", version: 1, values: [MetricKey.policyLoss: 2.0]))
        try dir.append(MetricsRecord(time: t0 + 2, role: "learner", version: 5, values: [MetricKey.policyLoss: 1.5]))
        try dir.append(MetricsRecord(time: t0 + 3, role: "coordinator", version: 5, values: [
            MetricKey.samplesPerSecond: 321.5, MetricKey.liveActors: 2, MetricKey.dropped: 7,
            MetricKey.accepted: 90, MetricKey.acceptedStale: 11, MetricKey.wireDropped: 0,
        ]))
        try dir.writeEval(EvalTable(version: 5, time: t0, prompts: 8,
                                    rows: [.init(temperature: 1, n: 4, passAtN: 0.75, boN: 0.5)]))
        // A whole (tiny) safetensors file: status skips truncated ones (MonitoringStatusTests).
        try SafeTensors.encode(tensors: [(name: "w", shape: [1], data: [0])], metadata: [:]).write(to: dir.checkpointURL(version: 4))
        return dir
    }

    func testSummarisesLatestValuesOfARunningRun() throws {
        _ = try makeRun()
        let s = try StatusReport.load(runDirectory: tmp, now: Date(timeIntervalSince1970: 10_005))
        XCTAssertEqual(s.state, .running)
        XCTAssertTrue(s.looksAlive)
        XCTAssertEqual(s.runID, "r42")
        XCTAssertEqual(s.latestVersion, 5)
        XCTAssertEqual(s.stepsPerSecond!, 2.0, accuracy: 1e-9, "(5 − 1) versions / 2 s from learner lines")
        XCTAssertEqual(s.samplesPerSecond, 321.5)
        XCTAssertEqual(s.liveActors, 2)
        XCTAssertEqual(s.configuredActors, 3)
        XCTAssertEqual(s.dropped, 7)
        XCTAssertEqual(s.acceptedStale, 11)
        XCTAssertEqual(s.lastLoss, 1.5)
        XCTAssertEqual(s.latestEval?.version, 5)
        XCTAssertEqual(s.latestCheckpoint?.version, 4)
        XCTAssertEqual(s.lastLineAgeSeconds!, 2, accuracy: 1e-6)
        let text = s.render()
        for part in ["r42", "running", "version    5", "321.5 samples/s", "2 live of 3", "dropped stale 7", "1.5000",
                     "pass@N", "0.750", "v4"] {
            XCTAssertTrue(text.contains(part), "missing '\(part)' in:\n\(text)")
        }
    }

    /// Issue 11: `wire drops 0` while the learner had dropped 60 000 (the latest line of any role was read). Each
    /// role counts its own drops; the report sums each role's latest counters, by reason, naming the roles.
    func testWireDropsAreSummedOverRolesByReasonNotReadFromTheLastLine() throws {
        let dir = try makeRun()
        let r = DropReason.tokenOutOfVocabulary.metricKey, m = DropReason.malformed.metricKey
        try dir.append(MetricsRecord(time: 10_003.1, role: "learner", version: 6, values: [MetricKey.wireDropped: 30_000, r: 30_000]))
        try dir.append(MetricsRecord(time: 10_003.2, role: "learner", version: 7, values: [MetricKey.wireDropped: 60_000, r: 60_000]))
        try dir.append(MetricsRecord(time: 10_003.3, role: "actor-1", version: 7, values: [MetricKey.wireDropped: 2, m: 2]))
        try dir.append(MetricsRecord(time: 10_003.4, role: "coordinator", version: 7, values: [MetricKey.wireDropped: 5, m: 5]))
        try dir.append(MetricsRecord(time: 10_003.5, role: "coordinator", version: 7, values: [MetricKey.liveActors: 2]))
        let s = try StatusReport.load(runDirectory: tmp, now: Date(timeIntervalSince1970: 10_005))
        XCTAssertEqual(s.wireDropped, 60_007, "learner 60 000 + actor-1 2 + coordinator 5")
        XCTAssertEqual(s.wireDropsByReason[DropReason.tokenOutOfVocabulary.rawValue], ["learner": 60_000])
        XCTAssertEqual(s.wireDropsByReason[DropReason.malformed.rawValue], ["actor-1": 2, "coordinator": 5])
        let text = s.render()
        for part in ["wire drops 60007", "drops      token_out_of_vocabulary 60000 (learner 60000)",
                     "malformed 7 (actor-1 2, coordinator 5)"] {
            XCTAssertTrue(text.contains(part), "missing '\(part)' in:\n\(text)")
        }
    }

    func testOldLastLineIsStalledAndFinishMarkerIsFinished() throws {
        let dir = try makeRun()
        let stalled = try StatusReport.load(runDirectory: tmp, now: Date(timeIntervalSince1970: 10_100))
        XCTAssertEqual(stalled.state, .stalled)
        XCTAssertFalse(stalled.looksAlive)
        XCTAssertTrue(stalled.render().contains("not running"))
        try dir.append(MetricsRecord(time: 10_004, role: "coordinator", version: 6,
                                     values: [MetricKey.runFinished: 1, MetricKey.stepsPerSecond: 3.25]))
        let done = try StatusReport.load(runDirectory: tmp, now: Date(timeIntervalSince1970: 10_100))
        XCTAssertEqual(done.state, .finished)
        XCTAssertEqual(done.stepsPerSecond, 3.25, "an explicit throughput key wins over the estimate")
        XCTAssertEqual(done.latestVersion, 6)
    }

    func testRunWithoutMetricsYet() throws {
        _ = try RunDirectory.create(at: tmp, config: RunConfig())
        let s = try StatusReport.load(runDirectory: tmp)
        XCTAssertEqual(s.state, .empty)
        XCTAssertNil(s.latestVersion)
        XCTAssertTrue(s.render().contains("no metrics yet"))
    }
}
