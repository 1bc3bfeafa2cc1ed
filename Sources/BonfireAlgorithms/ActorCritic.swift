// Off-policy actor-critic with V-trace targets (IMPALA, Espeholt et al. 2018) for vector-observation environments.
//
// Actors send `EpisodeChunk`s: T consecutive steps of one environment, each with the behaviour log-prob
// log μ(a_t|x_t) and the policy version that chose it (actors lag the learner). The learner, for a batch of chunks
// with N steps in total, runs the MLP on every observation (plus each chunk's bootstrap observation), computes the
// V-trace targets v_t and advantages A_t (VTrace.swift; targets are constants: no gradient flows through them) and
// minimises
//   L(θ) = (1/N) Σ_t [ −A_t · log π_θ(a_t|x_t)                       policy loss
//                      + c_v · ½ (V_θ(x_t) − v_t)²                     value loss, c_v = valueCoefficient
//                      − c_H · H(π_θ(·|x_t)) ]                         entropy bonus, c_H = entropyCoefficient
// Gradients w.r.t. the logits z of step t (p = softmax z, H = −Σ p log p):
//   ∂/∂z_j [−A log p_a] = −A (1[j = a] − p_j),   ∂/∂z_j [−c_H H] = c_H p_j (log p_j + H),   ∂/∂V = c_v (V − v_t)
// then global grad-norm clipping and one AdamW step; every update increments the policy version.
//
// Chunk rules (they match the EpisodeBatch wire message, which carries one bootstrap observation):
//   - a chunk may hold several episodes joined at terminations (done_t), but a truncation may only be its LAST step;
//   - `bootstrapObservation` is x_T, the observation after the last step (for a truncation: the final observation
//     of the cut episode), and is empty exactly when the last step terminated.

import BonfireMath
import BonfireModel
import BonfireTasks

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// T consecutive steps of one environment, as an actor sends them to the learner.
package struct EpisodeChunk: Codable, Sendable, Equatable {
    /// Environment name ("gridworld", …).
    package var env: String
    /// D
    package var observationSize: Int
    /// (T, D) row-major: x_0 … x_{T−1}.
    package var observations: [Float]
    /// (T)
    package var actions: [Int]
    /// (T)
    package var rewards: [Float]
    /// (T) the episode terminated after step t.
    package var dones: [Bool]
    /// (T) the episode was truncated after step t (only allowed on the last step).
    package var truncations: [Bool]
    /// (T) log μ(a_t | x_t) under the behaviour policy.
    package var behaviourLogProbs: [Float]
    /// (T) policy version that chose a_t.
    package var behaviourVersions: [UInt64]
    /// (D) x_T, or empty when the last step terminated.
    package var bootstrapObservation: [Float]

    package init(env: String, observationSize: Int, observations: [Float] = [], actions: [Int] = [],
                 rewards: [Float] = [], dones: [Bool] = [], truncations: [Bool] = [], behaviourLogProbs: [Float] = [],
                 behaviourVersions: [UInt64] = [], bootstrapObservation: [Float] = []) {
        self.env = env; self.observationSize = observationSize; self.observations = observations
        self.actions = actions; self.rewards = rewards; self.dones = dones; self.truncations = truncations
        self.behaviourLogProbs = behaviourLogProbs; self.behaviourVersions = behaviourVersions
        self.bootstrapObservation = bootstrapObservation
    }

    /// T
    package var count: Int { actions.count }

    /// Appends one step.
    package mutating func append(observation: [Float], action: Int, reward: Float, done: Bool, truncated: Bool,
                                 behaviourLogProb: Float, behaviourVersion: UInt64) {
        precondition(observation.count == observationSize,
                     "EpisodeChunk.append: observation has \(observation.count) floats, D = \(observationSize)")
        observations += observation; actions.append(action); rewards.append(reward); dones.append(done)
        truncations.append(truncated); behaviourLogProbs.append(behaviourLogProb)
        behaviourVersions.append(behaviourVersion)
    }

    /// Checks shapes and the chunk rules; the message says what is wrong (chunks arrive from other processes).
    package func validate(actionCount: Int? = nil) throws(ActorCriticError) {
        let t = count, d = observationSize
        guard t > 0 else { throw ActorCriticError("EpisodeChunk(\(env)): empty chunk; actors must send at least one step") }
        guard observations.count == t * d, rewards.count == t, dones.count == t, truncations.count == t,
              behaviourLogProbs.count == t, behaviourVersions.count == t else {
            throw ActorCriticError("EpisodeChunk(\(env)): per-step arrays disagree with T = \(t), D = \(d) (observations \(observations.count), rewards \(rewards.count), dones \(dones.count), truncations \(truncations.count), logprobs \(behaviourLogProbs.count), versions \(behaviourVersions.count))")
        }
        if let i = (0..<t).first(where: { dones[$0] && truncations[$0] }) {
            throw ActorCriticError("EpisodeChunk(\(env)): step \(i) is both done and truncated; set only one")
        }
        if let i = (0..<(t - 1)).first(where: { truncations[$0] }) {
            throw ActorCriticError("EpisodeChunk(\(env)): truncation at step \(i) of \(t); actors must end the chunk at a truncation")
        }
        if dones[t - 1] != bootstrapObservation.isEmpty || (!bootstrapObservation.isEmpty && bootstrapObservation.count != d) {
            throw ActorCriticError("EpisodeChunk(\(env)): bootstrap observation has \(bootstrapObservation.count) floats; need D = \(d) unless the last step terminated (then none)")
        }
        if let a = actionCount, let bad = actions.first(where: { $0 < 0 || $0 >= a }) {
            throw ActorCriticError("EpisodeChunk(\(env)): action \(bad) outside 0..<\(a); actor and learner disagree on the environment")
        }
    }
}

package struct ActorCriticError: Error, CustomStringConvertible, Equatable {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}

package struct ActorCriticConfig: Codable, Sendable, Equatable {
    /// γ, ρ̄, c̄, λ of the V-trace targets. Defaults γ 0.99, ρ̄ = c̄ = 1, λ = 1.
    package var vtrace = VTrace.Parameters()
    /// c_v, weight of the value loss. Default 0.5.
    package var valueCoefficient: Float = 0.5
    /// c_H, weight of the entropy bonus. Default 0.01.
    package var entropyCoefficient: Float = 0.01
    /// AdamW learning rate. Default 1e-3.
    package var learningRate: Float = 1e-3
    /// AdamW β₂. Default 0.999.
    package var beta2: Float = 0.999
    /// Global grad-norm clip (0 disables). Default 1.
    package var maxGradNorm: Float = 1
    package init() {}
}

/// Metrics of one update (keys in logs: loss/policy, loss/value, policy/entropy, vtrace/rho_mean, lag/mean).
package struct ActorCriticStats: Sendable, Equatable {
    package var steps = 0
    package var policyLoss: Double = 0
    package var valueLoss: Double = 0
    package var entropy: Double = 0
    package var meanRho: Double = 0
    package var meanLag: Double = 0
    package var gradNorm: Float = 0
}

/// Per-step V-trace targets of a batch, flattened in chunk order: v_t and A_t, each (N).
package struct ActorCriticTargets: Sendable, Equatable {
    package var vs: [Double]
    package var advantages: [Double]
}

package final class ActorCriticLearner: @unchecked Sendable {
    package let net: MLP
    package var config: ActorCriticConfig
    package var optimizer: AdamW
    /// Incremented on every update (the version actors tag their steps with).
    package var version: UInt64 = 0

    package init(net: MLP, config: ActorCriticConfig = ActorCriticConfig()) {
        self.net = net; self.config = config
        optimizer = AdamW(learningRate: config.learningRate, beta1: 0.9, beta2: config.beta2, eps: 1e-8, weightDecay: 0)
    }

    /// Rows fed to the network: each chunk's T observations, then its bootstrap observation if any.
    private func stack(_ chunks: [EpisodeChunk]) -> (rows: [Float], count: Int) {
        var rows: [Float] = [], count = 0
        for c in chunks {
            rows += c.observations; count += c.count
            if !c.bootstrapObservation.isEmpty { rows += c.bootstrapObservation; count += 1 }
        }
        return (rows, count)
    }

    /// Forward pass + V-trace targets (constants) for a batch. Also returns logits/values of every stacked row.
    package func targets(_ chunks: [EpisodeChunk]) -> (targets: ActorCriticTargets, rhos: [Double], logits: [Float], values: [Float]) {
        let A = net.config.actionCount
        let (rows, count) = stack(chunks)
        let (logits, values) = net.forward(rows, batch: count)
        var vs: [Double] = [], adv: [Double] = [], rhos: [Double] = []
        var r = 0
        for c in chunks {
            let T = c.count
            let v = (0..<T).map { Double(values[r + $0]) }
            let target = (0..<T).map { MLP.logSoftmax(logits, row: r + $0, count: A)[c.actions[$0]] }
            let boot = c.bootstrapObservation.isEmpty ? 0 : Double(values[r + T])
            let out = VTrace.compute(targetLogProbs: target, behaviourLogProbs: c.behaviourLogProbs.map(Double.init),
                                     rewards: c.rewards.map(Double.init), values: v,
                                     nextValues: VTrace.shifted(values: v, bootstrap: boot), dones: c.dones,
                                     truncations: c.truncations, parameters: config.vtrace)
            vs += out.vs; adv += out.pgAdvantages; rhos += out.rhos
            r += T + (c.bootstrapObservation.isEmpty ? 0 : 1)
        }
        return (ActorCriticTargets(vs: vs, advantages: adv), rhos, logits, values)
    }

    /// L(θ) with the targets held fixed (the function whose gradient `accumulateGradients` computes).
    package func surrogateLoss(_ chunks: [EpisodeChunk], targets: ActorCriticTargets) -> Double {
        let A = net.config.actionCount
        let (rows, count) = stack(chunks)
        let (logits, values) = net.forward(rows, batch: count)
        let N = Double(targets.vs.count)
        var loss = 0.0, r = 0, n = 0
        for c in chunks {
            for t in 0..<c.count {
                let lp = MLP.logSoftmax(logits, row: r + t, count: A)
                var h = 0.0
                for j in 0..<A { h -= exp(lp[j]) * lp[j] }
                let dv = Double(values[r + t]) - targets.vs[n]
                loss += -targets.advantages[n] * lp[c.actions[t]] + Double(config.valueCoefficient) * 0.5 * dv * dv
                    - Double(config.entropyCoefficient) * h
                n += 1
            }
            r += c.count + (c.bootstrapObservation.isEmpty ? 0 : 1)
        }
        return loss / N
    }

    /// Forward, V-trace, backward: accumulates ∂L/∂θ into `net.grads` (call `net.zeroGrad()` first).
    @discardableResult
    package func accumulateGradients(_ chunks: [EpisodeChunk], targets fixed: ActorCriticTargets? = nil) -> (ActorCriticStats, ActorCriticTargets) {
        let A = net.config.actionCount
        var (tg, rhos, logits, values) = targets(chunks)
        if let fixed { tg = fixed }
        let rowCount = values.count
        let N = tg.vs.count
        precondition(N > 0, "ActorCritic: empty batch")
        var dLogits = [Float](repeating: 0, count: rowCount * A), dValues = [Float](repeating: 0, count: rowCount)
        var stats = ActorCriticStats()
        stats.steps = N
        let invN = 1 / Double(N), cv = Double(config.valueCoefficient), ch = Double(config.entropyCoefficient)
        var r = 0, n = 0
        for c in chunks {
            for t in 0..<c.count {
                let row = r + t
                let lp = MLP.logSoftmax(logits, row: row, count: A)
                var h = 0.0
                for j in 0..<A { h -= exp(lp[j]) * lp[j] }
                let a = c.actions[t], adv = tg.advantages[n]
                for j in 0..<A {
                    let p = exp(lp[j])
                    let g = -adv * ((j == a ? 1 : 0) - p) + ch * p * (lp[j] + h)
                    dLogits[row * A + j] = Float(g * invN)
                }
                let dv = Double(values[row]) - tg.vs[n]
                dValues[row] = Float(cv * dv * invN)
                stats.policyLoss += -adv * lp[a] * invN
                stats.valueLoss += 0.5 * dv * dv * invN
                stats.entropy += h * invN
                stats.meanRho += rhos[n] * invN
                stats.meanLag += Double(version &- min(version, c.behaviourVersions[t])) * invN
                n += 1
            }
            r += c.count + (c.bootstrapObservation.isEmpty ? 0 : 1)
        }
        net.backward(dLogits: dLogits, dValues: dValues)
        return (stats, tg)
    }

    /// One learner update on a batch of chunks: gradients, clipping, AdamW, version += 1.
    @discardableResult
    package func update(_ chunks: [EpisodeChunk]) throws(ActorCriticError) -> ActorCriticStats {
        for c in chunks {
            try c.validate(actionCount: net.config.actionCount)
            guard c.observationSize == net.config.inputSize else {
                throw ActorCriticError("EpisodeChunk(\(c.env)): D = \(c.observationSize) but the network expects \(net.config.inputSize)")
            }
        }
        net.zeroGrad()
        var (stats, _) = accumulateGradients(chunks)
        stats.gradNorm = clipGradNorm(&net.grads, maxNorm: config.maxGradNorm)
        optimizer.update(params: &net.params, grads: net.grads, learningRate: config.learningRate)
        version += 1
        return stats
    }
}
