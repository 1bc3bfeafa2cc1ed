// StalenessGate decisions and counters, truncated importance weights.
import XCTest
import Foundation
import BonfireCluster

final class StalenessTests: XCTestCase {
    func testLagWithinLimitIsAcceptedBeyondIsDroppedAndCounted() {
        var g = StalenessGate(maxPolicyLag: 2)
        XCTAssertEqual(g.decide(behaviourVersion: 10, currentVersion: 10), .accept(lag: 0))
        XCTAssertEqual(g.decide(behaviourVersion: 8, currentVersion: 10), .accept(lag: 2))
        XCTAssertEqual(g.decide(behaviourVersion: 7, currentVersion: 10), .drop(lag: 3))
        XCTAssertEqual(g.decide(behaviourVersion: 11, currentVersion: 10), .drop(lag: -1))
        XCTAssertEqual(g.accepted, 2)
        XCTAssertEqual(g.dropped, 2)
        XCTAssertEqual(g.droppedFromFuture, 1)
        XCTAssertEqual(g.acceptedStale, 1)
        XCTAssertEqual(g.meanAcceptedLag, 1.0)
    }

    func testAcceptedRolloutsAreCountedPerLagAndDropsAreNot() {
        var g = StalenessGate(maxPolicyLag: 3)
        for (b, v) in [(10, 10), (9, 10), (9, 10), (7, 10), (6, 10), (11, 10), (Int.min / 2, 10), (20, 20)] {
            _ = g.decide(behaviourVersion: b, currentVersion: v)
        }
        XCTAssertEqual(g.acceptedByLag, [0: 2, 1: 2, 3: 1], "lag 4 (too stale), lag −1 and a hostile version are dropped, not counted")
        XCTAssertEqual(g.acceptedByLag.values.reduce(0, +), g.accepted)
        XCTAssertEqual(g.acceptedByLag.map { $0.key * $0.value }.reduce(0, +), g.lagSum)
        XCTAssertEqual(g.lagCountMetrics, ["staleness/lag_count/0": 2, "staleness/lag_count/1": 2, "staleness/lag_count/3": 1])
        XCTAssertEqual(StalenessGate(maxPolicyLag: 0).lagCountMetrics, [:], "nothing accepted: no keys")
        // The monitoring side reads these keys into an exact histogram (le 0, 1, 2, 4, …).
        var s = MonitoringState(runID: "g")
        s.ingest(role: "learner", version: 10, values: g.lagCountMetrics, time: 1)
        let h = s.snapshot.staleness
        XCTAssertEqual(h.count, 5)
        XCTAssertEqual(h.sum, 5)
    }

    /// The learner puts the histogram into its metrics: a real asynchronous run (two actor threads) writes
    /// `staleness/lag_count/<k>` to metrics.jsonl, the counts add up to the accepted rollouts, and the coordinator's
    /// Prometheus endpoint serves them as `bonfire_staleness_lag` buckets while the run is going.
    func testALocalRunReportsTheLagHistogramInMetricsAndPrometheus() throws {
        setenv("OPENBLAS_NUM_THREADS", "1", 1)
        let url = temporaryRunDir("lag-histogram")
        defer { try? FileManager.default.removeItem(at: url) }
        let port = freePorts(1)[0]
        let c = try RunConfig.load(sets: [
            "run.dir=\(url.path)", "learner.maxSteps=40", "learner.groupsPerStep=2", "learner.checkpointEvery=0",
            "algorithm.sftWarmupSteps=2", "model.layers=1", "model.dim=32", "sampling.groupSize=4",
            "sampling.maxNewTokens=8", "algorithm.trainN=2", "eval.everyVersions=0", "actors.count=2",
            "learner.schedule=async", "learner.maxPolicyLag=3", "liveness.heartbeatIntervalMs=100",
            "logging.periodSeconds=1", "liveness.peerGiveUpMs=20000", "liveness.livenessCount=20",
            "monitoring.prometheusPort=\(port)",
        ])
        let dir = try RunDirectory.create(at: url, config: c)
        final class Scrapes: @unchecked Sendable {
            let lock = NSLock(); var best = ""; var done = false
        }
        let scrapes = Scrapes()
        let scraper = Thread {
            while !scrapes.lock.withLock({ scrapes.done }) {
                if let r = MonitoringTestTools.get(port: port, "/metrics", timeout: 1), r.status == 200,
                   r.body.contains("bonfire_staleness_lag_count "), !r.body.contains("bonfire_staleness_lag_count 0\n") {
                    scrapes.lock.withLock { scrapes.best = r.body }
                }
                usleep(20_000)
            }
        }
        scraper.start()
        XCTAssertEqual(try InProcessJob.run(config: c, runDir: dir), 0)
        scrapes.lock.withLock { scrapes.done = true }

        let learner = metricsRecords(url).filter { $0.role == "learner" && $0.values[MetricKey.accepted] != nil }
        let last = try XCTUnwrap(learner.last, "learner metrics in metrics.jsonl")
        let counts = last.values.filter { $0.key.hasPrefix(MonitoringKey.lagCountPrefix) }
        XCTAssertFalse(counts.isEmpty, "staleness/lag_count/<k> in metrics.jsonl: \(last.values.keys.sorted())")
        XCTAssertEqual(counts.values.reduce(0, +), last.values[MetricKey.accepted], "the histogram counts every accepted rollout")
        for k in counts.keys {
            let lag = try XCTUnwrap(Int(k.dropFirst(MonitoringKey.lagCountPrefix.count)), k)
            XCTAssertTrue((0...3).contains(lag), "lag \(lag) within learner.maxPolicyLag")
        }
        XCTAssertNotNil(counts[MonitoringKey.lagCount(0)], "fresh rollouts counted at lag 0")
        let body = scrapes.lock.withLock { scrapes.best }
        XCTAssertTrue(body.contains("bonfire_staleness_lag_bucket{le=\"0\"} "), "a scrape during the run carries the histogram:\n\(body)")
        let bucket0 = body.split(separator: "\n").first { $0.hasPrefix("bonfire_staleness_lag_bucket{le=\"0\"} ") }
            .flatMap { Double($0.split(separator: " ").last!) } ?? 0
        XCTAssertGreaterThan(bucket0, 0, "lag-0 bucket filled from the exact counts")
    }

    func testZeroLagPolicyIsStrictlyOnPolicy() {
        var g = StalenessGate(RunConfig.LearnerSection())
        XCTAssertEqual(g.maxPolicyLag, 4)
        g = StalenessGate(maxPolicyLag: 0)
        XCTAssertTrue(g.decide(behaviourVersion: 5, currentVersion: 5).isAccepted)
        XCTAssertFalse(g.decide(behaviourVersion: 4, currentVersion: 5).isAccepted)
    }

    func testTruncatedImportanceWeight() {
        // ρ = min(ρ̄, exp(log π − log μ))
        XCTAssertEqual(truncatedImportanceWeight(logRatio: 0, clip: 1), 1, accuracy: 1e-15)
        XCTAssertEqual(truncatedImportanceWeight(logRatio: log(0.25), clip: 1), 0.25, accuracy: 1e-15)
        XCTAssertEqual(truncatedImportanceWeight(logRatio: log(3.0), clip: 2), 2)
        XCTAssertEqual(truncatedImportanceWeight(logRatio: log(1.5), clip: 2), 1.5, accuracy: 1e-12)
        XCTAssertEqual(StalenessGate.truncatedImportanceWeight(logRatio: 1e6, clip: 1), 1, "no overflow")
        XCTAssertEqual(truncatedImportanceWeight(logRatio: -1e6, clip: 1), 0)
    }
}
