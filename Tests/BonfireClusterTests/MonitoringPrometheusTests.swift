// The Prometheus endpoint: the text renderer (escaping, histograms), `promtool check metrics` on a real scrape, a
// real Prometheus server scraping our server and answering through its HTTP API, a port in use, and hostile HTTP.
import BonfireCluster
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class MonitoringPrometheusTests: XCTestCase {
    typealias T = MonitoringTestTools

    /// A snapshot with every family filled, including hostile role names and non-finite values.
    static func richSnapshot(version: Int = 17) -> MonitoringSnapshot {
        var s = MonitoringState(runID: "run \"with\" quotes\\and\nnewline")
        s.ingest(role: "learner", version: version, values: [
            MetricKey.learnerStep: Double(version * 2), MetricKey.stepsPerSecond: 3.5, MetricKey.samplesPerSecond: 112,
            MetricKey.policyLoss: .nan, MetricKey.dropped: 4, MetricKey.accepted: 100, MetricKey.acceptedStale: 0,
            MonitoringKey.lagCount(0): 90, MonitoringKey.lagCount(1): 7, MonitoringKey.lagCount(3): 3,
            MonitoringKey.verifierScoreMean: 0.6, MonitoringKey.rewardMean: 0.4,
            MonitoringKey.pickVerifierScoreMean: 0.9, MonitoringKey.pickRewardMean: 0.5,
            "dropped/decode": 2, "dropped/wrong \"run\"": 1,
        ], time: 1_764_000_000)
        s.ingest(role: "actor-0", version: version, values: [MetricKey.samplesPerSecond: 60, MonitoringKey.actorDroppedTotal: 1], time: 1_764_000_000)
        s.ingest(role: "actor\"1\n\\", version: version, values: [MetricKey.samplesPerSecond: 5, "throughput/steps_per_s": .infinity], time: 1_764_000_000)
        s.ingest(role: "coordinator", version: version, values: [MetricKey.liveActors: 2, MetricKey.wireDropped: 0], time: 1_764_000_001)
        s.ingest(role: "learner", version: -1, values: [:], time: 0)            // rejected, counted
        s.ingest(eval: EvalTable(version: version - 1, time: 1, prompts: 64, rows: [
            .init(temperature: 1, n: 1, passAtN: 0.2, boN: 0.2), .init(temperature: 1, n: 8, passAtN: 0.45, boN: 0.3),
            .init(temperature: 0.5, n: 8, passAtN: 0.35, boN: 0.28)]))
        s.setActors(live: 2, dead: 1)
        s.setHackingAlarm(true)
        return s.snapshot
    }

    func testRendererEscapesLabelsAndWritesCumulativeHistogramSeries() {
        let text = PrometheusText.render(Self.richSnapshot())
        XCTAssertTrue(text.contains("bonfire_run_info{run_id=\"run \\\"with\\\" quotes\\\\and\\nnewline\"} 1\n"), text)
        XCTAssertTrue(text.contains("# HELP bonfire_policy_version Latest policy version published by the learner.\n# TYPE bonfire_policy_version gauge\nbonfire_policy_version 17\n"))
        XCTAssertTrue(text.contains("bonfire_staleness_lag_bucket{le=\"0\"} 90\n"))
        XCTAssertTrue(text.contains("bonfire_staleness_lag_bucket{le=\"1\"} 97\n"))
        XCTAssertTrue(text.contains("bonfire_staleness_lag_bucket{le=\"2\"} 97\n"))
        XCTAssertTrue(text.contains("bonfire_staleness_lag_bucket{le=\"4\"} 100\n"))
        XCTAssertTrue(text.contains("bonfire_staleness_lag_bucket{le=\"+Inf\"} 100\nbonfire_staleness_lag_sum 16\nbonfire_staleness_lag_count 100\n"))
        XCTAssertTrue(text.contains("bonfire_loss NaN\n"))
        XCTAssertTrue(text.contains("bonfire_samples_per_second{role=\"actor\\\"1\\n\\\\\",kind=\"actor\"} 5\n"), text)
        XCTAssertTrue(text.contains("bonfire_dropped_total{reason=\"wrong \\\"run\\\"\"} 1\n"))
        XCTAssertTrue(text.contains("bonfire_eval_pass_at_n{n=\"8\",temperature=\"0.5\"} 0.35\n"))
        XCTAssertTrue(text.contains("bonfire_eval_best_of_n{n=\"1\",temperature=\"1\"} 0.2\n"))
        XCTAssertTrue(text.contains("bonfire_actors{state=\"dead\"} 1\n"))
        XCTAssertTrue(text.contains("bonfire_alarm_reward_hacking 1\n"))
        XCTAssertTrue(text.contains("bonfire_monitoring_records_total{outcome=\"rejected\"} 1\n"))
        // Each family is declared exactly once, before its samples.
        let types = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
        XCTAssertEqual(types.count, Set(types).count)
        XCTAssertEqual(PrometheusText.format(-.infinity), "-Inf")
        XCTAssertEqual(PrometheusText.format(0.25), "0.25")
        XCTAssertFalse(PrometheusText.isValidName("9lives"))
        XCTAssertFalse(PrometheusText.isValidName("a-b"))
        XCTAssertTrue(PrometheusText.isValidName("bonfire_x:y"))
        // Empty snapshot renders too (the coordinator serves before any metrics arrive).
        XCTAssertTrue(PrometheusText.render(MonitoringSnapshot()).contains("bonfire_policy_version 0\n"))
    }

    func testHistogramFromTheCountersEveryLearnerWritesToday() {
        var s = MonitoringState()
        s.ingest(role: "learner", version: 5, values: [MetricKey.accepted: 10, MetricKey.acceptedStale: 4, MetricKey.meanLag: 0.5], time: 1)
        XCTAssertEqual(s.snapshot.staleness.cumulativeCounts.first, 6)
        XCTAssertEqual(s.snapshot.staleness.count, 10)
        XCTAssertEqual(s.snapshot.staleness.sum, 5)
        // Hostile counters: negative, NaN, accepted_stale > accepted.
        s.ingest(role: "learner", version: 6, values: [MetricKey.accepted: 3, MetricKey.acceptedStale: 99, MetricKey.meanLag: .nan], time: 2)
        XCTAssertEqual(s.snapshot.staleness.cumulativeCounts.first, 0)
        XCTAssertEqual(s.snapshot.staleness.count, 3)
        s.ingest(role: "learner", version: 7, values: [MetricKey.accepted: -1], time: 3)
        XCTAssertEqual(s.snapshot.staleness.count, 3, "negative counts ignored")
        s.ingest(role: "learner", version: Int.max, values: [:], time: 4)
        s.ingest(role: "learner", version: 8, values: [:], time: .nan)
        XCTAssertEqual(s.snapshot.rejected, 2)
        XCTAssertEqual(s.snapshot.policyVersion, 7)
    }

    func promtool() throws -> String { try T.require("promtool", install: "apt-get install prometheus") }
    func prometheusBinary() throws -> String { try T.require("prometheus", install: "apt-get install prometheus") }

    func testPromtoolAcceptsAScrapeOfTheServer() throws {
        let tool = try promtool()
        let server = try PrometheusServer(port: 0)
        server.update(Self.richSnapshot())
        server.start()
        defer { server.stop() }
        let r = try XCTUnwrap(T.get(port: server.port, "/metrics"))
        XCTAssertEqual(r.status, 200)
        let dir = T.tempDir("promtool")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("scrape.txt")
        try r.body.write(to: file, atomically: true, encoding: .utf8)
        let check = try T.run("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", tool, file.path], timeout: 30)
        XCTAssertEqual(check.status, 0, "promtool check metrics rejected the scrape:\n\(check.out)\(check.err)\n---\n\(r.body)")
        // promtool prints lint problems (naming conventions) without failing; we want none.
        XCTAssertEqual((check.out + check.err).trimmingCharacters(in: .whitespacesAndNewlines), "", "promtool lint output")
        // A broken exposition does fail promtool (the check can fail).
        try "bonfire_x{le=\"1\" 1\n".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertNotEqual(try T.run("/bin/sh", ["-c", "\"$0\" check metrics < \"$1\"", tool, file.path], timeout: 30).status, 0)
    }

    func testPortInUseIsAnErrorNamingThePortAndTheKey() throws {
        let first = try PrometheusServer(port: 0)
        defer { first.stop() }
        XCTAssertThrowsError(try PrometheusServer(port: first.port)) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("port \(first.port)") && m.contains("monitoring.prometheusPort") && m.contains("in use"), m)
        }
        XCTAssertThrowsError(try PrometheusServer(port: 70000)) { XCTAssertTrue("\($0)".contains("monitoring.prometheusPort")) }
        XCTAssertThrowsError(try PrometheusServer(port: -1))
        XCTAssertThrowsError(try PrometheusServer(host: "not an address", port: 0)) { XCTAssertTrue("\($0)".contains("monitoring.prometheusHost")) }
        XCTAssertEqual(MonitoringSection().prometheusPort, 0, "off by default")
        XCTAssertEqual(MonitoringSection().prometheusHost, "127.0.0.1", "loopback by default")
        var bad = MonitoringSection(); bad.prometheusPort = 65536; bad.hackingWindow = 1; bad.hackingMinRise = .nan
        XCTAssertEqual(bad.problems().count, 3, "\(bad.problems())")
    }

    /// Through the real executable: `bonfire local` used to restart the failing coordinator forever on a busy port;
    /// both `local` and `train` now stop before any role starts, naming the port and the key.
    func testBusyPortStopsLocalAndTrainAtOnceNamingThePortAndTheKey() throws {
        let exe = try T.bonfireExecutable()
        let busy = try PrometheusServer(port: 0)
        defer { busy.stop() }
        for command in ["local", "train"] {
            let dir = T.tempDir("busyport-\(command)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let r = try T.run(exe, [command, "--set", "run.dir=\(dir.path)", "--set", "monitoring.prometheusPort=\(busy.port)",
                                    "--set", "learner.maxSteps=2", "--set", "algorithm.sftWarmupSteps=1"], timeout: 60)
            XCTAssertFalse(r.timedOut, "\(command) kept going on a busy port:\n\(r.out.suffix(3000))")
            XCTAssertEqual(r.status, 1, "\(command): \(r.err)")
            XCTAssertTrue(r.err.contains("port \(busy.port)") && r.err.contains("monitoring.prometheusPort") && r.err.contains("in use"),
                          "\(command): \(r.err)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("checkpoints").path),
                           "\(command): no role ran")
        }
    }

    func testHostileRequestsNeverBreakTheServer() throws {
        let server = try PrometheusServer(port: 0)
        server.requestTimeout = 0.5
        server.update(Self.richSnapshot())
        server.start()
        defer { server.stop() }
        let p = server.port
        func status(_ raw: [UInt8]) -> String { String((T.exchange(port: p, raw, timeout: 5) ?? "").prefix(12)) }
        XCTAssertEqual(status(Array("GET /nope HTTP/1.1\r\n\r\n".utf8)), "HTTP/1.1 404")
        XCTAssertEqual(status(Array("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".utf8)), "HTTP/1.1 405")
        XCTAssertEqual(status(Array("garbage\r\n\r\n".utf8)), "HTTP/1.1 400")
        XCTAssertEqual(status(Array("GET /metrics\r\n\r\n".utf8)), "HTTP/1.1 400")          // HTTP/0.9 style
        XCTAssertEqual(status((0..<2000).map { _ in UInt8.random(in: 0...255) } + [13, 10, 13, 10]).prefix(9), "HTTP/1.1 ")
        XCTAssertEqual(status(Array(("GET /metrics HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 100_000) + "\r\n\r\n").utf8)),
                       "HTTP/1.1 431")
        XCTAssertEqual(status(Array("GET /metrics?x=1 HTTP/1.0\n\n".utf8)), "HTTP/1.1 200")  // bare LF, query string
        XCTAssertTrue((T.exchange(port: p, Array("HEAD /metrics HTTP/1.1\r\n\r\n".utf8)) ?? "").hasSuffix("\r\n\r\n"), "HEAD has no body")
        XCTAssertEqual(status([]), "")                                                       // connect and close
        // Slowloris: a partial head, never finished; the server closes it after requestTimeout.
        let slow = T.connect(port: p, timeout: 5)
        XCTAssertGreaterThanOrEqual(slow, 0)
        _ = T.sendAll(slow, Array("GET /metrics HTTP/1.1\r\nX-A: ".utf8))
        let t0 = Date()
        let got = T.readAll(slow)
        close(slow)
        XCTAssertTrue(got.isEmpty, "slow client got \(got.count) bytes")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 4, "closed after the request timeout, not the client's")
        // More idle connections than maxConnections: the extra ones are refused, then service resumes.
        let idle = (0..<(server.maxConnections + 4)).map { _ in T.connect(port: p, timeout: 5) }
        usleep(200_000)
        idle.forEach { if $0 >= 0 { close($0) } }
        XCTAssertTrue(T.waitUntil(5) { T.get(port: p, "/metrics")?.status == 200 }, "server still serves after hostile clients")
        let o = server.outcomes
        XCTAssertGreaterThanOrEqual(o["timeout", default: 0], 1, "\(o)")
        XCTAssertGreaterThanOrEqual(o["400", default: 0], 2, "\(o)")
        XCTAssertGreaterThanOrEqual(o["refused", default: 0], 1, "\(o)")
    }

    func testRealPrometheusScrapesTheEndpointAndAnswersQueries() throws {
        let prom = try prometheusBinary()
        let server = try PrometheusServer(port: 0)
        server.update(Self.richSnapshot(version: 17))
        server.start()
        defer { server.stop() }
        let dir = T.tempDir("prometheus")
        defer { try? FileManager.default.removeItem(at: dir) }
        let promPort = freePorts(1)[0]
        let config = dir.appendingPathComponent("prometheus.yml")
        try """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        scrape_configs:
          - job_name: bonfire
            static_configs:
              - targets: ["127.0.0.1:\(server.port)"]
        """.write(to: config, atomically: true, encoding: .utf8)
        let p = try T.Background(prom, ["--config.file=\(config.path)", "--storage.tsdb.path=\(dir.appendingPathComponent("data").path)",
                                        "--web.listen-address=127.0.0.1:\(promPort)", "--log.level=warn"],
                                 log: dir.appendingPathComponent("prometheus.log"))
        defer { p.stop() }
        func query(_ q: String) -> [[String: Any]]? {
            let enc = q.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? q
            guard let r = T.get(port: promPort, "/api/v1/query?query=\(enc)"), r.status == 200,
                  let obj = try? JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any],
                  obj["status"] as? String == "success",
                  let data = obj["data"] as? [String: Any] else { return nil }
            return data["result"] as? [[String: Any]]
        }
        func value(_ q: String) -> String? { (query(q)?.first?["value"] as? [Any])?.last as? String }
        XCTAssertTrue(T.waitUntil(45) { value("bonfire_policy_version") == "17" },
                      "Prometheus never returned bonfire_policy_version 17\n\(p.log.suffix(3000))")
        XCTAssertEqual(value("up{job=\"bonfire\"}"), "1")
        XCTAssertEqual(value("bonfire_eval_pass_at_n{n=\"8\",temperature=\"1\"}"), "0.45")
        XCTAssertEqual(value("histogram_quantile(0.5, bonfire_staleness_lag_bucket)"), "0")   // 90 of 100 at lag 0
        XCTAssertEqual(value("bonfire_actors{state=\"dead\"}"), "1")
        XCTAssertEqual(query("bonfire_samples_per_second")?.count, 3)
        // The server reads the newest snapshot on every scrape.
        server.update(Self.richSnapshot(version: 18))
        XCTAssertTrue(T.waitUntil(20) { value("bonfire_policy_version") == "18" }, "no newer scrape\n\(p.log.suffix(2000))")
        p.stop()
        XCTAssertFalse(p.process.isRunning)
    }
}
