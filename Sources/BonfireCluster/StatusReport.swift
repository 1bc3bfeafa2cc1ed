// Summary of a running or finished run, read only from its run directory (config.json, metrics.jsonl,
// checkpoints/, eval/): what `bonfire status <run-dir>` prints, and the frame `bonfire status --follow` redraws.
//
// Each figure is the latest value of its metric key in metrics.jsonl (see MetricKey, MonitoringKey). Steps/s falls
// back to (last − first learner version) / (last − first learner time) when no role wrote throughput/steps_per_s.
// A run "looks alive" when it has not written run/finished and its last line is younger than
// max(10 s, 3 × logging.periodSeconds); the same rule marks each role alive or silent.
//
// Bad directories are explained, not guessed at: a missing path, a file, an empty directory and a directory of
// something else each get their own message (`diagnose`); a half-written run (config.json without metrics.jsonl,
// metrics without config.json, an unreadable config.json or eval table) is summarised with what is missing listed
// under "problems"; malformed metrics lines are skipped and counted.

import Foundation

package struct StatusReport: Sendable {
    package enum State: String, Sendable { case running, finished, stalled, empty }

    /// One role seen in metrics.jsonl.
    package struct RoleLine: Sendable, Equatable {
        package var role: String
        package var kind: MonitoringSnapshot.RoleKind
        package var alive: Bool
        package var lastLineAgeSeconds: Double
        package var samplesPerSecond: Double?
        package var updatesPerSecond: Double?
    }

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
    /// Every message any role dropped (sum over roles of each role's latest `wire/dropped`).
    package var wireDropped: Double?
    /// The same by reason and role: reason → role → latest count (`wire/dropped/<reason>` of each role).
    package var wireDropsByReason: [String: [String: Double]] = [:]
    package var lastLoss: Double?
    /// Seconds since the last metrics line was written (by its own `time` field).
    package var lastLineAgeSeconds: Double?
    package var state: State
    package var latestEval: EvalTable?
    package var latestCheckpoint: CheckpointRef?
    /// What is missing or unreadable in a half-written directory (empty for a healthy run).
    package var problems: [String] = []
    package var roles: [RoleLine] = []
    package var staleness: Histogram = Histogram(upperBounds: Histogram.lagBounds)
    package var rewardGap: RewardGap?
    package var hackingAlarm: Bool = false

    package var looksAlive: Bool { state == .running }

    /// Throws a ConfigError saying exactly what is wrong when `url` cannot be a run directory: missing, a file,
    /// empty, or holding none of a run's files.
    package static func diagnose(_ url: URL) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        let hint = "pass the run.dir of a run, e.g. runs/latest"
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw ConfigError("\(url.path) is not a run directory: it does not exist; \(hint)")
        }
        guard isDir.boolValue else {
            throw ConfigError("\(url.path) is not a run directory: it is a file; \(hint)")
        }
        guard let names = try? fm.contentsOfDirectory(atPath: url.path) else {
            throw ConfigError("\(url.path) is not a run directory: it cannot be listed (permissions?)")
        }
        let ours: Set<String> = ["config.json", "metrics.jsonl", "checkpoints", "eval", "logs", "tensorboard"]
        if names.isEmpty {
            throw ConfigError("\(url.path) is not a run directory: it is empty (no config.json, no metrics.jsonl). "
                              + "If a run is starting there, its coordinator writes config.json first; retry in a moment")
        }
        if !names.contains(where: ours.contains) {
            let shown = names.sorted().prefix(5).joined(separator: ", ") + (names.count > 5 ? ", …" : "")
            throw ConfigError("\(url.path) is not a run directory: it holds \(names.count) entries (\(shown)) but none of a "
                              + "run's (config.json, metrics.jsonl, checkpoints/, eval/, logs/); \(hint)")
        }
    }

    /// Reads the run directory at `url`; throws a ConfigError saying what is wrong when it is not a run directory.
    package static func load(runDirectory url: URL, now: Date = Date()) throws -> StatusReport {
        try diagnose(url)
        let metricsURL = url.appendingPathComponent("metrics.jsonl")
        var records: [MetricsRecord] = []
        var malformed = 0
        if FileManager.default.fileExists(atPath: metricsURL.path) {
            let tail = MetricsTail(url: metricsURL)
            while !tail.poll().isEmpty {}
            records = tail.records
            malformed = tail.malformed + (tail.pendingBytes > 0 ? 1 : 0)   // a partial last line counts
        }
        return build(runDirectory: url, records: records, malformed: malformed, now: now)
    }

    /// The report from records already read (the follow view keeps a MetricsTail and calls this every frame).
    package static func build(runDirectory url: URL, records: [MetricsRecord], malformed: Int, now: Date = Date()) -> StatusReport {
        let fm = FileManager.default
        var problems: [String] = []
        let configURL = url.appendingPathComponent("config.json")
        var config = RunConfig()
        if fm.fileExists(atPath: configURL.path) {
            do { config = try RunConfig.load(file: configURL) } catch {
                let why = (error as? ConfigError)?.message ?? "\(error)"
                problems.append("config.json is unreadable (\(why)); figures use default settings")
            }
        } else {
            problems.append("config.json is missing (the coordinator writes it when the run starts); figures use default settings")
        }
        if !fm.fileExists(atPath: url.appendingPathComponent("metrics.jsonl").path) {
            problems.append("metrics.jsonl is missing: no role has reported yet")
        }
        if malformed > 0 { problems.append("\(malformed) malformed line(s) in metrics.jsonl skipped") }

        func latest(_ key: String) -> Double? {
            records.last(where: { $0.values[key] != nil })?.values[key]
        }
        var stepsPerSecond = latest(MetricKey.stepsPerSecond)
        let learnerLines = records.filter { $0.role == "learner" }
        if stepsPerSecond == nil, let a = learnerLines.first, let b = learnerLines.last, b.time > a.time {
            stepsPerSecond = Double(b.version - a.version) / (b.time - a.time)
        }
        let nowS = now.timeIntervalSince1970
        let age = records.map(\.time).filter(\.isFinite).max().map { nowS - $0 }
        let finished = records.contains { $0.values[MetricKey.runFinished] != nil }
        let aliveWindow = max(10, 3 * config.logging.periodSeconds)
        let state: State
        if records.isEmpty { state = .empty }
        else if finished { state = .finished }
        else if let age, age <= aliveWindow { state = .running }
        else { state = .stalled }

        let monitor = MonitoringState.replay(records: records, eval: nil, runID: config.run.id)
        let snap = monitor.snapshot
        let roles = snap.roles.sorted { ($0.kind.rawValue, $0.role) < ($1.kind.rawValue, $1.role) }.map {
            RoleLine(role: $0.role, kind: $0.kind, alive: !finished && nowS - $0.lastSeen <= aliveWindow,
                     lastLineAgeSeconds: nowS - $0.lastSeen, samplesPerSecond: $0.samplesPerSecond,
                     updatesPerSecond: $0.updatesPerSecond)
        }
        let evalDir = url.appendingPathComponent("eval")
        var latestEval: EvalTable?
        // The newest readable eval table; unreadable newer ones are named.
        for (_, evalURL) in RunDirectory.versionedFiles(in: evalDir, suffix: ".json").reversed().prefix(4) {
            do { latestEval = try JSONDecoder().decode(EvalTable.self, from: Data(contentsOf: evalURL)); break } catch {
                problems.append("\(evalURL.lastPathComponent) in eval/ is unreadable (half-written?); skipped")
            }
        }
        // The newest checkpoint whose header and size agree (a truncated or foreign file is named, not shown as latest).
        var checkpoint: CheckpointRef?
        for (version, ckpt) in RunDirectory.versionedFiles(in: url.appendingPathComponent("checkpoints"), suffix: ".safetensors").reversed().prefix(4) {
            if let why = checkpointProblem(ckpt) {
                problems.append("checkpoints/\(ckpt.lastPathComponent) \(why); not counted as the latest checkpoint")
                continue
            }
            checkpoint = CheckpointRef(version: version, url: ckpt)
            break
        }
        let live = latest(MetricKey.liveActors).flatMap { $0.isFinite && $0 >= 0 && $0 < 1e6 ? Int($0) : nil }

        return StatusReport(
            runDirectory: url.path,
            runID: config.run.id.isEmpty ? "(not recorded)" : config.run.id,
            algorithm: config.algorithm.name.rawValue, task: config.task.name.rawValue, maxSteps: config.learner.maxSteps,
            metricLines: records.count, malformedLines: malformed,
            latestVersion: records.map(\.version).max(),
            stepsPerSecond: stepsPerSecond, samplesPerSecond: latest(MetricKey.samplesPerSecond),
            liveActors: live, configuredActors: config.actors.count,
            accepted: latest(MetricKey.accepted), dropped: latest(MetricKey.dropped),
            acceptedStale: latest(MetricKey.acceptedStale), wireDropped: Self.wireDropTotal(records),
            wireDropsByReason: Self.wireDrops(records),
            lastLoss: latest(MetricKey.policyLoss) ?? latest(MetricKey.totalLoss),
            lastLineAgeSeconds: age, state: state,
            latestEval: latestEval, latestCheckpoint: checkpoint,
            problems: problems, roles: roles, staleness: snap.staleness, rewardGap: snap.rewardGap,
            hackingAlarm: snap.hackingAlarm)
    }

    /// Why a checkpoint file cannot be a whole safetensors file (nil when its header and size agree): reads only the
    /// 8-byte header length and the JSON header, and compares the data size they describe with the file's size.
    package static func checkpointProblem(_ url: URL) -> String? {
        guard let h = try? FileHandle(forReadingFrom: url) else { return "cannot be opened" }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        try? h.seek(toOffset: 0)
        guard size >= 8, let lenBytes = try? h.read(upToCount: 8), lenBytes.count == 8 else {
            return "is truncated (\(size) bytes, not even a header; half-written?)"
        }
        let headerLength = lenBytes.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard headerLength > 1, headerLength <= 100 << 20 else { return "is not a safetensors file (header length \(headerLength))" }
        guard 8 + headerLength <= size else { return "is truncated (\(size) bytes, its header alone needs \(8 + headerLength); half-written?)" }
        guard let header = try? h.read(upToCount: Int(headerLength)), header.count == Int(headerLength),
              let json = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            return "is not a safetensors file (unreadable header)"
        }
        var dataEnd: UInt64 = 0
        for (key, value) in json where key != "__metadata__" {
            guard let entry = value as? [String: Any], let offsets = entry["data_offsets"] as? [NSNumber], offsets.count == 2,
                  offsets[1].int64Value >= 0 else { return "is not a safetensors file (tensor \"\(key.prefix(40))\" has no data_offsets)" }
            dataEnd = max(dataEnd, UInt64(offsets[1].int64Value))
        }
        let expected = 8 + headerLength + dataEnd
        if size < expected { return "is truncated (\(size) of \(expected) bytes; half-written?)" }
        return nil
    }

    /// reason → role → that role's latest cumulative count of drops for the reason. Each role counts its own
    /// drops; summing the latest value per role (not the latest line of any role) is the run's total.
    package static func wireDrops(_ records: [MetricsRecord]) -> [String: [String: Double]] {
        let prefix = MetricKey.wireDropped + "/"
        var out: [String: [String: Double]] = [:]
        for r in records {
            for (k, v) in r.values where k.hasPrefix(prefix) && v.isFinite && v >= 0 {
                out[String(k.dropFirst(prefix.count)), default: [:]][r.role] = v
            }
        }
        return out
    }

    /// Sum over roles of each role's latest `wire/dropped` total.
    package static func wireDropTotal(_ records: [MetricsRecord]) -> Double? {
        var perRole: [String: Double] = [:]
        for r in records { if let v = r.values[MetricKey.wireDropped], v.isFinite, v >= 0 { perRole[r.role] = v } }
        return perRole.isEmpty ? nil : perRole.values.reduce(0, +)
    }

    /// Human-readable summary, one fact per line.
    package func render() -> String {
        func f(_ x: Double?, _ fmt: String = "%.2f") -> String { x.map { String(format: fmt, $0) } ?? "–" }
        func i(_ x: Double?) -> String { x.flatMap { $0.isFinite && abs($0) < 1e15 ? String(Int($0)) : nil } ?? "–" }
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
        lines.append("job        \(algorithm) on \(task), maxSteps \(maxSteps)"
                     + (problems.contains { $0.hasPrefix("config.json") } ? " (defaults: config.json missing or unreadable)" : ""))
        lines.append("version    \(latestVersion.map(String.init) ?? "–")")
        lines.append("throughput \(f(stepsPerSecond)) steps/s, \(f(samplesPerSecond, "%.1f")) samples/s")
        lines.append("actors     \(liveActors.map(String.init) ?? "–") live of \(configuredActors) configured")
        for r in roles {
            var s = "  \(r.role)  " + (r.alive ? "alive" : String(format: "silent %.0f s", r.lastLineAgeSeconds))
            if let x = r.samplesPerSecond { s += String(format: "  %.1f samples/s", x) }
            if let x = r.updatesPerSecond { s += String(format: "  %.2f updates/s", x) }
            lines.append(s)
        }
        lines.append("rollouts   accepted \(i(accepted)), dropped stale \(i(dropped)), accepted with lag > 0 "
                     + "\(i(acceptedStale)), wire drops \(i(wireDropped))")
        let reasons = wireDropsByReason.map { (reason: $0.key, total: $0.value.values.reduce(0, +), roles: $0.value) }
            .filter { $0.total > 0 }.sorted { ($0.total, $1.reason) > ($1.total, $0.reason) }
        for (k, r) in reasons.enumerated() {
            let who = r.roles.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \(i($0.value))" }
            lines.append((k == 0 ? "drops      " : "           ") + "\(r.reason) \(i(r.total)) (" + who.joined(separator: ", ") + ")")
        }
        if staleness.count > 0 { lines.append("staleness  " + Self.histogramText(staleness)) }
        lines.append("loss       \(f(lastLoss, "%.4f"))")
        if let g = rewardGap {
            lines.append(String(format: "r vs R     all r %.3f R %.3f (gap %+.3f); BoN picks r %.3f R %.3f (gap %+.3f)",
                                g.verifierScoreMean, g.rewardMean, g.gap, g.pickVerifierScoreMean, g.pickRewardMean, g.pickGap)
                         + (hackingAlarm ? "  ALARM: reward hacking suspected" : ""))
        }
        lines.append("checkpoint \(latestCheckpoint.map { "v\($0.version) \($0.url.lastPathComponent)" } ?? "–")")
        lines.append("metrics    \(metricLines) lines" + (malformedLines > 0 ? ", \(malformedLines) malformed (skipped)" : ""))
        for p in problems { lines.append("problem    \(p)") }
        if let e = latestEval { lines.append(e.render()) } else { lines.append("eval       –") }
        return lines.joined(separator: "\n")
    }

    /// "lag 0: 90  ≤1: 7  ≤2: 0  ≤4: 3  >32: 0" — per-bucket (not cumulative) counts.
    package static func histogramText(_ h: Histogram) -> String {
        var parts: [String] = []
        var prev = 0.0
        for (b, c) in zip(h.upperBounds, h.cumulativeCounts) {
            let n = c - prev
            prev = c
            if n > 0 || b == 0 { parts.append((b == 0 ? "lag 0: " : "≤\(Int(b)): ") + String(Int(n))) }
        }
        let over = h.count - prev
        if over > 0 { parts.append(">\(Int(h.upperBounds.last ?? 0)) or unknown: \(Int(over))") }
        return parts.joined(separator: "  ")
    }
}
