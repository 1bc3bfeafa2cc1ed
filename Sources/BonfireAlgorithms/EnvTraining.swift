// Single-process environment training: actors step several environments with a lagging copy of the policy,
// cut EpisodeChunks, and the ActorCriticLearner (V-trace) updates on them. The library entry point behind
// `bonfire train-env` (and `bonfire train --env`); the multi-process runtime sends the same EpisodeChunks over the wire.
//
// Loop (one iteration = one learner update):
//   1. the actor steps `numEnvs` environments `unrollLength` times each, sampling a ~ π_actor(·|x) from ONE batched
//      MLP forward per step; every step records log π_actor(a|x) and the actor's policy version. A chunk ends at the
//      unroll end or at a truncation (EpisodeChunk rules); finished episodes are reset with seeds from
//      (run seed, env index, episode counter), so a run is replayable.
//   2. the learner updates once on all chunks of the iteration (numEnvs·unrollLength steps).
//   3. every `actorSyncInterval` updates the actor copies the learner's parameters (so the behaviour policy lags by
//      up to actorSyncInterval − 1 versions, and V-trace corrects for it).
// Progress lines (every `logIntervalSeconds`): env steps, episodes, return/mean and length/mean over the last 100
// episodes, throughput/env_steps_per_s, losses, entropy, mean ρ and lag. At the end the policy is evaluated on
// `evalEpisodes` fresh episodes (sampled and greedy) and compared with the environment's reference returns.

import BonfireMath
import BonfireModel
import BonfireTasks

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

package struct EnvTrainingConfig: Codable, Sendable, Equatable {
    /// Which environment (gridworld, keydoor). Default gridworld.
    package var env: EnvironmentKind = .gridworld
    package var gridworld = GridWorld.Config()
    package var keydoor = KeyDoor.Config()
    /// Run seed (network init, actions, episode seeds). Default 1.
    package var seed: UInt64 = 1
    /// Environments stepped in parallel by the actor. Default 16.
    package var numEnvs = 16
    /// Steps per environment per learner update (chunk length T). Default 20.
    package var unrollLength = 20
    /// Stop after this many environment steps. Default 2,000,000.
    package var totalEnvSteps = 2_000_000
    /// Stop after this many seconds of training (0 = no limit). Default 0.
    package var maxSeconds: Double = 0
    /// Learner updates between actor parameter refreshes (1 = on-policy up to one update). Default 2.
    package var actorSyncInterval = 2
    /// MLP hidden widths. Default [64, 64].
    package var hiddenSizes = [64, 64]
    /// Learner coefficients (V-trace, value, entropy, AdamW).
    package var learner = ActorCriticConfig()
    /// Seconds between progress lines (0 = none). Default 5.
    package var logIntervalSeconds: Double = 5
    /// Episodes of the final evaluation. Default 2000.
    package var evalEpisodes = 2000
    package init() {}

    /// Per-environment defaults tuned with the runs in docs/results.md.
    package static func defaults(for env: EnvironmentKind) -> EnvTrainingConfig {
        var c = EnvTrainingConfig()
        c.env = env
        switch env {
        case .gridworld:
            c.learner.vtrace.gamma = 0.9
            c.learner.entropyCoefficient = 0.03
            c.totalEnvSteps = 3_000_000
        case .keydoor:
            c.learner.vtrace.gamma = 0.97
            c.learner.entropyCoefficient = 0.03
            c.totalEnvSteps = 1_000_000
        case .guess:
            break
        }
        return c
    }

    package func validate() throws(ActorCriticError) {
        guard env != .guess else {
            throw ActorCriticError("env guess has token observations and needs the transformer policy, which is not implemented yet (the MLP actor-critic needs vector observations); use --env gridworld or keydoor")
        }
        guard numEnvs > 0, unrollLength > 0, actorSyncInterval > 0, totalEnvSteps > 0, evalEpisodes >= 0,
              !hiddenSizes.isEmpty, hiddenSizes.allSatisfy({ $0 > 0 }) else {
            throw ActorCriticError("env training: numEnvs, unrollLength, actorSyncInterval, totalEnvSteps and hidden sizes must be positive (got numEnvs \(numEnvs), unrollLength \(unrollLength), actorSyncInterval \(actorSyncInterval), totalEnvSteps \(totalEnvSteps), hiddenSizes \(hiddenSizes))")
        }
    }

    package func makeEnvironment() -> any Environment {
        switch env {
        case .gridworld: return GridWorld(config: gridworld)
        case .keydoor: return KeyDoor(config: keydoor)
        case .guess: return GuessNumber()
        }
    }
}

package struct EnvTrainingResult: Codable, Sendable {
    package struct Point: Codable, Sendable {
        package var envSteps: Int
        package var seconds: Double
        /// Mean return of the last 100 training episodes (behaviour policy).
        package var meanReturn: Double
    }
    package var env: String
    package var seed: UInt64
    package var envSteps = 0
    package var updates = 0
    package var seconds = 0.0
    package var curve: [Point] = []
    /// Mean return of the last 100 training episodes.
    package var finalTrainReturn = 0.0
    /// Final evaluation: sampled actions, and greedy (argmax) actions.
    package var evalReturn = 0.0
    package var evalGreedyReturn = 0.0
    package var reference: ReferenceReturns
    /// evalReturn / optimal.
    package var fractionOfOptimal: Double { reference.optimal > 0 ? evalReturn / reference.optimal : 0 }
}

package enum EnvTraining {
    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    private static func reference(_ env: any Environment) -> ReferenceReturns {
        if let g = env as? GridWorld { return g.referenceReturns() }
        if let k = env as? KeyDoor { return k.referenceReturns() }
        if let n = env as? GuessNumber { return n.referenceReturns() }
        return ReferenceReturns(optimal: 0, random: 0)
    }

    /// Samples an action from row r of (B, A) logits; returns (action, log-prob).
    static func sample(_ logits: [Float], row r: Int, count A: Int, rng: inout RNG, greedy: Bool = false) -> (Int, Float) {
        let lp = MLP.logSoftmax(logits, row: r, count: A)
        if greedy {
            let a = lp.indices.max { lp[$0] < lp[$1] }!
            return (a, Float(lp[a]))
        }
        var u = rng.uniform()
        for a in 0..<A {
            u -= exp(lp[a])
            if u < 0 { return (a, Float(lp[a])) }
        }
        return (A - 1, Float(lp[A - 1]))
    }

    /// Trains and evaluates. `log` receives progress lines.
    package static func run(_ config: EnvTrainingConfig, log: (String) -> Void = { print($0) }) throws -> EnvTrainingResult {
        try config.validate()
        let B = config.numEnvs, T = config.unrollLength
        var envs: [any Environment] = (0..<B).map { _ in config.makeEnvironment() }
        let D = envs[0].observationSize, A = envs[0].actionCount, name = envs[0].name
        let mlp = MLPConfig(inputSize: D, actionCount: A, hiddenSizes: config.hiddenSizes)
        let learner = ActorCriticLearner(net: MLP(config: mlp, seed: config.seed), config: config.learner)
        let actor = MLP(config: mlp, seed: config.seed)
        actor.params = learner.net.params
        var actorVersion: UInt64 = 0
        var rng = RNG(seed: config.seed, stream: 0x6163_746F_72)   // "actor"
        var episodeCounter = [UInt64](repeating: 0, count: B)
        func episodeSeed(_ i: Int) -> UInt64 { var r = RNG(seed: config.seed, stream: 0x6570, UInt64(i), episodeCounter[i]); return r.next() }
        var obs: [[Float]] = (0..<B).map { envs[$0].reset(seed: episodeSeed($0)).vector }
        var epReturn = [Double](repeating: 0, count: B), epLength = [Int](repeating: 0, count: B)
        var recentReturns: [Double] = [], recentLengths: [Int] = [], episodes = 0
        var result = EnvTrainingResult(env: name, seed: config.seed, reference: reference(envs[0]))
        log("env-train env=\(name) seed=\(config.seed) numEnvs=\(B) unroll=\(T) D=\(D) A=\(A) params=\(learner.net.parameterCount) optimal=\(fmt(result.reference.optimal)) random=\(fmt(result.reference.random))")
        let start = now()
        var lastLog = start, stepsAtLastLog = 0, envSteps = 0
        var stats = ActorCriticStats()
        func meanRecent() -> Double { recentReturns.isEmpty ? 0 : recentReturns.reduce(0, +) / Double(recentReturns.count) }

        while envSteps < config.totalEnvSteps && (config.maxSeconds <= 0 || now() - start < config.maxSeconds) {
            // 1. Actor: T batched steps over B environments.
            var open = (0..<B).map { _ in EpisodeChunk(env: name, observationSize: D) }
            var chunks: [EpisodeChunk] = []
            var batchObs = [Float](repeating: 0, count: B * D)
            for _ in 0..<T {
                for i in 0..<B { for j in 0..<D { batchObs[i * D + j] = obs[i][j] } }
                let (logits, _) = actor.forward(batchObs, batch: B)
                for i in 0..<B {
                    let (a, lp) = sample(logits, row: i, count: A, rng: &rng)
                    let r = try envs[i].step(a)
                    open[i].append(observation: obs[i], action: a, reward: r.reward, done: r.done,
                                   truncated: r.truncated, behaviourLogProb: lp, behaviourVersion: actorVersion)
                    epReturn[i] += Double(r.reward); epLength[i] += 1
                    if r.isLast {
                        recentReturns.append(epReturn[i]); recentLengths.append(epLength[i]); episodes += 1
                        if recentReturns.count > 100 { recentReturns.removeFirst(); recentLengths.removeFirst() }
                        epReturn[i] = 0; epLength[i] = 0
                        if r.truncated {
                            open[i].bootstrapObservation = r.observation.vector
                            chunks.append(open[i])
                            open[i] = EpisodeChunk(env: name, observationSize: D)
                        }
                        episodeCounter[i] += 1
                        obs[i] = envs[i].reset(seed: episodeSeed(i)).vector
                    } else {
                        obs[i] = r.observation.vector
                    }
                }
            }
            for i in 0..<B where open[i].count > 0 {
                if !open[i].dones.last! { open[i].bootstrapObservation = obs[i] }
                chunks.append(open[i])
            }
            envSteps += B * T
            // 2. Learner.
            stats = try learner.update(chunks)
            result.updates += 1
            // 3. Actor refresh.
            if result.updates % config.actorSyncInterval == 0 {
                actor.params = learner.net.params
                actorVersion = learner.version
            }
            let t = now()
            if config.logIntervalSeconds > 0 && t - lastLog >= config.logIntervalSeconds {
                let sps = Double(envSteps - stepsAtLastLog) / (t - lastLog)
                let meanLen = recentLengths.isEmpty ? 0 : Double(recentLengths.reduce(0, +)) / Double(recentLengths.count)
                log("env-train update=\(result.updates) env_steps=\(envSteps) episodes=\(episodes) return/mean=\(fmt(meanRecent())) length/mean=\(fmt(meanLen, 1)) throughput/env_steps_per_s=\(Int(sps)) loss/policy=\(fmt(stats.policyLoss)) loss/value=\(fmt(stats.valueLoss)) policy/entropy=\(fmt(stats.entropy)) vtrace/rho_mean=\(fmt(stats.meanRho)) lag/mean=\(fmt(stats.meanLag, 2))")
                result.curve.append(.init(envSteps: envSteps, seconds: t - start, meanReturn: meanRecent()))
                lastLog = t; stepsAtLastLog = envSteps
            }
        }
        result.envSteps = envSteps
        result.seconds = now() - start
        result.finalTrainReturn = meanRecent()
        result.curve.append(.init(envSteps: envSteps, seconds: result.seconds, meanReturn: meanRecent()))
        if config.evalEpisodes > 0 {
            result.evalReturn = try evaluate(config, net: learner.net, greedy: false)
            result.evalGreedyReturn = try evaluate(config, net: learner.net, greedy: true)
        }
        log("env-train done env=\(name) seed=\(config.seed) env_steps=\(envSteps) updates=\(result.updates) seconds=\(fmt(result.seconds, 1)) eval/return=\(fmt(result.evalReturn)) eval/return_greedy=\(fmt(result.evalGreedyReturn)) optimal=\(fmt(result.reference.optimal)) random=\(fmt(result.reference.random)) eval/fraction_of_optimal=\(fmt(result.fractionOfOptimal))")
        return result
    }

    /// Mean undiscounted return of `net` over `config.evalEpisodes` episodes with evaluation seeds (disjoint stream).
    package static func evaluate(_ config: EnvTrainingConfig, net: MLP, greedy: Bool) throws -> Double {
        var rng = RNG(seed: config.seed, stream: 0x6576_616C)   // "eval"
        var total = 0.0
        var env = config.makeEnvironment()
        let A = env.actionCount, D = env.observationSize
        for e in 0..<config.evalEpisodes {
            var seedRNG = RNG(seed: config.seed, stream: 0x6576, UInt64(e))
            var o = env.reset(seed: seedRNG.next()).vector
            while true {
                let (logits, _) = net.forward(o, batch: 1)
                precondition(o.count == D)
                let (a, _) = sample(logits, row: 0, count: A, rng: &rng, greedy: greedy)
                let r = try env.step(a)
                total += Double(r.reward)
                if r.isLast { break }
                o = r.observation.vector
            }
        }
        return total / Double(max(1, config.evalEpisodes))
    }

    static func fmt(_ x: Double, _ digits: Int = 3) -> String {
        let p = pow(10.0, Double(digits))
        return String(Double((x * p).rounded()) / p)
    }
}
