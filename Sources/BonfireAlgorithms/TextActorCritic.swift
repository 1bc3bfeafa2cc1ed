// Actor-critic with V-trace for multi-turn TEXT environments (GuessNumber), with the transformer policy: the same
// GPT that samples BoN groups, here with its scalar head as the value function.
//
// Objective (per episode, undiscounted by default):  max_θ E_π[ Σ_t r_t ],  one action = one token a_t ~ π_θ(·|x_t),
// x_t = the transcript so far (token ids, BOS first). For each episode, with behaviour log-probs μ(a_t|x_t) recorded
// at sampling time, the current log-probs π(a_t|x_t) and V(x_t) from the scalar head (V after the last step = 0:
// text episodes terminate):
//   (v_s, A_s) = VTrace(log π(a|x), log μ(a|x), r, V(x_t), V(x_{t+1}), done; ρ̄, c̄, γ)          (VTrace.swift)
//   loss = − Σ_t A_t log π(a_t|x_t) / B  − β Σ_t H(π(·|x_t)) / B  +  c_v · ½ Σ_t (V(x_t) − v_t)² / B
// with B = episodes in the batch. The value term is c_v·½(V − v)², as in the MLP actor-critic (ActorCritic.swift).
import BonfireMath
import BonfireModel

/// One text episode: transcripts x_t (token ids), the token chosen at each turn, its behaviour log-prob and policy
/// version, and the rewards.
package struct TextEpisode: Codable, Sendable, Equatable {
    package var observations: [[Int]] = []
    package var actions: [Int] = []
    package var behaviourLogProbs: [Float] = []
    package var rewards: [Double] = []
    package var behaviourVersion = 0
    package init() {}
}

package struct TextActorCriticConfig: Codable, Sendable, Equatable {
    /// V-trace parameters; γ = 1 by default (episodes are a few turns long).
    package var vtrace = VTrace.Parameters(gamma: 1)
    /// Entropy bonus β. Default 0.01.
    package var entropyCoefficient: Float = 0.01
    /// Value loss coefficient c_v (on ½(V − v)²). Default 0.5.
    package var valueCoefficient: Float = 0.5
    /// Gradient-norm clip (0 = off). Default 1.
    package var maxGradNorm: Float = 1
    package init() {}
}

package enum TextActorCritic {
    /// One update of `model` (scalar head on) on `episodes`; returns (policy loss, value loss, entropy, mean ρ,
    /// grad norm).
    @discardableResult
    package static func update(model: GPT, optimizer: inout AdamW, episodes: [TextEpisode],
                               config: TextActorCriticConfig) -> (policyLoss: Double, valueLoss: Double, entropy: Double,
                                                                  meanRho: Double, gradNorm: Float) {
        precondition(model.config.scalarHead, "TextActorCritic: the model needs scalarHead (the value function)")
        precondition(!episodes.isEmpty, "TextActorCritic.update: empty batch")
        let xs = episodes.flatMap(\.observations)                 // (Σ T) transcripts
        let seqs = episodes.flatMap { e in e.actions.indices.map { e.observations[$0] + [e.actions[$0]] } }
        let values = model.scalarForward(xs).map(Double.init)
        let current = model.tokenLogProbs(seqs, temperature: 1).map { Double($0.last!) }   // log π(a_t|x_t)
        var adv: [Double] = [], targets: [Double] = [], rhoSum = 0.0
        var offset = 0
        for e in episodes {
            let T = e.actions.count
            let v = Array(values[offset..<(offset + T)])
            let out = VTrace.compute(targetLogProbs: Array(current[offset..<(offset + T)]),
                                     behaviourLogProbs: e.behaviourLogProbs.map(Double.init), rewards: e.rewards, values: v,
                                     nextValues: Array(v.dropFirst()) + [0], dones: (0..<T).map { $0 == T - 1 },
                                     truncations: [Bool](repeating: false, count: T), parameters: config.vtrace)
            adv += out.pgAdvantages; targets += out.vs; rhoSum += out.rhos.reduce(0, +)
            offset += T
        }
        let B = Float(episodes.count)
        model.zeroGrad()
        // Policy: weight only the action token (the last position of each sequence).
        let stats = model.forwardBackward(seqs, temperature: 1, entropyCoefficient: config.entropyCoefficient / B) { lps in
            lps.enumerated().map { b, row in
                var w = [Float](repeating: 0, count: row.count)
                w[row.count - 1] = Float(adv[b]) / B
                return w
            }
        }
        // Value: c_v · ½(V − v)² on the transcripts.
        var valueLoss = 0.0
        model.scalarForwardBackward(xs) { scores in
            scores.enumerated().map { i, s in
                let d = s - Float(targets[i])
                valueLoss += 0.5 * Double(d * d) / Double(B)
                return config.valueCoefficient * d / B
            }
        }
        let norm = clipGradNorm(&model.grads, maxNorm: config.maxGradNorm)
        optimizer.update(params: &model.params, grads: model.grads)
        let policyLoss = -zip(adv, current).reduce(0) { $0 + $1.0 * $1.1 } / Double(B)
        return (policyLoss, valueLoss, Double(stats.meanEntropy), rhoSum / Double(max(1, adv.count)), norm)
    }
}
