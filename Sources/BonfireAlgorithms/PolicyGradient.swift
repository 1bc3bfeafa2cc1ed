// What the learners share: the BoN group/batch (what actors send), tie-aware BoN selection, per-sample group
// weights of the BoN policy-gradient identities (SPEC-bon.md §2.2), importance weights for stale samples, and the one
// update step that turns per-sequence weights into per-token weights and calls the policy's forwardBackward + AdamW.
// The policy is `any LanguageModel`: Bonfire's GPT or a Hugging Face model (LlamaModel, GPT-2 as GPT).
//
// A group estimator maps one BoN group (scores r_i, rewards R_i, i = 1..N) to weights w_i so that the gradient
// estimate is Σ_i w_i ∇log π(y_i|x) (each estimator lives in its algorithm file). ExactBoN.expectedGradient enumerates all N-tuples of a tabular policy to get the
// exact expectation of these very functions (the learners and the tests share them).
//   R̄(S)     = mean R over the maximal-r members of S (the expected R of the BoN pick under uniform tie-breaking)
//   nSample     w_i = R̄(all)                           identity 1, unbiased, sum over i
//   leaveOneOut w_i = R̄(all) − R̄(all ∖ i)              identity 2, unbiased; R̄(∅) = 0 (so N = 1 is plain REINFORCE)
//   selectedOnly w_i = 1{i ∈ W} R_i/|W|                 identity 3, BIASED (drops E_{π_bon}[R ∇log(π_bon/π)])
//   rloo        w_i = (R_i − mean_{j≠i} R_j)/G          N′ = 1 policy gradient with leave-one-out baseline
// Stale samples: ρ_i = exp(Σ_t log π_cur(y_i,t) − log π_beh(y_i,t)), truncated at ρ̄ (IMPALA-style): per sequence
// (w_i ← min(ρ̄, ρ_i)·w_i; biased for group estimators, low variance), or per group (w_i ← min(ρ̄, Π_j ρ_j)·w_i, the
// exact group likelihood ratio before truncation). Samples of the current version have ρ = 1 exactly.
// The update: sequence = [BOS] + prompt + response (BOS = UpdateConfig.bos, the policy's); token t of the response sits at log-prob index |prompt| + t.
// loss = −Σ_seq Σ_t w_tok·log π(y_t) with w_tok = ρ·w_seq (or the PPO-clipped A·ratio_t, when enabled) plus the
// k3 KL gradient β(π_ref/π − 1)/#seq per token when a reference policy is given.

import BonfireMath
import BonfireModel
import BonfireTasks

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

// MARK: data

/// One BoN group: the N responses one policy version sampled for one prompt (what an actor sends to the learner).
package struct BoNGroup: Sendable, Codable, Equatable {
    /// Prompt token ids (no BOS).
    package var promptTokens: [Int]
    /// N responses, token ids including the final EOS when present.
    package var responses: [[Int]]
    /// log π_beh(y_t | x, y_<t) per response token (same count as responses[i]), at the sampling temperature.
    package var behaviourLogProbs: [[Float]]
    /// Policy version that sampled the group.
    package var behaviourVersion: Int
    /// Verifier scores r(x, y_i): what Best-of-N selects by.
    package var scores: [Double]
    /// Environment rewards R(x, y_i): the task's ground truth.
    package var rewards: [Double]
    /// Train-split index of the prompt (TaskItem.index): one integer item index end to end (wire: item_id).
    package var itemIndex: Int

    package init(promptTokens: [Int], responses: [[Int]], behaviourLogProbs: [[Float]], behaviourVersion: Int,
                 scores: [Double], rewards: [Double], itemIndex: Int) {
        precondition(responses.count == behaviourLogProbs.count && responses.count == scores.count
                     && responses.count == rewards.count,
                     "BoNGroup: responses \(responses.count), logProbs \(behaviourLogProbs.count), scores \(scores.count), rewards \(rewards.count) must agree")
        self.promptTokens = promptTokens; self.responses = responses; self.behaviourLogProbs = behaviourLogProbs
        self.behaviourVersion = behaviourVersion; self.scores = scores; self.rewards = rewards; self.itemIndex = itemIndex
    }

    package var n: Int { responses.count }
}

package struct BoNBatch: Sendable, Codable, Equatable {
    package var groups: [BoNGroup]
    package init(groups: [BoNGroup]) { self.groups = groups }
    package var sampleCount: Int { groups.reduce(0) { $0 + $1.n } }
}

// MARK: selection and group weights

package enum BoNSelection {
    /// Indices with the maximal score (all of them: ties are broken uniformly at random downstream).
    package static func winners(_ scores: [Double]) -> [Int] {
        guard let m = scores.max() else { return [] }
        return scores.indices.filter { scores[$0] == m }
    }

    /// R̄: expected reward of the BoN pick under uniform tie-breaking; 0 for an empty group.
    package static func bestReward(scores: [Double], rewards: [Double]) -> Double {
        let w = winners(scores)
        if w.isEmpty { return 0 }
        return w.reduce(0) { $0 + rewards[$1] } / Double(w.count)
    }

    /// R̄ of the group without sample i.
    package static func bestReward(scores: [Double], rewards: [Double], excluding i: Int) -> Double {
        var s = scores, r = rewards
        s.remove(at: i); r.remove(at: i)
        return bestReward(scores: s, rewards: r)
    }
}

/// Per-sample weights w_i of the group estimators: each lives in its algorithm's file (RL.swift: `rloo`,
/// `meanBaseline`; BoNRL.swift: `leaveOneOut`, `nSample`, `selectedOnly`, `variational`).
package enum GroupWeights {}

// MARK: importance weights

package struct ImportanceConfig: Codable, Sendable, Equatable {
    package enum Mode: String, Codable, Sendable, CaseIterable {
        /// Ignore staleness (on-policy assumption).
        case none
        /// ρ_i per response, truncated at ρ̄ (default).
        case perSequence
        /// Π_j ρ_j over the group (the group's exact likelihood ratio), truncated at ρ̄.
        case group
    }
    /// Default perSequence.
    package var mode: Mode = .perSequence
    /// Truncation ρ̄. Default 1.
    package var rhoBar: Double = 1
    package init(mode: Mode = .perSequence, rhoBar: Double = 1) { self.mode = mode; self.rhoBar = rhoBar }
}

package enum ImportanceWeights {
    /// exp(Σ_t (current_t − behaviour_t)), not truncated.
    package static func sequenceRatio(current: ArraySlice<Float>, behaviour: [Float]) -> Double {
        precondition(current.count == behaviour.count,
                     "sequenceRatio: current has \(current.count) log-probs, behaviour \(behaviour.count)")
        var s = 0.0
        for (c, b) in zip(current, behaviour) { s += Double(c) - Double(b) }
        return exp(s)
    }
}

// MARK: the update step

/// One sequence of an update with its per-sequence weight (advantage-like, already divided by the batch normaliser).
package struct WeightedSequence: Sendable {
    package var promptTokens: [Int]
    package var response: [Int]
    package var weight: Double
    /// log π_beh per response token; nil = current policy (ρ = 1).
    package var behaviourLogProbs: [Float]?
    /// log π_ref per response token (KL penalty); nil = none.
    package var referenceLogProbs: [Float]?
    /// Sequences with the same group id share a group importance weight.
    package var group: Int

    package init(promptTokens: [Int], response: [Int], weight: Double, behaviourLogProbs: [Float]? = nil,
                 referenceLogProbs: [Float]? = nil, group: Int = 0) {
        self.promptTokens = promptTokens; self.response = response; self.weight = weight
        self.behaviourLogProbs = behaviourLogProbs; self.referenceLogProbs = referenceLogProbs; self.group = group
    }

    /// The sequence the policy scores: [bos] + prompt + response.
    package func tokens(bos: Int) -> [Int] { [bos] + promptTokens + response }
    /// The sequence with the character tokenizer's BOS.
    package var tokens: [Int] { tokens(bos: Tokenizer.bos) }
}

package struct UpdateConfig: Codable, Sendable, Equatable {
    /// Sampling/training temperature of log π. Default 1.
    package var temperature: Float = 1
    /// Entropy bonus coefficient on response tokens with nonzero weight. Default 0.
    package var entropyCoefficient: Float = 0
    /// Global gradient-norm clip (0 = off). Default 1.
    package var maxGradNorm: Float = 1
    /// Importance correction for stale samples (ignored when ppoClip > 0). Default perSequence, ρ̄ = 1.
    package var importance = ImportanceConfig()
    /// PPO ratio clip ε (0 = off). Default 0.
    package var ppoClip: Double = 0
    /// KL(π‖π_ref) coefficient β (k3 estimator); needs referenceLogProbs. Default 0.
    package var klCoefficient: Double = 0
    /// Token every sequence starts with: the policy's BOS. Default the character tokenizer's (1); a Hugging Face
    /// policy uses its config.json bos_token_id (TextFormat).
    package var bos: Int = Tokenizer.bos
    package init() {}
}

package struct UpdateStats: Sendable {
    package var loss: Float = 0
    package var gradNorm: Float = 0
    package var meanEntropy: Float = 0
    package var meanImportanceRatio: Double = 1
    package var clippedFraction: Double = 0
    package var sequences = 0
    package var tokens = 0
    /// Sum of |sequence weight| (0 means the batch carried no learning signal).
    package var weightMass: Double = 0
}

package enum PolicyGradient {
    /// Token weights for one sequence given its current full log-prob row (count = len − 1).
    /// Returns (weights, ratio used, clipped token count).
    static func tokenWeights(_ s: WeightedSequence, current: [Float], groupRatio: Double?,
                             config: UpdateConfig, klScale: Double) -> (w: [Float], ratio: Double, clipped: Int) {
        let P = s.promptTokens.count, L = s.response.count
        precondition(current.count == P + L, "tokenWeights: log-prob row has \(current.count) entries, need \(P + L)")
        var w = [Float](repeating: 0, count: P + L)
        var ratio = 1.0, clipped = 0
        if config.ppoClip > 0, let beh = s.behaviourLogProbs {
            let eps = config.ppoClip, A = s.weight
            for t in 0..<L {
                let r = exp(Double(current[P + t]) - Double(beh[t]))
                if (A > 0 && r > 1 + eps) || (A < 0 && r < 1 - eps) { clipped += 1; continue }
                w[P + t] = Float(A * r)
            }
        } else {
            if let g = groupRatio { ratio = g }
            else if let beh = s.behaviourLogProbs, config.importance.mode == .perSequence {
                ratio = min(config.importance.rhoBar, ImportanceWeights.sequenceRatio(current: current[P...], behaviour: beh))
            }
            let a = Float(ratio * s.weight)
            for t in 0..<L { w[P + t] = a }
        }
        if config.klCoefficient > 0, let ref = s.referenceLogProbs {
            for t in 0..<L {
                w[P + t] += Float(config.klCoefficient * klScale * (exp(Double(ref[t]) - Double(current[P + t])) - 1))
            }
        }
        return (w, ratio, clipped)
    }

    /// One AdamW step on weighted sequences: zeroGrad, forwardBackward with per-token weights, clip, update.
    /// Sequences with zero weight and no KL term are skipped (no forward), except in `.group` importance mode, where
    /// every sequence of a group enters the group's likelihood ratio.
    @discardableResult
    package static func update(model: any LanguageModel, optimizer: inout AdamW, sequences all: [WeightedSequence],
                               config: UpdateConfig, learningRate: Float? = nil) -> UpdateStats {
        let groupMode = config.ppoClip == 0 && config.importance.mode == .group
        let seqs = all.filter {
            $0.weight != 0 || (config.klCoefficient > 0 && $0.referenceLogProbs != nil)
                || (groupMode && $0.behaviourLogProbs != nil)
        }
        var stats = UpdateStats()
        stats.sequences = seqs.count
        stats.weightMass = seqs.reduce(0) { $0 + abs($1.weight) }
        model.zeroGrad()
        if seqs.isEmpty { return stats }
        let klScale = 1 / Double(max(1, all.count))
        var ratioSum = 0.0, clipped = 0, tokens = 0
        let fs = model.forwardBackward(seqs.map { $0.tokens(bos: config.bos) }, temperature: config.temperature,
                                       entropyCoefficient: config.entropyCoefficient) { lps in
            // Group ratios (product over all the group's stale sequences), when requested.
            var groupRatio: [Int: Double] = [:]
            if groupMode {
                var logSum: [Int: Double] = [:]
                for (b, s) in seqs.enumerated() {
                    guard let beh = s.behaviourLogProbs else { continue }
                    logSum[s.group, default: 0] += log(ImportanceWeights.sequenceRatio(
                        current: lps[b][s.promptTokens.count...], behaviour: beh))
                }
                for (g, l) in logSum { groupRatio[g] = min(config.importance.rhoBar, exp(l)) }
            }
            return seqs.enumerated().map { b, s in
                let (w, r, c) = tokenWeights(s, current: lps[b], groupRatio: groupRatio[s.group], config: config,
                                             klScale: klScale)
                ratioSum += r; clipped += c; tokens += s.response.count
                return w
            }
        }
        stats.loss = fs.loss
        stats.meanEntropy = fs.meanEntropy
        stats.meanImportanceRatio = ratioSum / Double(seqs.count)
        stats.clippedFraction = tokens > 0 ? Double(clipped) / Double(tokens) : 0
        stats.tokens = tokens
        stats.gradNorm = clipGradNorm(&model.grads, maxNorm: config.maxGradNorm)
        optimizer.update(params: &model.params, grads: model.grads, learningRate: learningRate)
        return stats
    }

    /// Turns groups and their per-sample weights (one array per group) into weighted sequences, dividing by the
    /// number of groups (the gradient is the mean over prompts of the per-prompt estimate).
    package static func sequences(batch: BoNBatch, weights: [[Double]], currentVersion: Int,
                                  referenceLogProbs: [[[Float]]]? = nil) -> [WeightedSequence] {
        precondition(weights.count == batch.groups.count,
                     "sequences: \(weights.count) weight rows for \(batch.groups.count) groups")
        let scale = 1 / Double(max(1, batch.groups.count))
        var out: [WeightedSequence] = []
        for (g, group) in batch.groups.enumerated() {
            precondition(weights[g].count == group.n, "sequences: group \(g) has \(group.n) responses, \(weights[g].count) weights")
            for i in 0..<group.n {
                out.append(WeightedSequence(
                    promptTokens: group.promptTokens, response: group.responses[i], weight: weights[g][i] * scale,
                    behaviourLogProbs: group.behaviourVersion == currentVersion ? nil : group.behaviourLogProbs[i],
                    referenceLogProbs: referenceLogProbs?[g][i], group: g))
            }
        }
        return out
    }
}

// MARK: learners that turn a BoNBatch into per-sample weights

/// A learner whose update is: per-group sample weights → weighted sequences → one AdamW step.
/// RL, BoN-RL and BoN-RLB conform; SFT and BoN-SFT train on demonstrations and have their own `step`.
package protocol GroupLearner: Sendable {
    /// Algorithm name as used by `bonfire train --algo`.
    var name: String { get }
    /// The update step's options (temperature, clipping, importance weights, PPO, KL).
    var update: UpdateConfig { get }
    /// Per-sample weights w_i of one group: the gradient estimate for the prompt is Σ_i w_i ∇log π(y_i|x).
    func groupWeights(_ group: BoNGroup) -> [Double]
}

extension GroupLearner {
    /// One update on a batch: weights of every group (mean over groups), importance/PPO/KL per UpdateConfig.
    /// `reference` supplies log π_ref for the KL term (used only when update.klCoefficient > 0).
    @discardableResult
    package func step(batch: BoNBatch, model: any LanguageModel, optimizer: inout AdamW, currentVersion: Int,
                      reference: (any LanguageModel)? = nil, learningRate: Float? = nil) -> UpdateStats {
        let w = batch.groups.map(groupWeights)
        var refLPs: [[[Float]]]? = nil
        if update.klCoefficient > 0, let ref = reference {
            refLPs = batch.groups.map { g in
                let lps = ref.tokenLogProbs(g.responses.map { [update.bos] + g.promptTokens + $0 },
                                            temperature: update.temperature)
                return lps.map { Array($0[g.promptTokens.count...]) }
            }
        }
        let seqs = PolicyGradient.sequences(batch: batch, weights: w, currentVersion: currentVersion,
                                            referenceLogProbs: refLPs)
        return PolicyGradient.update(model: model, optimizer: &optimizer, sequences: seqs, config: update,
                                     learningRate: learningRate)
    }
}
