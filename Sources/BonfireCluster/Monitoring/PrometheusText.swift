// Prometheus text exposition format (version 0.0.4), rendered from a MonitoringSnapshot.
//
//   # HELP bonfire_policy_version Latest policy version published by the learner.
//   # TYPE bonfire_policy_version gauge
//   bonfire_policy_version 17
//   bonfire_staleness_lag_bucket{le="0"} 120
//   …
//   bonfire_staleness_lag_bucket{le="+Inf"} 131
//   bonfire_staleness_lag_sum 14
//   bonfire_staleness_lag_count 131
//
// Label values escape \ " and newline; HELP text escapes \ and newline; metric and label names outside
// [a-zA-Z_:][a-zA-Z0-9_:]* are a programmer error; values print NaN, +Inf, -Inf like Prometheus' Go client.
import Foundation

package struct PrometheusText {
    package enum Kind: String, Sendable { case gauge, counter, histogram }

    private var out = ""
    private var declared: Set<String> = []

    package init() {}

    package var text: String { out }

    /// Declares a family (HELP + TYPE), once per name.
    package mutating func family(_ name: String, _ kind: Kind, help: String) {
        precondition(Self.isValidName(name), "PrometheusText: invalid metric name \"\(name)\"")
        guard declared.insert(name).inserted else { return }
        out += "# HELP \(name) \(Self.escapeHelp(help))\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// One sample of a declared family (or of its _bucket/_sum/_count series).
    package mutating func sample(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        precondition(Self.isValidName(name), "PrometheusText: invalid metric name \"\(name)\"")
        out += name
        if !labels.isEmpty {
            out += "{" + labels.map { k, v in
                precondition(Self.isValidName(k) && !k.contains(":") && !k.hasPrefix("__"), "PrometheusText: invalid label name \"\(k)\"")
                return "\(k)=\"\(Self.escapeLabel(v))\""
            }.joined(separator: ",") + "}"
        }
        out += " " + Self.format(value) + "\n"
    }

    package mutating func gauge(_ name: String, help: String, _ value: Double, labels: [(String, String)] = []) {
        family(name, .gauge, help: help)
        sample(name, labels, value)
    }

    package mutating func histogram(_ name: String, help: String, _ h: Histogram, labels: [(String, String)] = []) {
        family(name, .histogram, help: help)
        for (b, c) in zip(h.upperBounds, h.cumulativeCounts) { sample(name + "_bucket", labels + [("le", Self.format(b))], c) }
        sample(name + "_bucket", labels + [("le", "+Inf")], h.count)
        sample(name + "_sum", labels, h.sum)
        sample(name + "_count", labels, h.count)
    }

    package static func isValidName(_ s: String) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCII, f == "_" || f == ":" || CharacterSet.letters.contains(f) else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || $0 == ":" || CharacterSet.alphanumerics.contains($0)) }
    }

    package static func escapeLabel(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": o += "\\\\"
            case "\"": o += "\\\""
            case "\n": o += "\\n"
            default: o.unicodeScalars.append(c)
            }
        }
        return o
    }

    package static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    package static func format(_ x: Double) -> String {
        if x.isNaN { return "NaN" }
        if x.isInfinite { return x > 0 ? "+Inf" : "-Inf" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }

    /// The whole exposition of a snapshot.
    package static func render(_ s: MonitoringSnapshot) -> String {
        var p = PrometheusText()
        p.gauge("bonfire_run_info", help: "Constant 1, labelled with the run id.", 1, labels: [("run_id", s.runID)])
        p.gauge("bonfire_policy_version", help: "Latest policy version published by the learner.", Double(s.policyVersion))
        p.family("bonfire_learner_steps_total", .counter, help: "Learner updates since the run started.")
        p.sample("bonfire_learner_steps_total", [], Double(s.learnerStep))
        p.gauge("bonfire_run_finished", help: "1 once the run has finished normally.", s.runFinished ? 1 : 0)

        p.family("bonfire_samples_per_second", .gauge, help: "Samples per second by role (actors: produced; learner: consumed).")
        p.family("bonfire_updates_per_second", .gauge, help: "Learner updates per second.")
        p.family("bonfire_role_last_seen_seconds", .gauge, help: "Unix time of the last metrics from each role.")
        for r in s.roles.sorted(by: { $0.role < $1.role }) {
            let l = [("role", r.role), ("kind", r.kind.rawValue)]
            if let v = r.samplesPerSecond { p.sample("bonfire_samples_per_second", l, v) }
            if let v = r.updatesPerSecond { p.sample("bonfire_updates_per_second", l, v) }
            p.sample("bonfire_role_last_seen_seconds", l, r.lastSeen)
        }
        p.family("bonfire_actors", .gauge, help: "Actors by liveness state.")
        p.sample("bonfire_actors", [("state", "live")], Double(s.liveActors))
        p.sample("bonfire_actors", [("state", "dead")], Double(s.deadActors))

        p.histogram("bonfire_staleness_lag", help: "Policy lag (current − behaviour version) of accepted rollouts.", s.staleness)

        p.family("bonfire_dropped_total", .counter, help: "Messages and rollouts dropped, by reason.")
        for (reason, n) in s.dropped.sorted(by: { $0.key < $1.key }) { p.sample("bonfire_dropped_total", [("reason", reason)], n) }

        if let l = s.loss { p.gauge("bonfire_loss", help: "Latest learner loss (loss/policy, else loss/total).", l) }

        if let e = s.eval {
            p.gauge("bonfire_eval_version", help: "Policy version of the latest evaluation.", Double(e.version))
            p.family("bonfire_eval_pass_at_n", .gauge, help: "pass@N: P(at least one of N samples has reward 1), latest evaluation.")
            p.family("bonfire_eval_best_of_n", .gauge, help: "Bo-N accuracy: expected reward of the verifier's pick among N, latest evaluation.")
            for r in e.rows {
                let l = [("n", String(r.n)), ("temperature", format(r.temperature))]
                p.sample("bonfire_eval_pass_at_n", l, r.passAtN)
                p.sample("bonfire_eval_best_of_n", l, r.boN)
            }
        }
        if let g = s.rewardGap {
            p.family("bonfire_verifier_score_mean", .gauge, help: "Mean verifier score r of the learner's latest batch (all samples / BoN picks).")
            p.sample("bonfire_verifier_score_mean", [("set", "all")], g.verifierScoreMean)
            p.sample("bonfire_verifier_score_mean", [("set", "bon_pick")], g.pickVerifierScoreMean)
            p.family("bonfire_reward_mean", .gauge, help: "Mean true reward R of the learner's latest batch (all samples / BoN picks).")
            p.sample("bonfire_reward_mean", [("set", "all")], g.rewardMean)
            p.sample("bonfire_reward_mean", [("set", "bon_pick")], g.pickRewardMean)
        }
        p.gauge("bonfire_alarm_reward_hacking", help: "1 while r rises and R falls over monitoring.hackingWindow versions.",
                s.hackingAlarm ? 1 : 0)
        p.family("bonfire_monitoring_records_total", .counter, help: "Metric records ingested by the monitor, by outcome.")
        p.sample("bonfire_monitoring_records_total", [("outcome", "ingested")], Double(s.ingested))
        p.sample("bonfire_monitoring_records_total", [("outcome", "rejected")], Double(s.rejected))
        return p.text
    }
}
