// `bonfire report`: a self-contained page (inline SVG, no scripts, no external URLs, every string escaped) built from
// a synthetic run, loaded by headless Chromium without console errors or network fetches, rendered to PNG by
// Scripts/render-report.sh; bad directories are explained like `bonfire status` does.
import BonfireCluster
import Foundation
import XCTest

final class MonitoringReportTests: XCTestCase {
    typealias T = MonitoringTestTools

    /// A run with learner curves, two actors, staleness, r/R (hacking in the second half), two eval tables and a
    /// hostile role name and run id.
    static func writeSyntheticRun(_ dir: URL) throws {
        var config = RunConfig()
        config.run.id = "synthetic-run"
        config.actors.count = 2
        config.eval.temperatures = [0.5, 1.0]
        let run = try RunDirectory.create(at: dir, config: config)
        let t0 = 1_764_000_000.0
        for v in 1...60 {
            let x = Double(v)
            let hack = v > 35
            try run.append(MetricsRecord(time: t0 + x, role: "learner", version: v, values: [
                MetricKey.policyLoss: 2 * exp(-x / 20) + 0.1, "train/reward_mean": 0.2 + 0.4 * (1 - exp(-x / 25)),
                "train/entropy": 1.5 - x / 100, MetricKey.meanLag: 0.3 + 0.1 * sin(x), MetricKey.dropped: x / 4,
                MetricKey.acceptedStale: x * 2, MetricKey.accepted: x * 16,
                MonitoringKey.verifierScoreMean: 0.3 + 0.006 * x, MonitoringKey.rewardMean: hack ? 0.5 - 0.008 * (x - 35) : 0.2 + 0.008 * x,
                MonitoringKey.pickVerifierScoreMean: 0.5 + 0.006 * x, MonitoringKey.pickRewardMean: hack ? 0.6 - 0.01 * (x - 35) : 0.3 + 0.008 * x,
            ]))
            for a in 0..<2 {
                try run.append(MetricsRecord(time: t0 + x, role: "actor-\(a)", version: v,
                                             values: [MetricKey.samplesPerSecond: 100 + 20 * Double(a) + 5 * sin(x / 3)]))
            }
            try run.append(MetricsRecord(time: t0 + x, role: "coordinator", version: v, values: [
                MetricKey.samplesPerSecond: 220, MetricKey.stepsPerSecond: 1 + 0.1 * cos(x), MetricKey.liveActors: 2,
                MonitoringKey.hackingAlarm: v == 42 ? 1 : 0]))
        }
        try run.append(MetricsRecord(time: t0 + 61, role: "actor-<script>alert(1)</script>", version: 60, values: [MetricKey.samplesPerSecond: 1]))
        for (v, q) in [(20, 0.0), (60, 0.1)] {
            try run.writeEval(EvalTable(version: v, time: t0 + Double(v), prompts: 64, rows: [0.5, 1.0].flatMap { t in
                [1, 2, 4, 8].map { n in
                    EvalTable.Row(temperature: t, n: n, passAtN: min(1, 0.1 + q + 0.08 * log2(Double(n)) * (t + 0.5)),
                                  boN: 0.1 + q + 0.05 * log2(Double(n)) * (1.5 - t))
                }
            }))
        }
        try "{\"time\": broken\n".data(using: .utf8).map { d in
            let h = try FileHandle(forWritingTo: run.metricsURL); h.seekToEndOfFile(); h.write(d); try h.close()
        }
    }

    func testPageIsSelfContainedEscapedAndHasEveryChart() throws {
        let dir = T.tempDir("report")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeSyntheticRun(dir)
        let out = try RunReport.write(runDirectory: dir)
        let html = try String(contentsOf: out, encoding: .utf8)
        XCTAssertFalse(html.contains("<script"), "no scripts, and the hostile role name is escaped")
        XCTAssertTrue(html.contains("&lt;script&gt;"))
        for banned in ["http://", "https://", "src=", "<link", "@import", "url("] {
            XCTAssertFalse(html.contains(banned), "page references something external: \(banned)")
        }
        XCTAssertGreaterThanOrEqual(html.components(separatedBy: "<svg").count - 1, 12)
        for part in ["Learning curves", "loss/policy", "pass@N vs N", "Bo-N accuracy vs temperature", "samples/s per actor",
                     "mean lag of accepted rollouts", "r vs R per policy version", "Resolved config", "synthetic-run",
                     "reward-hacking alarm raised at version(s) 42", "1 malformed line(s)", "&quot;temperatures&quot;"] {
            XCTAssertTrue(html.contains(part), "missing \(part)")
        }
        // An empty run still gives a page (no data panels), bad directories are explained.
        let empty = T.tempDir("report-empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        _ = try RunDirectory.create(at: empty, config: RunConfig())
        XCTAssertTrue(try RunReport.html(runDirectory: empty).contains("no data in this run"))
        let exe = try T.bonfireExecutable()
        let r = try T.run(exe, ["report", dir.appendingPathComponent("nope").path], timeout: 30)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("does not exist"), r.err)
        let ok = try T.run(exe, ["report", dir.path, "--output", dir.appendingPathComponent("r2.html").path, "--tensorboard"], timeout: 60)
        XCTAssertEqual(ok.status, 0, ok.err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r2.html").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("tensorboard/learner").path))
    }

    func testChromiumLoadsThePageWithoutErrorsAndRendersAPNG() throws {
        let chrome = try T.require("chromium", install: "apt-get install chromium")
        let dir = T.tempDir("report-chromium")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Self.writeSyntheticRun(dir)
        let page = try RunReport.write(runDirectory: dir)
        let profile = dir.appendingPathComponent("profile")
        let r = try T.run(chrome, ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)",
                                   "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0",
                                   "--dump-dom", "file://\(page.path)"], timeout: 90)
        XCTAssertEqual(r.status, 0, r.err.suffix(3000).description)
        XCTAssertTrue(r.out.contains("<h1>Bonfire run synthetic-run</h1>"), "DOM: \(r.out.prefix(500))")
        XCTAssertGreaterThanOrEqual(r.out.components(separatedBy: "<svg").count - 1, 12, "charts in the loaded DOM")
        let consoleErrors = r.err.split(separator: "\n").filter {
            $0.contains("CONSOLE") || $0.contains("Uncaught") || $0.contains("Failed to load resource") || $0.contains("net::ERR_")
        }
        XCTAssertTrue(consoleErrors.isEmpty, "console errors / fetches:\n\(consoleErrors.joined(separator: "\n"))")
        // The committed script renders it to PNG.
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/render-report.sh")
        let png = dir.appendingPathComponent("report.png")
        let s = try T.run("/bin/bash", [script.path, page.path, png.path, "1280", "2400"], timeout: 90)
        XCTAssertEqual(s.status, 0, s.out + s.err)
        let bytes = [UInt8]((try? Data(contentsOf: png)) ?? Data())
        XCTAssertEqual(Array(bytes.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG")
        XCTAssertGreaterThan(bytes.count, 20_000, "a real screenshot, not a blank page")
        if let keep = ProcessInfo.processInfo.environment["BONFIRE_KEEP_REPORT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try? FileManager.default.copyItem(at: png, to: URL(fileURLWithPath: keep))
        }
    }
}
