// TensorBoardWriter against the real TensorBoard (PyPI `tensorboard`, installed by Scripts/install-deps.sh): its
// event reader gets back every scalar with its step and value, a truncated final record (a killed role) does not
// break it, and `tensorboard --logdir` serves the run's tags over HTTP.
import BonfireCluster
import BonfireWire
import Foundation
import XCTest

final class MonitoringTensorBoardTests: XCTestCase {
    typealias T = MonitoringTestTools

    /// Reads every scalar of every run under a logdir with TensorBoard's own EventAccumulator; prints JSON
    /// {run: {tag: [[step, value], ...]}} (non-finite values as "nan", "inf", "-inf").
    static let readerScript = """
    import json, math, os, sys
    from tensorboard.backend.event_processing import event_accumulator as ea
    root = sys.argv[1]
    out = {}
    for run in sorted(os.listdir(root)):
        acc = ea.EventAccumulator(os.path.join(root, run), size_guidance={ea.SCALARS: 0})
        acc.Reload()
        out[run] = {}
        for tag in acc.Tags()["scalars"]:
            out[run][tag] = [[e.step, e.value if math.isfinite(e.value) else str(e.value)] for e in acc.Scalars(tag)]
    print(json.dumps(out))
    """

    func python() throws -> String { try T.require("python3", install: "a Python 3 with `pip install tensorboard`") }

    func readBack(_ logdir: URL) throws -> [String: [String: [[Double?]]]] {
        let script = logdir.deletingLastPathComponent().appendingPathComponent("read_tb.py")
        try Self.readerScript.write(to: script, atomically: true, encoding: .utf8)
        let r = try T.run(try python(), [script.path, logdir.path], timeout: 120)
        XCTAssertEqual(r.status, 0, "TensorBoard reader failed (is `pip install tensorboard` done?):\n\(r.err.suffix(3000))")
        guard let obj = try JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: [String: [[Any]]]] else {
            XCTFail("reader printed no JSON: \(r.out.prefix(500)) \(r.err.suffix(2000))"); return [:]
        }
        return obj.mapValues { $0.mapValues { $0.map { $0.map { x -> Double? in
            if let s = x as? String { return s == "inf" ? .infinity : s == "-inf" ? -.infinity : s == "nan" ? .nan : nil }
            return (x as? NSNumber)?.doubleValue
        } } } }
    }

    func testTensorBoardReadsBackEveryScalarWithStepAndValueEvenAfterATruncatedRecord() throws {
        let run = T.tempDir("tb")
        defer { try? FileManager.default.removeItem(at: run) }
        let w = TensorBoardWriter(runDirectory: run, host: "testhost")
        var expected: [String: [String: [(Int, Double)]]] = [:]
        func rec(_ role: String, _ step: Int, _ values: [String: Double]) throws {
            try w.record(role: role, step: step, values: values, time: Date(timeIntervalSince1970: 1_764_000_000 + Double(step)))
            for (k, v) in values { expected[role, default: [:]][k, default: []].append((step, v)) }
        }
        for v in 1...30 {
            try rec("learner", v, ["loss/policy": 1.0 / Double(v), "train/reward_mean": Double(v) * 0.01,
                                   MetricKey.learnerStep: Double(v)])
            if v % 3 == 0 { try rec("actor-0", v, ["throughput/samples_per_s": 100 + Double(v), "actor/samples_total": Double(v * 64)]) }
        }
        try rec("coordinator", 30, ["cluster/live_actors": 2, "eval/pass@8": 0])   // zero values must survive
        try rec("learner", 31, ["loss/nan": .nan, "huge": 1e300])                    // stored as float32: NaN, +inf
        let table = EvalTable(version: 30, time: 1_764_000_100, prompts: 64, rows: [
            .init(temperature: 1, n: 1, passAtN: 0.25, boN: 0.25), .init(temperature: 1, n: 8, passAtN: 0.5, boN: 0.375),
            .init(temperature: 0.5, n: 8, passAtN: 0.4, boN: 0.3)])
        try w.record(eval: table)
        // Hostile role names stay inside tensorboard/.
        try w.record(role: "../../escape", step: 1, values: ["x": 1])
        try w.record(role: "", step: 1, values: ["x": 2])
        XCTAssertFalse(FileManager.default.fileExists(atPath: run.deletingLastPathComponent().appendingPathComponent("escape").path))
        let learnerFile = try XCTUnwrap(w.fileURL(role: "learner"))
        XCTAssertTrue(learnerFile.lastPathComponent.hasPrefix("events.out.tfevents.1764000001.testhost"), learnerFile.path)
        w.close()

        // A role killed mid-write: half of one more record at the end of the learner's file.
        let extra = TensorBoardEvent(wallTime: 2e9, step: 99, what: .scalars([.init(tag: "loss/policy", value: 9)])).framed()
        let h = try FileHandle(forWritingTo: learnerFile)
        h.seekToEndOfFile(); h.write(Data(extra.prefix(extra.count / 2))); try h.close()
        let (ours, _, stop) = TensorBoardEvent.events(inFile: Array(try Data(contentsOf: learnerFile)))
        XCTAssertEqual(stop, .truncated(bytes: extra.count / 2))
        XCTAssertEqual(ours.count, 1 + 31)

        let got = try readBack(run.appendingPathComponent("tensorboard"))
        XCTAssertEqual(Set(got.keys), ["learner", "actor-0", "coordinator", "eval", ".._.._escape", "_"])
        for (role, tags) in expected {
            for (tag, points) in tags {
                let back = got[role]?[tag] ?? []
                XCTAssertEqual(back.count, points.count, "\(role) \(tag)")
                for (p, b) in zip(points, back) {
                    XCTAssertEqual(b[0], Double(p.0), "\(role) \(tag) step")
                    if p.1.isNaN { XCTAssertTrue(b[1]?.isNaN == true, "\(role) \(tag) NaN") }
                    else { XCTAssertEqual(b[1].map { Float($0) }, Float(p.1), "\(role) \(tag) value at step \(p.0) (float32)") }
                }
            }
        }
        XCTAssertEqual(got["learner"]?["loss/policy"]?.count, 30, "the truncated record is not read")
        XCTAssertEqual(got["eval"]?["eval/T1/bo8"]?.first?[1], 0.375)
        XCTAssertEqual(got["eval"]?["eval/T0.5/pass@8"]?.first?[0], 30)
    }

    func testExportConvertsMetricsJSONLAndEvalTablesSkippingCorruptLines() throws {
        let run = T.tempDir("tbexport")
        defer { try? FileManager.default.removeItem(at: run) }
        let dir = try RunDirectory.create(at: run, config: RunConfig())
        for v in 0..<5 { try dir.appendMetrics(role: "learner", version: v, values: ["loss/policy": Double(v)]) }
        let h = try FileHandle(forWritingTo: dir.metricsURL)
        h.seekToEndOfFile(); h.write(Data("{not json\n{\"time\": 1}\n".utf8)); try h.close()
        try dir.writeEval(EvalTable(version: 4, time: 1, prompts: 8, rows: [.init(temperature: 1, n: 4, passAtN: 0.5, boN: 0.25)]))
        let (n, malformed) = try TensorBoardWriter.export(runDirectory: run)
        XCTAssertEqual(n, 6)
        XCTAssertEqual(malformed, 2)
        let got = try readBack(run.appendingPathComponent("tensorboard"))
        XCTAssertEqual(got["learner"]?["loss/policy"]?.map { $0[0]! }, [0, 1, 2, 3, 4])
        XCTAssertEqual(got["eval"]?["eval/T1/pass@4"]?.first?[1], 0.5)
        XCTAssertThrowsError(try TensorBoardWriter.export(runDirectory: run.appendingPathComponent("missing")))
    }

    func testTensorBoardServerLoadsTheRun() throws {
        let run = T.tempDir("tbserve")
        defer { try? FileManager.default.removeItem(at: run) }
        let w = TensorBoardWriter(runDirectory: run)
        for v in 1...5 { try w.record(role: "learner", step: v, values: ["loss/policy": Double(v)], time: Date()) }
        try w.record(role: "actor-1", step: 5, values: ["throughput/samples_per_s": 10], time: Date())
        w.close()
        let port = freePorts(1)[0]
        let server = try T.Background(try python(), ["-m", "tensorboard.main", "--logdir", run.appendingPathComponent("tensorboard").path,
                                                     "--host", "127.0.0.1", "--port", String(port), "--reload_interval", "1"],
                                      log: run.appendingPathComponent("tensorboard.log"))
        defer { server.stop() }
        var body = ""
        let ok = T.waitUntil(60) {
            guard let r = T.get(port: port, "/data/plugin/scalars/tags"), r.status == 200 else { return false }
            body = r.body
            return body.contains("learner") && body.contains("actor-1") && body.contains("loss/policy")
        }
        XCTAssertTrue(ok, "tensorboard did not serve the run's tags within 60 s; last body: \(body.prefix(500))\nlog:\n\(server.log.suffix(3000))")
        let tags = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: [String: Any]]
        XCTAssertNotNil(tags?["learner"]?["loss/policy"])
        XCTAssertNotNil(tags?["actor-1"]?["throughput/samples_per_s"])
        if let r = T.get(port: port, "/data/plugin/scalars/scalars?run=learner&tag=loss%2Fpolicy") {
            XCTAssertEqual(r.status, 200)
            let points = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [[Double]]
            XCTAssertEqual(points?.map { $0[1] }, [1, 2, 3, 4, 5])
            XCTAssertEqual(points?.map { $0[2] }, [1, 2, 3, 4, 5])
        } else { XCTFail("no scalars response") }
        server.stop()
        XCTAssertFalse(server.process.isRunning)
    }
}
