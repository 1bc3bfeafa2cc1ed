// Actor-critic with V-trace for a multi-turn TEXT environment (GuessNumber), with the transformer policy: the same
// GPT that samples BoN groups, here with its scalar head as the value function. Single process.
//
// Objective (per episode, undiscounted by default):  max_θ E_π[ Σ_t r_t ],  one action = one token a_t ~ π_θ(·|x_t),
// x_t = the transcript so far (token ids). For each collected episode, with behaviour log-probs μ(a_t|x_t) recorded at
// sampling time and V(x_t) from the scalar head:
//   (v_s, A_s) = VTrace(log π(a|x), log μ(a|x), r, V(x_t), V(x_{t+1}), done, truncated; ρ̄, c̄, γ)   (VTrace.swift)
//   loss = − Σ_t A_t log π(a_t|x_t) / B  − β Σ_t H(π(·|x_t)) / B  +  c_v Σ_t (V(x_t) − v_t)² / B
// Episodes are collected with the parameters of the last update (lag ≤ 1 version), so ρ = 1 up to rounding; V-trace
// is kept so the learner is the same one the runtime would use with lagging actors.
import BonfireMath
import BonfireModel
import BonfireTasks
import Foundation

package struct TextEnvTrainingConfig: Codable, Sendable, Equatable {
    /// The environment. Default GuessNumber (0–9, 6 turns).
    package var guess = GuessNumber.Config()
    /// Policy/value transformer (scalar head on). Default L2 d64 h4, context 32.
    package var model = GPTConfig(vocabSize: 64, contextLength: 32, layers: 2, heads: 4, dim: 64, scalarHead: true)
    /// Episodes per update. Default 32.
    package var episodesPerUpdate = 32
    /// Updates. Default 300.
    package var updates = 300
    /// AdamW learning rate. Default 1e-3.
    package var learningRate: Float = 1e-3
    /// Entropy bonus β. Default 0.01.
    package var entropyCoefficient: Float = 0.01
    /// Value loss coefficient c_v. Default 0.5.
    package var valueCoefficient: Float = 0.5
    /// Gradient-norm clip. Default 1.
    package var maxGradNorm: Float = 1
    /// V-trace parameters; γ = 1 by default (episodes are at most `maxTurns` long).
    package var vtrace = VTrace.Parameters(gamma: 1)
    /// Run seed. Default 1.
    package var seed: UInt64 = 1
    /// Episodes for the final evaluation (sampled actions). Default 500.
    package var evalEpisodes = 500
    package init() {}
}

package struct TextEnvTrainingResult: Codable, Sendable {
    /// (update, mean training return of that update's episodes).
    package var curve: [[Double]]
    package var evalReturn: Double
    package var initialEvalReturn: Double
    package var optimal: Double
    package var random: Double
    package var seconds: Double
}

package enum TextEnvTraining {
    /// One episode's steps: transcripts x_t, actions, behaviour log-probs, rewards.
    struct Episode {
        var observations: [[Int]] = []
        var actions: [Int] = []
        var logProbs: [Float] = []
        var rewards: [Double] = []
        var done = false
    }

    /// Plays `count` episodes in lock-step (one batched sampling call per turn).
    static func collect(model: GPT, config: TextEnvTrainingConfig, count: Int, seedBase: UInt64,
                        rng: inout RNG) throws -> [Episode] {
        var envs = (0..<count).map { _ in GuessNumber(config: config.guess) }
        var episodes = [Episode](repeating: Episode(), count: count)
        var obs = (0..<count).map { i -> [Int] in
            if case .tokens(let t) = envs[i].reset(seed: seedBase &+ UInt64(i)) { return t }
            preconditionFailure("GuessNumber observes tokens")
        }
        let sc = SamplingConfig(temperature: 1, maxNewTokens: 1, stopToken: -1)
        while let live = Optional(episodes.indices.filter { !episodes[$0].done }), !live.isEmpty {
            let out = model.sample(prompts: live.map { obs[$0] }, samplesPerPrompt: 1, config: sc, rng: &rng)
            for (k, i) in live.enumerated() {
                let a = out[k][0].tokens[0]
                let step = try envs[i].step(a)
                episodes[i].observations.append(obs[i])
                episodes[i].actions.append(a)
                episodes[i].logProbs.append(out[k][0].logProbs[0])
                episodes[i].rewards.append(Double(step.reward))
                episodes[i].done = step.isLast
                if case .tokens(let t) = step.observation { obs[i] = t }
            }
        }
        return episodes
    }

    /// Mean undiscounted return of `episodes` fresh episodes (evaluation seeds).
    package static func evaluate(model: GPT, config: TextEnvTrainingConfig, episodes: Int) throws -> Double {
        var rng = RNG(seed: config.seed, stream: 0x7465_7661)   // "teva"
        var total = 0.0, done = 0
        while done < episodes {
            let n = min(64, episodes - done)
            let eps = try collect(model: model, config: config, count: n, seedBase: 0xE7A1_0000 &+ UInt64(done), rng: &rng)
            total += eps.reduce(0) { $0 + $1.rewards.reduce(0, +) }
            done += n
        }
        return total / Double(episodes)
    }

    package static func run(_ config: TextEnvTrainingConfig, log: (String) -> Void = { print($0) }) throws -> TextEnvTrainingResult {
        precondition(config.model.scalarHead, "TextEnvTraining: the model needs scalarHead (the value function)")
        let started = Date()
        let model = GPT(config: config.model, seed: config.seed)
        var opt = AdamW(learningRate: config.learningRate, beta2: 0.999, weightDecay: 0, layout: model.layout)
        var rng = RNG(seed: config.seed, stream: 0x7465_7874)   // "text"
        let ref = GuessNumber(config: config.guess).referenceReturns()
        let initial = try evaluate(model: model, config: config, episodes: config.evalEpisodes)
        log(String(format: "text-env guess: optimal %.3f, random %.4f, untrained policy %.3f", ref.optimal, ref.random, initial))
        var curve: [[Double]] = []
        for u in 0..<config.updates {
            let eps = try collect(model: model, config: config, count: config.episodesPerUpdate,
                                  seedBase: UInt64(u) &* 1_000_003 &+ config.seed << 32, rng: &rng)
            // Values of every x_t (and x_{t+1}; 0 after the last step: GuessNumber episodes always terminate).
            let xs = eps.flatMap(\.observations)
            let values = model.scalarForward(xs).map(Double.init)
            var seqs: [[Int]] = [], adv: [Double] = [], targets: [Double] = []
            var offset = 0
            for e in eps {
                let T = e.actions.count
                let v = Array(values[offset..<(offset + T)])
                let next = Array(v.dropFirst()) + [0]
                let lp = e.logProbs.map(Double.init)
                let out = VTrace.compute(targetLogProbs: lp, behaviourLogProbs: lp, rewards: e.rewards, values: v,
                                         nextValues: next, dones: (0..<T).map { $0 == T - 1 }, truncations: [Bool](repeating: false, count: T),
                                         parameters: config.vtrace)
                for t in 0..<T { seqs.append(e.observations[t] + [e.actions[t]]); adv.append(out.pgAdvantages[t]); targets.append(out.vs[t]) }
                offset += T
            }
            let B = Float(config.episodesPerUpdate)
            model.zeroGrad()
            // Policy: weight only the action token (the last position of each sequence).
            let stats = model.forwardBackward(seqs, temperature: 1, entropyCoefficient: config.entropyCoefficient / B) { lps in
                lps.enumerated().map { b, row in
                    var w = [Float](repeating: 0, count: row.count)
                    w[row.count - 1] = Float(adv[b]) / B
                    return w
                }
            }
            // Value: (V − v)² on the transcripts.
            model.scalarForwardBackward(xs) { scores in
                scores.enumerated().map { i, s in config.valueCoefficient * 2 * (s - Float(targets[i])) / B }
            }
            _ = clipGradNorm(&model.grads, maxNorm: config.maxGradNorm)
            opt.update(params: &model.params, grads: model.grads)
            let meanReturn = eps.reduce(0) { $0 + $1.rewards.reduce(0, +) } / Double(eps.count)
            curve.append([Double(u + 1), meanReturn])
            if (u + 1) % max(1, config.updates / 10) == 0 {
                log(String(format: "text-env update %d/%d return/mean %.3f entropy %.3f (%.1f s)", u + 1, config.updates,
                           meanReturn, stats.meanEntropy, Date().timeIntervalSince(started)))
            }
        }
        let final = try evaluate(model: model, config: config, episodes: config.evalEpisodes)
        log(String(format: "text-env eval return %.3f (%.0f%% of optimal %.3f; random %.4f, untrained %.3f)",
                   final, 100 * final / ref.optimal, ref.optimal, ref.random, initial))
        return TextEnvTrainingResult(curve: curve, evalReturn: final, initialEvalReturn: initial, optimal: ref.optimal,
                                     random: ref.random, seconds: Date().timeIntervalSince(started))
    }
}
