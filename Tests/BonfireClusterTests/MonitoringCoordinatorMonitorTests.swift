// CoordinatorMonitor, the coordinator's one entry point: metrics flow to TensorBoard files, the Prometheus endpoint
// and the reward-hacking alarm (logged and returned as alarm/reward_hacking); bad config is refused by key.
import BonfireCluster
import BonfireWire
import Foundation
import XCTest

final class MonitoringCoordinatorMonitorTests: XCTestCase {
    typealias T = MonitoringTestTools

    final class Log { var lines: [String] = [] }

    func testMetricsReachTensorBoardPrometheusAndTheAlarm() throws {
        let dir = T.tempDir("monitor")
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = MonitoringSection()
        config.prometheusPort = freePorts(1)[0]
        let log = Log()
        let monitor = try CoordinatorMonitor(config, runDirectory: dir, runID: "m1", log: { log.lines.append($0) })
        defer { monitor.close() }
        // A port in use names the key.
        XCTAssertThrowsError(try CoordinatorMonitor(config, runDirectory: dir, runID: "m2", log: { _ in })) {
            XCTAssertTrue("\($0)".contains("monitoring.prometheusPort") && "\($0)".contains("\(config.prometheusPort)"), "\($0)")
        }
        var alarmLines: [[String: Double]] = []
        for v in 1...40 {
            let x = Double(v)
            let values: [String: Double] = [
                MetricKey.policyLoss: 1 / x, MetricKey.learnerStep: x,
                MonitoringKey.verifierScoreMean: 0.3 + 0.01 * x,
                MonitoringKey.rewardMean: v <= 20 ? 0.2 + 0.01 * x : 0.4 - 0.01 * (x - 20)]
            let extra = monitor.metrics(role: "learner", version: v, values: values)
            if !extra.isEmpty { alarmLines.append(extra) }
            monitor.metrics(role: "actor-0", version: v, values: [MetricKey.samplesPerSecond: 50])
        }
        monitor.eval(EvalTable(version: 40, time: 1, prompts: 8, rows: [.init(temperature: 1, n: 4, passAtN: 0.5, boN: 0.25)]))
        monitor.actors(live: 1, dead: 1)
        XCTAssertEqual(alarmLines, [[MonitoringKey.hackingAlarm: 1]])
        XCTAssertTrue(log.lines.contains { $0.contains("WARNING reward hacking suspected") }, log.lines.joined(separator: "\n"))

        let scrape = try XCTUnwrap(T.get(port: config.prometheusPort, "/metrics"))
        for part in ["bonfire_policy_version 40", "bonfire_alarm_reward_hacking 1", "bonfire_actors{state=\"dead\"} 1",
                     "bonfire_eval_best_of_n{n=\"4\",temperature=\"1\"} 0.25", "bonfire_run_info{run_id=\"m1\"} 1"] {
            XCTAssertTrue(scrape.body.contains(part), "missing \(part)")
        }
        let learnerFile = try XCTUnwrap(monitor.tensorboard?.fileURL(role: "learner"))
        let (events, bad, stop) = TensorBoardEvent.events(inFile: [UInt8](try Data(contentsOf: learnerFile)))
        XCTAssertEqual(events.count, 41)
        XCTAssertEqual(bad, 0)
        XCTAssertEqual(stop, .clean)
        XCTAssertNotNil(monitor.tensorboard?.fileURL(role: "eval"))
        XCTAssertNotNil(monitor.tensorboard?.fileURL(role: "coordinator"), "the alarm is in TensorBoard too")

        var bad2 = MonitoringSection(); bad2.hackingWindow = 0
        XCTAssertThrowsError(try CoordinatorMonitor(bad2, runDirectory: dir, runID: "x", log: { _ in })) {
            XCTAssertTrue("\($0)".contains("monitoring.hackingWindow"))
        }
    }

    func testDefaultsServeNothingAndStillWriteTensorBoard() throws {
        let dir = T.tempDir("monitor-default")
        defer { try? FileManager.default.removeItem(at: dir) }
        let monitor = try CoordinatorMonitor(MonitoringSection(), runDirectory: dir, runID: "d", log: { _ in })
        XCTAssertNil(monitor.prometheus)
        monitor.metrics(role: "learner", version: 1, values: ["loss/policy": 1])
        monitor.metrics(role: "learner", version: Int.max, values: ["loss/policy": .nan])   // hostile: no trap
        XCTAssertNotNil(monitor.tensorboard?.fileURL(role: "learner"))
        XCTAssertEqual(monitor.state.snapshot.rejected, 1)
        monitor.close()
    }
}
