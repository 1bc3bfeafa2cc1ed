// What the monitoring outputs show at one moment, as a plain value (rendered by PrometheusText, served by
// PrometheusServer), and `MonitoringState`, which builds it from the same metric maps that go to metrics.jsonl.
//
//   var state = MonitoringState(config.monitoring)
//   state.ingest(role: "learner", version: 17, values: m.values, now: Date())   // every metrics message / line
//   state.ingest(eval: table)                                                    // every eval table
//   state.setActors(live: 2, dead: 1)                                           // from LivenessTracker
//   server.update(state.snapshot)                                                // PrometheusServer
import Foundation

/// A cumulative histogram with fixed upper bounds (Prometheus semantics: bucket i counts observations ≤ bounds[i];
/// the +Inf bucket is `count`).
package struct Histogram: Equatable, Sendable {
    /// Strictly increasing finite upper bounds.
    package private(set) var upperBounds: [Double]
    /// cumulativeCounts[i] = observations ≤ upperBounds[i].
    package var cumulativeCounts: [Double]
    package var sum: Double
    package var count: Double

    package init(upperBounds: [Double]) {
        precondition(upperBounds.allSatisfy(\.isFinite) && zip(upperBounds, upperBounds.dropFirst()).allSatisfy { $0 < $1 },
                     "Histogram: upper bounds must be finite and strictly increasing, got \(upperBounds)")
        self.upperBounds = upperBounds
        cumulativeCounts = Array(repeating: 0, count: upperBounds.count)
        sum = 0; count = 0
    }

    /// Adds `weight` observations of `value` (non-finite values and weights ≤ 0 are ignored).
    package mutating func observe(_ value: Double, weight: Double = 1) {
        guard value.isFinite, weight.isFinite, weight > 0 else { return }
        for i in upperBounds.indices where value <= upperBounds[i] { cumulativeCounts[i] += weight }
        sum += value * weight
        count += weight
    }

    /// Staleness buckets in policy versions.
    package static let lagBounds: [Double] = [0, 1, 2, 4, 8, 16, 32]
}

package struct MonitoringSnapshot: Equatable, Sendable {
    package enum RoleKind: String, Sendable, Equatable { case coordinator, learner, actor, other }

    package struct RoleRates: Equatable, Sendable {
        package var role: String
        package var kind: RoleKind
        /// Samples (responses, or env steps) per second produced (actors) or consumed (learner).
        package var samplesPerSecond: Double?
        /// Learner updates per second.
        package var updatesPerSecond: Double?
        /// Unix time of the role's last metrics.
        package var lastSeen: Double
        package init(role: String, kind: RoleKind, samplesPerSecond: Double? = nil, updatesPerSecond: Double? = nil, lastSeen: Double = 0) {
            self.role = role; self.kind = kind; self.samplesPerSecond = samplesPerSecond
            self.updatesPerSecond = updatesPerSecond; self.lastSeen = lastSeen
        }
    }

    package var runID: String = ""
    package var policyVersion: Int = 0
    package var learnerStep: Int = 0
    package var roles: [RoleRates] = []
    package var liveActors: Int = 0
    package var deadActors: Int = 0
    /// Lag (policy versions) of accepted rollouts.
    package var staleness = Histogram(upperBounds: Histogram.lagBounds)
    /// Cumulative dropped messages/rollouts by reason ("stale", "wire", "actor", …).
    package var dropped: [String: Double] = [:]
    package var loss: Double?
    /// Latest evaluation table (pass@N and Bo-N by temperature and N).
    package var eval: EvalTable?
    /// Latest r/R means of the learner's batch.
    package var rewardGap: RewardGap?
    package var hackingAlarm: Bool = false
    package var runFinished: Bool = false
    /// Metric lines (or messages) ingested and those rejected (non-finite or out-of-range fields).
    package var ingested: Int = 0
    package var rejected: Int = 0

    package init() {}
}

/// Folds metric maps into a `MonitoringSnapshot`. Pure value type: no clocks, no I/O.
package struct MonitoringState: Sendable {
    package private(set) var snapshot = MonitoringSnapshot()
    private var lagCounts: [Int: Double] = [:]
    /// reason → role → latest count (bounded).
    private var wireDrops: [String: [String: Double]] = [:]

    package init(runID: String = "") { snapshot.runID = runID }

    package static func kind(ofRole role: String) -> MonitoringSnapshot.RoleKind {
        if role == "learner" { return .learner }
        if role == "coordinator" { return .coordinator }
        if role.hasPrefix("actor") { return .actor }
        return .other
    }

    /// One metrics map of `role` at policy `version` (the content of one metrics.jsonl line).
    package mutating func ingest(role: String, version: Int, values: [String: Double], time: Double) {
        guard version >= 0, version < Int(Int32.max), time.isFinite else { snapshot.rejected += 1; return }
        snapshot.ingested += 1
        let kind = Self.kind(ofRole: role)
        func finite(_ k: String) -> Double? { values[k].flatMap { $0.isFinite ? $0 : nil } }
        var rates = snapshot.roles.first { $0.role == role } ?? .init(role: role, kind: kind)
        rates.lastSeen = max(rates.lastSeen, time)
        switch kind {
        case .learner:
            snapshot.policyVersion = max(snapshot.policyVersion, version)
            if let s = finite(MetricKey.learnerStep), s >= 0, s < 1e15 { snapshot.learnerStep = Int(s) }
            if let u = finite(MetricKey.stepsPerSecond) { rates.updatesPerSecond = u }
            if let s = finite(MetricKey.samplesPerSecond) { rates.samplesPerSecond = s }
            if let l = values[MetricKey.policyLoss] ?? values[MetricKey.totalLoss] { snapshot.loss = l }
            if let g = RewardGap(metrics: values) { snapshot.rewardGap = g }
            if let d = finite(MetricKey.dropped) { snapshot.dropped["stale"] = d }
            if let w = finite(MetricKey.wireDropped) { snapshot.dropped["wire_learner"] = w }
            ingestStaleness(values)
        case .actor:
            if let s = finite(MetricKey.samplesPerSecond) ?? finite("throughput/env_steps_per_s") { rates.samplesPerSecond = s }
            if let d = finite(MonitoringKey.actorDroppedTotal) {
                snapshot.dropped["actor_" + MonitoringState.labelSafe(role)] = d
            }
        case .coordinator:
            if let v = finite(MetricKey.liveActors), v >= 0, v < 1e6 { snapshot.liveActors = Int(v) }
            if let w = finite(MetricKey.wireDropped) { snapshot.dropped["wire_coordinator"] = w }
            if values[MetricKey.runFinished] == 1 { snapshot.runFinished = true }
            if let a = values[MonitoringKey.hackingAlarm] { snapshot.hackingAlarm = a == 1 }
            if snapshot.policyVersion < version { snapshot.policyVersion = version }
        case .other:
            break
        }
        // Wire drops by reason, summed over the roles that reported them (each role counts its own).
        let wirePrefix = MetricKey.wireDropped + "/"
        for (k, v) in values where k.hasPrefix(wirePrefix) && v.isFinite && v >= 0 && wireDrops.count < 4096 {
            let reason = String(k.dropFirst(wirePrefix.count))
            wireDrops[reason, default: [:]][role] = v
            snapshot.dropped["wire_" + MonitoringState.labelSafe(reason)] = wireDrops[reason]!.values.reduce(0, +)
        }
        for (k, v) in values where k.hasPrefix(MonitoringKey.droppedPrefix) && v.isFinite && v >= 0 {
            snapshot.dropped[String(k.dropFirst(MonitoringKey.droppedPrefix.count))] = v
        }
        if let i = snapshot.roles.firstIndex(where: { $0.role == role }) { snapshot.roles[i] = rates }
        else if snapshot.roles.count < 1024 { snapshot.roles.append(rates) }   // bounded: peers can invent names
    }

    /// Staleness from the learner: exact per-lag counts when present (`staleness/lag_count/<k>`), else two buckets
    /// from the counters every learner writes (lag 0 = accepted − accepted_stale; lag ≥ 1 the rest, sum from mean lag).
    private mutating func ingestStaleness(_ values: [String: Double]) {
        var h = Histogram(upperBounds: Histogram.lagBounds)
        var exact = false
        for (k, v) in values where k.hasPrefix(MonitoringKey.lagCountPrefix) {
            guard let lag = Int(k.dropFirst(MonitoringKey.lagCountPrefix.count)), lag >= 0, lag < 1_000_000,
                  v.isFinite, v >= 0 else { continue }
            lagCounts[lag] = v
            exact = true
        }
        if exact || !lagCounts.isEmpty {
            for (lag, c) in lagCounts { h.observe(Double(lag), weight: c) }
            snapshot.staleness = h
            return
        }
        guard let accepted = values[MetricKey.accepted], accepted.isFinite, accepted >= 0 else { return }
        let stale = min(accepted, max(0, values[MetricKey.acceptedStale].flatMap { $0.isFinite ? $0 : nil } ?? 0))
        let meanLag = max(0, values[MetricKey.meanLag].flatMap { $0.isFinite ? $0 : nil } ?? 0)
        h.observe(0, weight: accepted - stale)
        if stale > 0 {
            // Lags ≥ 1 without finer detail: counted in the +Inf bucket only (no invented lag values).
            h.count += stale
        }
        h.sum = meanLag * accepted
        snapshot.staleness = h
    }

    package mutating func ingest(eval table: EvalTable) {
        if let e = snapshot.eval, e.version > table.version { return }
        snapshot.eval = table
    }

    package mutating func setActors(live: Int, dead: Int) {
        snapshot.liveActors = max(0, live); snapshot.deadActors = max(0, dead)
    }

    package mutating func setHackingAlarm(_ on: Bool) { snapshot.hackingAlarm = on }

    /// The state of a run from its metrics.jsonl records and latest eval table.
    package static func replay(records: [MetricsRecord], eval: EvalTable?, runID: String = "") -> MonitoringState {
        var s = MonitoringState(runID: runID)
        for r in records { s.ingest(role: r.role, version: r.version, values: r.values, time: r.time) }
        if let eval { s.ingest(eval: eval) }
        return s
    }

    static func labelSafe(_ s: String) -> String {
        String(s.prefix(64).map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? $0 : "_" })
    }
}
