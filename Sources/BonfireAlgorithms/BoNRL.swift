// BoN-RL-V and BoN-RL-S: Best-of-N-aware policy gradient with a general verifier (SPEC-bon.md §2.2, checks C1, C3,
// C6, C7, C10).
//
// Objective (per prompt x): J(x) = E_{y_1..N ∼ π}[ R_train(y*) ],  y* = argmax_i s(y_i) (ties uniform), where
//   BoN-RL-V: s = r (verifier score), R_train = r        → maximises the expected verifier score of the BoN pick
//   BoN-RL-S: s = R (default, pass@N-like; or r via `selectBy`), R_train = R (environment reward)
// Estimators (per-sample weights w_i, gradient Σ_i w_i ∇log π(y_i|x), mean over prompts; GroupWeights):
//   .leaveOneOut (default, unbiased, identity 2):  w_i = R̄(y*) − R̄(y*_{−i}); without ties only the selected sample
//        moves, by R(y*) − R(runner-up). R̄ = tie-averaged reward of the pick.
//   .nSample (unbiased, identity 1, high variance):  w_i = R̄(y*).
//   .selectedOnly (ABLATION, biased, identity 3):  REINFORCE on y* only, E = E_{π_bon}[R ∇log π] ≠ ∇J.
//   .variational (ABLATION, form 4 estimated in-group, biased):  Σ_i a_i(∇log π(y_i) + λ∇Q̂_i), a_i = ŵ_i(R_i − Ĵ),
//        ŵ ∝ exp(λ_N Q̂) with λ_N from `lambdaRule`.
// N = 1: leaveOneOut gives w = R (REINFORCE without baseline); the RL learner (RLOO) is the N′ = 1 baseline.

package struct BoNRL: GroupLearner {
    package struct Config: Codable, Sendable, Equatable {
        package enum Variant: String, Codable, Sendable, CaseIterable {
            /// BoN-RL-V: select by verifier score r, train on r.
            case verifier
            /// BoN-RL-S: train on environment reward R (selection per `selectBy`).
            case system
        }
        package enum Selector: String, Codable, Sendable, CaseIterable { case verifierScore, reward }
        package enum Estimator: String, Codable, Sendable, CaseIterable {
            case leaveOneOut, nSample, selectedOnly, variational
        }
        /// -V or -S. Default .verifier.
        package var variant: Variant = .verifier
        /// For BoN-RL-S only: what y* is chosen by. Default .reward (pass@N objective for binary R).
        package var selectBy: Selector = .reward
        /// Default .leaveOneOut (unbiased).
        package var estimator: Estimator = .leaveOneOut
        /// λ_N rule for .variational. Default .klMatched.
        package var lambdaRule: ExactBoN.LambdaRule = .klMatched
        /// Update step options.
        package var update = UpdateConfig()
        package init() {}
    }

    package var config: Config
    package init(config: Config = Config()) { self.config = config }
    package var name: String { config.variant == .verifier ? "bon-rl-v" : "bon-rl-s" }
    package var update: UpdateConfig { config.update }

    /// (selection score, training reward) of a group under the variant.
    package func selectionAndReward(scores: [Double], rewards: [Double]) -> ([Double], [Double]) {
        switch config.variant {
        case .verifier: return (scores, scores)
        case .system: return (config.selectBy == .reward ? rewards : scores, rewards)
        }
    }

    package func groupWeights(_ group: BoNGroup) -> [Double] { weights(scores: group.scores, rewards: group.rewards) }

    package func weights(scores: [Double], rewards: [Double]) -> [Double] {
        let (s, R) = selectionAndReward(scores: scores, rewards: rewards)
        switch config.estimator {
        case .leaveOneOut: return GroupWeights.leaveOneOut(scores: s, rewards: R)
        case .nSample: return GroupWeights.nSample(scores: s, rewards: R)
        case .selectedOnly: return GroupWeights.selectedOnly(scores: s, rewards: R)
        case .variational:
            return GroupWeights.variational(scores: s, rewards: R, lambda: ExactBoN.lambda(n: s.count, rule: config.lambdaRule))
        }
    }
}
