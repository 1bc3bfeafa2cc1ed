// Summary of a running or finished run, read only from its run directory (config.json, metrics.jsonl,
// checkpoints/, eval/): what `bonfire status <run-dir>` prints.
//
// Each figure is the latest value of its metric key in metrics.jsonl (see MetricKey). Steps/s falls back to
// (last − first learner version) / (last − first learner time) when no role wrote throughput/steps_per_s.
// A run "looks alive" when it has not written run/finished and its last line is younger than
// max(10 s, 3 × logging.periodSeconds).

import Foundation

package struct StatusReport: Sendable {
    package enum State: String, Sendable { case running, finished, stalled, empty }

    package var runDirectory: String
    package var runID: String
    package var algorithm: String
    package var task: String
    package var maxSteps: Int
    package var metricLines: Int
    package var malformedLines: Int
    package var latestVersion: Int?
    package var stepsPerSecond: Double?
    package var samplesPerSecond: Double?
    package var liveActors: Int?
    package var configuredActors: Int
    package var accepted: Double?
    package var dropped: Double?
    package var acceptedStale: Double?
    package var wireDropped: Double?
    package var lastLoss: Double?
    /// Seconds since the last metrics line was written (by its own `time` field).
    package var lastLineAgeSeconds: Double?
    package var state: State
    package var latestEval: EvalTable?
    package var latestCheckpoint: CheckpointRef?

    package var looksAlive: Bool { state == .running }

    /// Reads the run directory at `url`; throws a ConfigError saying so when it is not a run directory.
    package static func load(runDirectory url: URL, now: Date = Date()) throws -> StatusReport {
        let dir = try RunDirectory.open(at: url)
        var config = RunConfig()
        if FileManager.default.fileExists(atPath: dir.configURL.path) {
            do { config = try RunConfig.load(file: dir.configURL) } catch let e as ConfigError {
                throw ConfigError("\(dir.configURL.path) is not a valid resolved config: \(e.message)")
            }
        }
        let (records, malformed) = try dir.readMetrics()

        func latest(_ key: String) -> Double? {
            records.last(where: { $0.values[key] != nil })?.values[key]
        }
        var stepsPerSecond = latest(MetricKey.stepsPerSecond)
        let learnerLines = records.filter { $0.role == "learner" }
        if stepsPerSecond == nil, let a = learnerLines.first, let b = learnerLines.last, b.time > a.time {
            stepsPerSecond = Double(b.version - a.version) / (b.time - a.time)
        }
        let age = records.map(\.time).max().map { now.timeIntervalSince1970 - $0 }
        let finished = records.contains { $0.values[MetricKey.runFinished] != nil }
        let state: State
        if records.isEmpty { state = .empty }
        else if finished { state = .finished }
        else if let age, age <= max(10, 3 * config.logging.periodSeconds) { state = .running }
        else { state = .stalled }

        return StatusReport(
            runDirectory: url.path,
            runID: config.run.id.isEmpty ? "(not recorded)" : config.run.id,
            algorithm: config.algorithm.name.rawValue, task: config.task.name.rawValue, maxSteps: config.learner.maxSteps,
            metricLines: records.count, malformedLines: malformed,
            latestVersion: records.map(\.version).max(),
            stepsPerSecond: stepsPerSecond, samplesPerSecond: latest(MetricKey.samplesPerSecond),
            liveActors: latest(MetricKey.liveActors).map { Int($0) }, configuredActors: config.actors.count,
            accepted: latest(MetricKey.accepted), dropped: latest(MetricKey.dropped),
            acceptedStale: latest(MetricKey.acceptedStale), wireDropped: latest(MetricKey.wireDropped),
            lastLoss: latest(MetricKey.policyLoss) ?? latest(MetricKey.totalLoss),
            lastLineAgeSeconds: age, state: state,
            latestEval: try? dir.latestEval(), latestCheckpoint: dir.latestCheckpoint())
    }

    /// Human-readable summary, one fact per line.
    package func render() -> String {
        func f(_ x: Double?, _ fmt: String = "%.2f") -> String { x.map { String(format: fmt, $0) } ?? "–" }
        func i(_ x: Double?) -> String { x.map { String(Int($0)) } ?? "–" }
        var lines: [String] = []
        let stateText: String
        switch state {
        case .running: stateText = "running (last line \(f(lastLineAgeSeconds, "%.1f")) s ago)"
        case .finished: stateText = "finished"
        case .stalled: stateText = "not running or stalled (last line \(f(lastLineAgeSeconds, "%.0f")) s ago, no run/finished)"
        case .empty: stateText = "no metrics yet (metrics.jsonl empty or missing)"
        }
        lines.append("run        \(runDirectory)  id \(runID)")
        lines.append("state      \(stateText)")
        lines.append("job        \(algorithm) on \(task), maxSteps \(maxSteps)")
        lines.append("version    \(latestVersion.map(String.init) ?? "–")")
        lines.append("throughput \(f(stepsPerSecond)) steps/s, \(f(samplesPerSecond, "%.1f")) samples/s")
        lines.append("actors     \(liveActors.map(String.init) ?? "–") live of \(configuredActors) configured")
        lines.append("rollouts   accepted \(i(accepted)), dropped stale \(i(dropped)), accepted with lag > 0 "
                     + "\(i(acceptedStale)), wire drops \(i(wireDropped))")
        lines.append("loss       \(f(lastLoss, "%.4f"))")
        lines.append("checkpoint \(latestCheckpoint.map { "v\($0.version) \($0.url.lastPathComponent)" } ?? "–")")
        lines.append("metrics    \(metricLines) lines" + (malformedLines > 0 ? ", \(malformedLines) malformed" : ""))
        if let e = latestEval { lines.append(e.render()) } else { lines.append("eval       –") }
        return lines.joined(separator: "\n")
    }
}
