// BoN-SFT: maximise the likelihood of demonstrations under the variational BoN policy (SPEC-bon.md §2.1, C5, C10).
//
// Objective: max_θ E_{(x,y*)∼D}[log π_λ(y*|x)],  π_λ(y|x) = π(y|x) exp(λ_N Q_π(x,y)) / Z_π(x),
//   Q_π(x,y) = P_{y'∼π}(r(x,y) ≥ r(x,y')),  λ_N by `lambdaRule` (default KL-matched; linearised = N − 1; λ_1 = 0).
// Exact gradient:  ∇log π_λ(y*) = [∇log π(y*) + λ∇Q(y*)] − E_{y∼π_λ}[∇log π(y) + λ∇Q(y)],
//   ∇Q(y) = E_{y'∼π}[1{r(y) ≥ r(y')} ∇log π(y')].
// Estimator from M policy samples y'_1..M of the prompt (scores r_m; expert score r*):
//   Q̂(y*) = (1/M)Σ_m 1{r* ≥ r_m},  ∇Q̂(y*) = (1/M)Σ_m 1{r* ≥ r_m}∇log π(y'_m)
//   Q̂_m = (1/(M−1))Σ_{k≠m} 1{r_m ≥ r_k},  ∇Q̂_m = (1/(M−1))Σ_{k≠m} 1{r_m ≥ r_k}∇log π(y'_k)
//   E_{π_λ}[·] ≈ Σ_m ŵ_m[·]_m with self-normalised ŵ_m ∝ exp(λ Q̂_m)   (consistent, O(1/M) biased)
// So the weight on ∇log π(y*) is 1, and on ∇log π(y'_k):
//   λ/M·1{r* ≥ r_k} − ŵ_k − λ/(M−1)·Σ_{m≠k} ŵ_m 1{r_m ≥ r_k}.
// λ = 0 (N = 1) drops the sample terms (their exact expectation E_π[∇log π] is 0): the step is exactly SFT's.

import BonfireMath
import BonfireModel

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// A demonstration with the verifier's score of it and M policy samples for the same prompt (scores filled in).
package struct BoNSFTExample: Sendable {
    package var demonstration: Demonstration
    package var expertScore: Double
    /// M samples from the policy (responses, behaviour log-probs/version, scores); rewards are not used.
    package var samples: BoNGroup
    package init(demonstration: Demonstration, expertScore: Double, samples: BoNGroup) {
        self.demonstration = demonstration; self.expertScore = expertScore; self.samples = samples
    }
}

package struct BoNSFT: Sendable {
    package struct Config: Codable, Sendable, Equatable {
        /// N′: the N the objective assumes. Default 8.
        package var n = 8
        /// M: policy samples per prompt for Q, ∇Q and the contrastive term. Default 8.
        package var samplesPerPrompt = 8
        /// λ_N rule. Default .klMatched.
        package var lambdaRule: ExactBoN.LambdaRule = .klMatched
        /// Overrides λ when set (ablations). Default nil.
        package var lambdaOverride: Double? = nil
        /// Update step options.
        package var update = UpdateConfig()
        package init() {}
    }
    package var config: Config
    package init(config: Config = Config()) { self.config = config }
    package var name: String { "bon-sft" }
    package var lambda: Double { config.lambdaOverride ?? ExactBoN.lambda(n: config.n, rule: config.lambdaRule) }

    /// Weights on ∇log π(y*) and on ∇log π(y'_k) (file header).
    package static func weights(expertScore rs: Double, sampleScores r: [Double], lambda: Double)
        -> (expert: Double, samples: [Double]) {
        let M = r.count
        if lambda == 0 || M == 0 { return (1, [Double](repeating: 0, count: M)) }
        precondition(M >= 2, "BoNSFT.weights: need M ≥ 2 policy samples, got \(M)")
        let q = (0..<M).map { m in Double((0..<M).filter { $0 != m && r[m] >= r[$0] }.count) / Double(M - 1) }
        let qm = q.max()!
        let u = q.map { exp(lambda * ($0 - qm)) }
        let z = u.reduce(0, +)
        let w = u.map { $0 / z }
        let s = (0..<M).map { k -> Double in
            var v = (rs >= r[k] ? lambda / Double(M) : 0) - w[k]
            for m in 0..<M where m != k && r[m] >= r[k] { v -= lambda / Double(M - 1) * w[m] }
            return v
        }
        return (1, s)
    }

    /// Weighted sequences of one step (mean over examples).
    package func sequences(_ examples: [BoNSFTExample], currentVersion: Int) -> [WeightedSequence] {
        let scale = 1 / Double(max(1, examples.count)), lam = lambda
        var out: [WeightedSequence] = []
        for (g, ex) in examples.enumerated() {
            let (we, ws) = BoNSFT.weights(expertScore: ex.expertScore, sampleScores: ex.samples.scores, lambda: lam)
            out.append(WeightedSequence(promptTokens: ex.demonstration.promptTokens, response: ex.demonstration.response,
                                        weight: we * scale, group: g))
            if lam == 0 { continue }
            let stale = ex.samples.behaviourVersion != currentVersion
            for k in 0..<ex.samples.n where ws[k] != 0 {
                out.append(WeightedSequence(promptTokens: ex.samples.promptTokens, response: ex.samples.responses[k],
                                            weight: ws[k] * scale,
                                            behaviourLogProbs: stale ? ex.samples.behaviourLogProbs[k] : nil, group: g))
            }
        }
        return out
    }

    @discardableResult
    package func step(examples: [BoNSFTExample], model: GPT, optimizer: inout AdamW, currentVersion: Int,
                      learningRate: Float? = nil) -> UpdateStats {
        PolicyGradient.update(model: model, optimizer: &optimizer, sequences: sequences(examples, currentVersion: currentVersion),
                              config: config.update, learningRate: learningRate)
    }
}
