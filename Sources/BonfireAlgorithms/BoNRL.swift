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

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

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
        package var lambdaRule: BoNWeights.LambdaRule = .klMatched
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
            return GroupWeights.variational(scores: s, rewards: R, lambda: BoNWeights.lambda(n: s.count, rule: config.lambdaRule))
        }
    }
}

extension GroupWeights {
    /// Identity 1 (unbiased): w_i = R̄(y*) for every i.
    package static func nSample(scores: [Double], rewards: [Double]) -> [Double] {
        [Double](repeating: BoNSelection.bestReward(scores: scores, rewards: rewards), count: scores.count)
    }

    /// Identity 2 (unbiased, default): w_i = R̄(y*) − R̄(y*_{−i}).
    package static func leaveOneOut(scores: [Double], rewards: [Double]) -> [Double] {
        let best = BoNSelection.bestReward(scores: scores, rewards: rewards)
        let m = scores.max() ?? 0
        return scores.indices.map { i in
            // Removing a sample that is not maximal leaves the maximal set unchanged: weight exactly 0.
            scores[i] < m ? 0 : best - BoNSelection.bestReward(scores: scores, rewards: rewards, excluding: i)
        }
    }

    /// Identity 3 (BIASED ablation): REINFORCE on the selected sample only, tie-averaged.
    package static func selectedOnly(scores: [Double], rewards: [Double]) -> [Double] {
        let w = BoNSelection.winners(scores)
        var out = [Double](repeating: 0, count: scores.count)
        for i in w { out[i] = rewards[i] / Double(w.count) }
        return out
    }

    /// so the weight on ∇log π(y_j) is a_j + λ/(N−1) Σ_{i≠j} a_i 1{r_i ≥ r_j}. With `keepWinRateTerm` false only a_j.
    package static func variational(scores r: [Double], rewards R: [Double], lambda: Double,
                                    keepWinRateTerm: Bool = true) -> [Double] {
        let N = r.count
        if N == 1 { return [0] }
        let q = (0..<N).map { i in Double((0..<N).filter { $0 != i && r[i] >= r[$0] }.count) / Double(N - 1) }
        let qm = q.max() ?? 0
        let u = q.map { exp(lambda * ($0 - qm)) }
        let z = u.reduce(0, +)
        let w = u.map { $0 / z }
        let J = zip(w, R).reduce(0) { $0 + $1.0 * $1.1 }
        let a = (0..<N).map { w[$0] * (R[$0] - J) }
        return (0..<N).map { j in
            var v = a[j]
            if keepWinRateTerm {
                for i in 0..<N where i != j && r[i] >= r[j] { v += lambda / Double(N - 1) * a[i] }
            }
            return v
        }
    }
}
