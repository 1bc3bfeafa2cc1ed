// RL (N′ = 1): inference-unaware policy gradient, the baseline BoN-RL is compared with (SPEC-bon.md §2.4).
//
// Objective: J₁(x) = E_{y∼π}[R_train(x, y)] with R_train = verifier score r (RL-V) or environment reward R (RL-S).
// Estimator over a group of G samples of one prompt (RLOO, unbiased):
//   ĝ = (1/G) Σ_i (R_i − (1/(G−1)) Σ_{j≠i} R_j) ∇log π(y_i|x)        (G = 1: no baseline, w = R)
// Options: the group-mean baseline (R_i − mean R)/G (expectation (G−1)/G·∇J₁), PPO ratio clipping per token
// (UpdateConfig.ppoClip = ε: token weight A·ratio_t, zeroed where the ratio is outside [1−ε, 1+ε] in the advantage's
// direction), and a k3 KL penalty to a reference policy (UpdateConfig.klCoefficient = β; pass `reference:` to step).

package struct RL: GroupLearner {
    package struct Config: Codable, Sendable, Equatable {
        package enum RewardSource: String, Codable, Sendable, CaseIterable {
            /// RL-V: train on the verifier score r.
            case verifier
            /// RL-S: train on the environment reward R.
            case system
        }
        package enum Baseline: String, Codable, Sendable, CaseIterable { case leaveOneOut, groupMean, none }
        /// Default .system (RL-S).
        package var reward: RewardSource = .system
        /// Default .leaveOneOut (RLOO).
        package var baseline: Baseline = .leaveOneOut
        /// Update step options (set ppoClip / klCoefficient here). Defaults: no PPO clip, no KL.
        package var update = UpdateConfig()
        package init() {}
    }

    package var config: Config
    package init(config: Config = Config()) { self.config = config }
    package var name: String { config.reward == .verifier ? "rl-v" : "rl-s" }
    package var update: UpdateConfig { config.update }

    package func groupWeights(_ group: BoNGroup) -> [Double] {
        weights(rewards: config.reward == .verifier ? group.scores : group.rewards)
    }

    package func weights(rewards R: [Double]) -> [Double] {
        switch config.baseline {
        case .leaveOneOut: return GroupWeights.rloo(rewards: R)
        case .groupMean: return GroupWeights.meanBaseline(rewards: R)
        case .none: return R.map { $0 / Double(R.count) }
        }
    }
}

extension GroupWeights {
    /// unbiased estimate of ∇E_π[R]. G = 1: w = R (no baseline available).
    package static func rloo(rewards: [Double]) -> [Double] {
        let G = rewards.count
        if G == 1 { return rewards }
        let s = rewards.reduce(0, +)
        return rewards.map { ($0 - (s - $0) / Double(G - 1)) / Double(G) }
    }

    /// Group-mean baseline (GRPO-like without std): (R_i − mean R)/G; expectation (G−1)/G · ∇E_π[R].
    package static func meanBaseline(rewards: [Double]) -> [Double] {
        let G = Double(rewards.count), mean = rewards.reduce(0, +) / G
        return rewards.map { ($0 - mean) / G }
    }
}
