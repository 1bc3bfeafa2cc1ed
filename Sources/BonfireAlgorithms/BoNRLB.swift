// BoN-RLB and BoN-RLB(P): Best-of-N policy gradient for a binary reward R ∈ {0,1} with the verifier equal to the
// reward, i.e. the objective is pass@N (SPEC-bon.md §1.2d, §2.3, checks C4, C10, C12).
//
// Objective (one prompt, p = p_fail = P_π(R = 0)):  J = 1 − p^N,  ∇J = N p^{N−1} G,  G = E_π[R ∇log π].
// Weights: g⁺ = N p^{N−1}/(1−p^N) (correct), g⁻ = N p/(1−p) (incorrect), ḡ⁺ = N p^{N−1}(1−p)/(1−p^N) (positive-only).
// Every estimator below has expectation c(p)·G per prompt; c* = N p^{N−1} is the unbiased one.
//   .uniqueCorrect (default, BoN-RLB):  w_i = 1{i is the only correct sample of the N}. E = N p^{N−1} G exactly,
//        no estimate of p needed (= BoN-RL leave-one-out identity 2 with r = R).
//   .bonWeighted: the BoN pick y* (a correct sample if any, else a failure, uniform among them; we Rao-Blackwellise by
//        spreading the weight over all tied candidates) gets g⁺ (or ḡ⁺ if positiveOnly) when correct and
//        sign·g⁻ (or sign·N with negativeWeight .constantN) when incorrect, 0 if positiveOnly.
//        c = w⁺(1−p^N)/(1−p) − w⁻ p^{N−1}:  ḡ⁺ only → c*;  (g⁺, +g⁻) → c*;  (g⁺, −g⁻) → c*(1+p)/(1−p) (biased,
//        reweights prompts towards hard ones);  (0, −N) → c*.
//   .policyWeighted: all N samples from π, (1/N)Σ_i [g⁺ R_i + sign·g⁻ (1−R_i)] ∇log π(y_i) (the unofficial trainer):
//        c = g⁺ − sign·g⁻, i.e. g⁺ + g⁻ with sign −1: biased.
// p is either estimated in-group, p̂ = (#fail + α)/(N + 2α) (α = smoothing; nonlinear weights of p̂ are biased), or
// fixed (tests and analysis). Weights are clipped at `clip` (0 = off), as g⁺ → ∞ and g⁻ → ∞ when p → 1.
// Defaults. BoN-RLB: .uniqueCorrect (exact, E = c*·G). BoN-RLB(P): the paper's positive-only form — .bonWeighted,
// positiveOnly, ḡ⁺ at the in-group p̂ = (#fail + ½)/(N + 1) on the BoN pick (α = ½). Decision (issue 13): BoN-RLB(P)
// must differ from BoN-RLB to be worth a row in the experiment, and the only unbiased weight on correct samples that is
// a function of #correct is 1{exactly one correct} (Bernstein uniqueness), i.e. BoN-RLB itself; so (P) keeps the
// paper's ḡ⁺(p̂) and we state its bias. Its c/c* (BoNRLBDefaultTests.testBoNRLBDefaultIsExactAndPositiveOnlyDefaultMatchesTheHeaderTable, exact
// over the binomial of #correct; c := the per-prompt scalar with E[Σ_i w_i ∇log π(y_i)] = c·G, c* := N p^{N−1}):
//     N′ \ p_fail  0.05      0.1      0.3      0.5      0.7      0.9     0.95     0.99 | max_p |c − c*| / max_p c*
//      2          3.38     1.95     1.00     0.81     0.73     0.68     0.67     0.67 |  0.33
//      4          41.8     11.0     1.90     1.02     0.73     0.59     0.56     0.55 |  0.46
//      8         1.6e4      733     11.4     2.38     1.01     0.59     0.53     0.49 |  0.51
//     16         2.8e9    4.4e6      597     18.1     2.45     0.71     0.56     0.48 |  0.54
//     32        1.0e20   1.9e14    2.1e6    1.4e3     18.7     1.14     0.69     0.48 |  0.55
// REMAINING BIAS (stated honestly): c > 0 for every p, so each prompt's step is still an ascent direction of its
// pass@N′, but prompts are reweighted: easy prompts (p_fail ≤ 0.3) get 10–10⁴× the weight ∇pass@N′ gives them at
// N′ = 4–8 (their c* is tiny, so in absolute terms the error is at most about half the largest per-prompt weight, the
// last column), hard prompts (p_fail ≥ 0.9) about half. Smaller α helps little (max|c − c*|/max c* at N′ = 8, p grid 1/200:
// α = 0.1 → 0.41, 0.25 → 0.45, 0.5 → 0.50, 1 → 0.58, 2 → 0.68; scratch Python over the same binomial formula), so α
// stays ½. The unbiased positive-only estimator is kept as the ablation `Config.positiveOnlyUniqueCorrect`
// (identical weights to BoN-RLB).
// N = 1: g⁺ = 1/(1−p), g⁻ = p/(1−p), ḡ⁺ = 1; uniqueCorrect gives w = R (REINFORCE on pass@1).

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

package struct BoNRLB: GroupLearner {
    package struct Config: Codable, Sendable, Equatable {
        package enum Estimator: String, Codable, Sendable, CaseIterable {
            case uniqueCorrect, bonWeighted, policyWeighted
        }
        package enum NegativeWeight: String, Codable, Sendable, CaseIterable {
            /// g⁻ = N p/(1−p).
            case gMinus
            /// the constant N.
            case constantN
        }
        package enum PFail: Codable, Sendable, Equatable {
            /// p̂ = (#fail + α)/(N + 2α).
            case inGroup(smoothing: Double)
            /// A known p (tests, analysis).
            case fixed(Double)
        }
        /// Which estimator. Default .uniqueCorrect (unbiased for ∇pass@N).
        package var estimator: Estimator = .uniqueCorrect
        /// BoN-RLB(P): weights only on correct samples (ḡ⁺ under .bonWeighted). Default false.
        package var positiveOnly = false
        /// Sign on the weight of incorrect samples: +1 is unbiased under π_bon, −1 is the secondary sources'. Default +1.
        package var negativeSign: Double = 1
        /// Magnitude on incorrect samples. Default .gMinus.
        package var negativeWeight: NegativeWeight = .gMinus
        /// How p_fail is obtained for the weighted estimators. Default in-group with α = 0.5.
        package var pFail: PFail = .inGroup(smoothing: 0.5)
        /// Clip |weight| at this value (0 = off). Default 0.
        package var clip: Double = 0
        /// R ≥ threshold counts as correct. Default 0.5.
        package var correctThreshold: Double = 0.5
        /// Update step options.
        package var update = UpdateConfig()
        package init() {}

        /// BoN-RLB(P) defaults (`algorithm.name = bon-rlb-p`): ḡ⁺ at the in-group p̂ with α = ½ on the BoN pick,
        /// positive-only. Biased by a per-prompt rescale c/c* (table in the file header).
        package static var positiveOnlyDefaults: Config {
            var c = Config()
            c.estimator = .bonWeighted
            c.positiveOnly = true
            c.pFail = .inGroup(smoothing: 0.5)
            return c
        }

        /// ABLATION: positive-only and unbiased, the unique-correct weight (the same weights as BoN-RLB's default).
        package static var positiveOnlyUniqueCorrect: Config {
            var c = Config()
            c.estimator = .uniqueCorrect
            c.positiveOnly = true
            return c
        }
    }

    package var config: Config
    package init(config: Config = Config()) { self.config = config }
    package var name: String { config.positiveOnly ? "bon-rlb-p" : "bon-rlb" }
    package var update: UpdateConfig { config.update }

    package func groupWeights(_ group: BoNGroup) -> [Double] { weights(rewards: group.rewards) }

    /// Per-sample weights of one group of N = rewards.count samples (file header).
    package func weights(rewards R: [Double]) -> [Double] {
        let n = R.count
        let correct = R.map { $0 >= config.correctThreshold }
        let nCorrect = correct.filter { $0 }.count
        var w = [Double](repeating: 0, count: n)
        func clipped(_ x: Double) -> Double { config.clip > 0 ? max(-config.clip, min(config.clip, x)) : x }
        switch config.estimator {
        case .uniqueCorrect:
            if nCorrect == 1 { w[correct.firstIndex(of: true)!] = clipped(1) }
            return w
        case .bonWeighted, .policyWeighted:
            let p: Double
            switch config.pFail {
            case .fixed(let v): p = v
            case .inGroup(let a): p = (Double(n - nCorrect) + a) / (Double(n) + 2 * a)
            }
            let wPos = config.positiveOnly ? BoNWeights.gBarPlus(p: p, n: n) : BoNWeights.gPlus(p: p, n: n)
            let mag = config.negativeWeight == .gMinus ? BoNWeights.gMinus(p: p, n: n) : Double(n)
            let wNeg = config.positiveOnly ? 0 : config.negativeSign * mag
            let f = (p.isFinite && p < 1) ? 1.0 : 0.0   // p = 1 (no smoothing, all fail): g's are infinite → no step
            if config.estimator == .bonWeighted {
                // BoN pick by R: the correct samples if any, else all; weight spread uniformly over the tie.
                let picks = nCorrect > 0 ? (0..<n).filter { correct[$0] } : Array(0..<n)
                for i in picks {
                    w[i] = f * clipped(nCorrect > 0 ? wPos : wNeg) / Double(picks.count)
                }
            } else {
                for i in 0..<n { w[i] = f * clipped(correct[i] ? wPos : wNeg) / Double(n) }
            }
            return w.map { $0.isFinite ? $0 : 0 }
        }
    }
}
