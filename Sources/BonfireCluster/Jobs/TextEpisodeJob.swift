// The text-environment job (guess): actors play multi-turn text episodes with the transformer policy — one token
// per turn, sampled from the same GPT that samples BoN groups — and the learner trains it with the text
// actor-critic (TextActorCritic.swift: V-trace, the scalar head as the value).
//
//   TextEpisodeSource   episodes played in lock-step (one batched sampling call per turn), seeds from (run seed,
//                       actor, incarnation, episode counter); one message per episode: an EpisodeBatch whose
//                       observations are the transcripts x_t as token ids padded with −1 to D = the environment's
//                       maximum transcript length (actions are tokens). Evaluation: mean return over `numPrompts`
//                       evaluation episodes per temperature, with its fraction of the optimal return.
//   TextActorCriticPolicyLearner  one update per `env.chunksPerUpdate` episodes.
import BonfireAlgorithms
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation

extension TextEpisode: RolloutUnit {}

extension RunConfig {
    /// The policy/value transformer of a text-environment job: `model.*` with the scalar head on.
    package var textPolicyConfig: GPTConfig {
        var g = gptConfig
        g.scalarHead = true
        return g
    }

    package var textActorCriticConfig: TextActorCriticConfig {
        var c = TextActorCriticConfig()
        c.vtrace.gamma = env.gamma > 0 ? env.gamma : environment.defaultGamma
        c.entropyCoefficient = Float(env.entropyCoefficient)
        c.valueCoefficient = Float(env.valueCoefficient)
        c.maxGradNorm = Float(env.maxGradNorm)
        return c
    }
}

extension TextEpisode {
    /// The wire form: observations padded with −1 to `width` tokens per step (a programmer error if longer).
    func wire(env: String, width: Int) -> WireEpisodeBatch {
        var obs: [Float] = []
        for o in observations {
            precondition(o.count <= width, "TextEpisode.wire: transcript of \(o.count) tokens > width \(width)")
            obs += o.map(Float.init) + [Float](repeating: -1, count: width - o.count)
        }
        let T = actions.count
        return WireEpisodeBatch(env: env, observationDim: width, observations: obs, actions: actions.map { Int32($0) },
                                rewards: rewards.map(Float.init), dones: (0..<T).map { $0 == T - 1 },
                                truncations: [Bool](repeating: false, count: T), behaviourLogProbs: behaviourLogProbs,
                                behaviourVersions: [UInt64](repeating: UInt64(behaviourVersion), count: T),
                                bootstrapObservation: [])
    }

    /// What a valid text episode is, beyond what `ValidationContext` checks (shapes, finite values, log-prob and reward
    /// ranges, actions < vocab, versions): one behaviour version, an episode that ended, each row a transcript of
    /// token ids in 0..<vocab followed only by −1 padding, and transcript + action within the context.
    static func converted(_ w: WireEpisodeBatch, width: Int, vocab: Int, context: Int) -> Result<TextEpisode, TextEpisodeRejection> {
        let T = w.actions.count
        guard T > 0, T <= 1024, w.observationDim == width, w.observations.count == T * width, w.bootstrapObservation.isEmpty,
              w.dones.last == true else {
            return .failure(TextEpisodeRejection(.episodeStructure, "\(T) steps of width \(w.observationDim) (this run: ≤ 1024 of \(width)); a text episode ends with done and has no bootstrap"))
        }
        guard let v = w.behaviourVersions.first, w.behaviourVersions.allSatisfy({ $0 == v }), let version = Int(exactly: v) else {
            return .failure(TextEpisodeRejection(.episodeStructure, "a text episode has one behaviour version, got \(w.behaviourVersions.prefix(3))…"))
        }
        var e = TextEpisode()
        e.behaviourVersion = version
        for t in 0..<T {
            let row = w.observations[(t * width)..<((t + 1) * width)]
            var tokens: [Int] = []
            var padding = false
            for x in row {
                if x == -1 { padding = true; continue }
                guard !padding, x == x.rounded(), x >= 0, x < Float(vocab) else {
                    return .failure(TextEpisodeRejection(.tokenOutOfVocabulary, "observation token \(x) at step \(t)"))
                }
                tokens.append(Int(x))
            }
            let a = Int(w.actions[t])
            guard !tokens.isEmpty else { return .failure(TextEpisodeRejection(.emptyPrompt, "step \(t) has an empty transcript")) }
            guard a >= 0, a < vocab else { return .failure(TextEpisodeRejection(.actionOutOfRange, "step \(t): action \(a) (vocab \(vocab))")) }
            guard tokens.count + 1 <= context else {
                return .failure(TextEpisodeRejection(.sequenceTooLong, "step \(t): \(tokens.count) tokens + action \(a) (context \(context), vocab \(vocab))"))
            }
            e.observations.append(tokens); e.actions.append(a)
            e.behaviourLogProbs.append(w.behaviourLogProbs[t]); e.rewards.append(Double(w.rewards[t]))
        }
        return .success(e)
    }
}

/// Why an admitted text episode is not used.
struct TextEpisodeRejection: Error, Equatable {
    var reason: DropReason
    var detail: String
    init(_ reason: DropReason, _ detail: String) { self.reason = reason; self.detail = detail }
}

package final class TextEpisodeSource: RolloutSource {
    let config: RunConfig
    let actorID: Int, incarnation: Int
    /// The actor's copy of the policy: it plays episodes, never trains (so it never allocates gradients).
    package let model: GPT
    let probe: any Environment
    var episodeCounter: UInt64 = 0
    /// Episodes played in lock-step per call.
    let episodesPerCall = 16

    package init(config: RunConfig, actorID: Int, incarnation: Int = 0) {
        self.config = config; self.actorID = actorID; self.incarnation = incarnation
        self.model = GPT(config: config.textPolicyConfig, seed: config.run.seed)
        self.probe = config.environment.make()
    }

    package var job: JobKind { .textEpisodes }
    package var detail: String { "\(probe.name) text episodes with the transformer policy" }
    package var parameterCount: Int { model.params.count }
    package var layoutHash: UInt64 { BonfireCluster.layoutHash(model.layout) }
    package var pushHighWaterMark: Int32 { Int32(2 * episodesPerCall) }
    package func install(parameters: [Float]) { model.params = parameters }

    /// Plays `seeds.count` episodes in lock-step at `temperature`.
    func play(seeds: [UInt64], temperature: Double, version: Int, rng: inout RNG) throws -> [TextEpisode] {
        var envs = seeds.map { _ in config.environment.make() }
        var episodes = [TextEpisode](repeating: TextEpisode(), count: seeds.count)
        var done = [Bool](repeating: false, count: seeds.count)
        var obs = seeds.indices.map { envs[$0].reset(seed: seeds[$0]).tokens }
        let sc = SamplingConfig(temperature: Float(temperature), maxNewTokens: 1, stopToken: -1)
        while case let live = done.indices.filter({ !done[$0] }), !live.isEmpty {
            let out = model.sample(prompts: live.map { obs[$0] }, samplesPerPrompt: 1, config: sc, rng: &rng)
            for (k, i) in live.enumerated() {
                let a = out[k][0].tokens[0]
                let step: StepResult
                do { step = try envs[i].step(a) } catch {
                    throw ClusterError("actor-\(actorID): environment \(probe.name) rejected token \(a): \(error)")
                }
                episodes[i].observations.append(obs[i])
                episodes[i].actions.append(a)
                episodes[i].behaviourLogProbs.append(out[k][0].logProbs[0])
                episodes[i].rewards.append(Double(step.reward))
                episodes[i].behaviourVersion = version
                done[i] = step.isLast
                obs[i] = step.observation.tokens
            }
        }
        return episodes
    }

    package func produce(version: Int, maxUnits: Int, rng: inout RNG) throws -> [RolloutMessage] {
        let count = max(1, min(episodesPerCall, maxUnits))
        let seeds = (0..<count).map { _ -> UInt64 in
            episodeCounter += 1
            var r = RNG(seed: config.run.seed, stream: 0x7465_7874, UInt64(actorID) << 32 | UInt64(incarnation), episodeCounter)   // "text"
            return r.next()
        }
        return try play(seeds: seeds, temperature: config.sampling.temperature, version: version, rng: &rng).map {
            RolloutMessage(payload: .episodes($0.wire(env: probe.name, width: probe.observationSize)), units: 1, samples: $0.actions.count)
        }
    }

    package func evaluate(_ r: WireEvalRequest, version: Int, rng: inout RNG) throws -> WireEvalReport {
        let episodes = max(1, min(r.numPrompts, 100_000))
        let optimal = probe.referenceReturns().optimal
        var rows: [WireEvalRow] = []
        for temperature in (r.temperatures.isEmpty ? [1.0] : r.temperatures) {
            var total = 0.0, done = 0
            while done < episodes {
                let n = min(64, episodes - done)
                let seeds = (0..<n).map { k -> UInt64 in
                    var s = RNG(seed: config.run.seed, stream: 0x6576, UInt64(done + k)); return s.next()   // evaluation episodes
                }
                total += try play(seeds: seeds, temperature: temperature, version: version, rng: &rng)
                    .reduce(0) { $0 + $1.rewards.reduce(0, +) }
                done += n
            }
            let mean = total / Double(episodes)
            rows.append(WireEvalRow(n: 1, temperature: temperature, passAtN: 0, boN: 0, meanReward: mean, numPrompts: episodes,
                                    meanReturn: mean, fractionOfOptimal: optimal > 0 ? mean / optimal : 0))
        }
        return WireEvalReport(requestID: r.requestID, version: UInt64(max(version, 0)), task: r.task, split: r.split, rows: rows)
    }
}

package final class TextActorCriticPolicyLearner: PolicyLearner {
    let config: RunConfig
    let model: GPT
    var optimizer: AdamW
    let acConfig: TextActorCriticConfig
    let probe: any Environment
    package private(set) var step = 0
    var skipped = 0
    var recentReturns: [Double] = []
    var episodesTotal = 0

    package init(config: RunConfig) {
        self.config = config
        self.model = GPT(config: config.textPolicyConfig, seed: config.run.seed)
        self.optimizer = AdamW(learningRate: Float(config.env.learningRate), beta2: 0.999, weightDecay: 0, layout: model.layout)
        self.acConfig = config.textActorCriticConfig
        self.probe = config.environment.make()
    }

    package var job: JobKind { .textEpisodes }
    package var detail: String { "env \(probe.name), transformer policy + scalar value head, γ \(acConfig.vtrace.gamma), entropy \(acConfig.entropyCoefficient)" }
    package var parameters: [Float] { model.params }
    package var layoutHash: UInt64 { BonfireCluster.layoutHash(model.layout) }
    package var unitsPerUpdate: Int { config.env.chunksPerUpdate }
    package var pullHighWaterMark: Int32 { Int32(4 * config.env.chunksPerUpdate) }
    package var runningMetrics: [String: Double] {
        var v: [String: Double] = [MetricKey.episodes: Double(episodesTotal), MetricKey.skippedUpdates: Double(skipped)]
        if !recentReturns.isEmpty { v[MetricKey.episodeReturn] = recentReturns.reduce(0, +) / Double(recentReturns.count) }
        return v
    }

    package func prepare(tick: () -> Void, log: (String) -> Void) throws {}

    package func admission(_ c: inout ValidationContext) {
        c.rolloutKind = .episodes
        c.env = probe.name
        c.observationDim = probe.observationSize
        c.actionCount = model.config.vocabSize
        c.rewardRange = -1e6...1e6
    }

    package func accept(_ payload: WirePayload) -> Accepted<TextEpisode> {
        guard case .episodes(let w) = payload else {
            if case .metrics = payload { return .statistics }
            return .invalid(.jobKindMismatch, detail: "\(payload.kind) on the rollout socket of a text-environment job")
        }
        switch TextEpisode.converted(w, width: probe.observationSize, vocab: model.config.vocabSize, context: model.config.contextLength) {
        case .success(let e): return .units([e])
        case .failure(let why): return .invalid(why.reason, detail: why.detail)
        }
    }

    package func update(_ batch: [TextEpisode], version: Int) throws -> [String: Double] {
        let before = model.params, beforeOpt = optimizer
        let st = TextActorCritic.update(model: model, optimizer: &optimizer, episodes: batch, config: acConfig)
        if !st.policyLoss.isFinite || !st.valueLoss.isFinite || !model.params.allSatisfy(isPublishable) {
            model.params = before; optimizer = beforeOpt; skipped += 1
            roleLog("learner: update \(step + 1) diverged; " + divergedUpdateAdvice(skipped: skipped, learningRateKey: "env.learningRate",
                                                                                   value: config.env.learningRate))
        }
        step += 1
        for e in batch { recentReturns.append(e.rewards.reduce(0, +)) }
        episodesTotal += batch.count
        if recentReturns.count > 100 { recentReturns.removeFirst(recentReturns.count - 100) }
        return [MetricKey.policyLoss: st.policyLoss, MetricKey.valueLoss: st.valueLoss, MetricKey.entropy: st.entropy,
                MetricKey.rhoMean: st.meanRho, MetricKey.gradNorm: Double(st.gradNorm)]
    }

    package func save(to url: URL, metadata: [String: String]) throws {
        try ModelCheckpoint.save(model, optimizer: optimizer, step: step,
                                 metadata: metadata.merging(["env": probe.name]) { a, _ in a }, to: url)
    }

    package func restore(from url: URL) throws -> [String: String] {
        let (opt, step, meta) = try ModelCheckpoint.load(from: url, into: model)
        if let opt { optimizer = opt }
        self.step = step
        return meta
    }
}
