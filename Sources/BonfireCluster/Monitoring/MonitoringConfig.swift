// Monitoring knobs and the metric keys the monitoring components read.
//
// `MonitoringSection` is meant to become `RunConfig.monitoring` (config keys `monitoring.prometheusPort`,
// `monitoring.prometheusHost`, `monitoring.hackingWindow`, `monitoring.hackingMinRise`, `monitoring.hackingMinFall`,
// `monitoring.tensorboard`); until then it is used on its own with its defaults. `validate()` returns the problems
// with full key names, in RunConfig's style.

/// Monitoring outputs of a run: TensorBoard files, the Prometheus endpoint, the reward-hacking alarm.
package struct MonitoringSection: Codable, Equatable, Sendable {
    /// TCP port of the coordinator's Prometheus `/metrics` endpoint; 0 (default) = off. A port in use is an error
    /// naming this key.
    package var prometheusPort: Int = 0
    /// Address the endpoint binds. Default "127.0.0.1" (loopback only); "0.0.0.0" exposes it to the network.
    package var prometheusHost: String = "127.0.0.1"
    /// Write TensorBoard event files under <run.dir>/tensorboard/<role>/. Default true.
    package var tensorboard: Bool = true
    /// Policy versions the reward-hacking alarm compares (first half vs second half of the window). Default 8.
    package var hackingWindow: Int = 8
    /// Smallest rise of the mean verifier score r over the window that counts as "r rises". Default 0.02.
    package var hackingMinRise: Double = 0.02
    /// Smallest fall of the mean true reward R over the window that counts as "R falls". Default 0.02.
    package var hackingMinFall: Double = 0.02

    package init() {}

    /// Problems, each naming its full key; empty when valid.
    package func problems() -> [String] {
        var out: [String] = []
        if !(0...65535).contains(prometheusPort) {
            out.append("monitoring.prometheusPort must be 0 (off) or a TCP port 1...65535, got \(prometheusPort)")
        }
        if prometheusHost.isEmpty || prometheusHost.contains(where: { $0.isWhitespace }) {
            out.append("monitoring.prometheusHost must be an IPv4 address such as 127.0.0.1, got \"\(prometheusHost)\"")
        }
        if hackingWindow < 2 || hackingWindow > 10_000 {
            out.append("monitoring.hackingWindow must be in 2...10000 policy versions, got \(hackingWindow)")
        }
        if !(hackingMinRise.isFinite && hackingMinRise >= 0) {
            out.append("monitoring.hackingMinRise must be a finite number ≥ 0, got \(hackingMinRise)")
        }
        if !(hackingMinFall.isFinite && hackingMinFall >= 0) {
            out.append("monitoring.hackingMinFall must be a finite number ≥ 0, got \(hackingMinFall)")
        }
        return out
    }
}

/// Metric keys (metrics.jsonl / WireMetrics) read by the monitoring components, beyond `MetricKey`.
package enum MonitoringKey {
    /// Mean verifier score r over every sample of the update's BoN groups.
    package static let verifierScoreMean = "reward/r_mean"
    /// Mean true reward R over every sample.
    package static let rewardMean = "reward/R_mean"
    /// Mean r of the BoN picks (the response with the highest r in each group).
    package static let pickVerifierScoreMean = "reward/r_pick_mean"
    /// Mean R of the BoN picks.
    package static let pickRewardMean = "reward/R_pick_mean"
    /// 1 while the reward-hacking alarm is raised, else 0 (written by the coordinator).
    package static let hackingAlarm = "alarm/reward_hacking"
    /// Cumulative count of accepted rollouts with lag exactly k (k = 0, 1, …); optional, finer than `MetricKey.accepted`.
    package static func lagCount(_ k: Int) -> String { "staleness/lag_count/\(k)" }
    package static let lagCountPrefix = "staleness/lag_count/"
    /// Cumulative count of messages dropped for `reason` (e.g. "dropped/decode", "dropped/wrong_run").
    package static func dropped(_ reason: String) -> String { "dropped/\(reason)" }
    package static let droppedPrefix = "dropped/"
    /// Cumulative samples of an actor (written by actors today).
    package static let actorSamplesTotal = "actor/samples_total"
    package static let actorDroppedTotal = "actor/dropped_total"
}

/// Per-version means of r and R over all samples and over the BoN picks, from the groups of one update.
package struct RewardGap: Equatable, Sendable {
    package var verifierScoreMean: Double
    package var rewardMean: Double
    package var pickVerifierScoreMean: Double
    package var pickRewardMean: Double

    package init(verifierScoreMean: Double, rewardMean: Double, pickVerifierScoreMean: Double, pickRewardMean: Double) {
        self.verifierScoreMean = verifierScoreMean; self.rewardMean = rewardMean
        self.pickVerifierScoreMean = pickVerifierScoreMean; self.pickRewardMean = pickRewardMean
    }

    /// r − R over all samples (> 0: the verifier is more optimistic than the ground truth).
    package var gap: Double { verifierScoreMean - rewardMean }
    /// r − R of the BoN picks.
    package var pickGap: Double { pickVerifierScoreMean - pickRewardMean }

    /// From BoN groups given as (scores r, rewards R) of equal length; the pick of a group is its first highest r.
    /// Groups with mismatched lengths or no samples, and non-finite values, are skipped; nil when nothing is left.
    package static func of(groups: [(scores: [Double], rewards: [Double])]) -> RewardGap? {
        var rSum = 0.0, RSum = 0.0, n = 0, prSum = 0.0, pRSum = 0.0, picks = 0
        for g in groups where g.scores.count == g.rewards.count && !g.scores.isEmpty {
            guard g.scores.allSatisfy(\.isFinite), g.rewards.allSatisfy(\.isFinite) else { continue }
            var best = 0
            for i in g.scores.indices {
                rSum += g.scores[i]; RSum += g.rewards[i]; n += 1
                if g.scores[i] > g.scores[best] { best = i }
            }
            prSum += g.scores[best]; pRSum += g.rewards[best]; picks += 1
        }
        guard n > 0 else { return nil }
        return RewardGap(verifierScoreMean: rSum / Double(n), rewardMean: RSum / Double(n),
                         pickVerifierScoreMean: prSum / Double(picks), pickRewardMean: pRSum / Double(picks))
    }

    /// The four metric keys, ready to merge into a learner's metrics.
    package var metrics: [String: Double] {
        [MonitoringKey.verifierScoreMean: verifierScoreMean, MonitoringKey.rewardMean: rewardMean,
         MonitoringKey.pickVerifierScoreMean: pickVerifierScoreMean, MonitoringKey.pickRewardMean: pickRewardMean]
    }

    /// Reads the four keys back from a metrics map (nil unless r and R means are both present and finite).
    package init?(metrics v: [String: Double]) {
        guard let r = v[MonitoringKey.verifierScoreMean], let R = v[MonitoringKey.rewardMean], r.isFinite, R.isFinite else { return nil }
        let pr = v[MonitoringKey.pickVerifierScoreMean].flatMap { $0.isFinite ? $0 : nil } ?? r
        let pR = v[MonitoringKey.pickRewardMean].flatMap { $0.isFinite ? $0 : nil } ?? R
        self.init(verifierScoreMean: r, rewardMean: R, pickVerifierScoreMean: pr, pickRewardMean: pR)
    }
}
