// The environment job (gridworld, keydoor): actors step `env.envsPerActor` environments with an MLP policy and cut
// episode chunks; the learner runs the off-policy actor-critic with V-trace (ActorCritic.swift).
//
//   EpisodeSource   one round = `env.chunkLength` batched steps of every environment (one MLP forward per step,
//                   a ~ π(·|x) sampled, log π(a|x) and the version recorded per step); one message per chunk (chunks
//                   also end at a truncation), then one droppable `.metrics` report of the round's completed
//                   episodes (count, return sum, length sum). Episode seeds come from (run seed, actor, incarnation,
//                   env index, episode counter). Evaluation: mean undiscounted return over `numPrompts` fresh episodes
//                   per temperature (0 = greedy), with its fraction of the environment's optimal return.
//   ActorCriticPolicyLearner  one update per `env.chunksPerUpdate` chunks (a chunk is judged by its oldest step's
//                   version); metrics loss/policy, loss/value, train/entropy, vtrace/rho_mean, env/episode_return and
//                   env/episode_length (mean of the last ≥ 100 completed episodes the actors reported).
import BonfireAlgorithms
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension EpisodeChunk: RolloutUnit {
    package var behaviourVersion: Int { Int(clamping: behaviourVersions.min() ?? 0) }
}

extension RunConfig {
    /// The environment of an environment job (a programmer error to ask a BoN job).
    package var environment: EnvironmentKind {
        guard let k = env.name.environment else { preconditionFailure("RunConfig.environment: env.name is none (a BoN job)") }
        return k
    }

    /// The actor-critic coefficients of this run's `env` section (γ 0 = the environment's default, else 0.99).
    package var actorCriticConfig: ActorCriticConfig {
        var c = ActorCriticConfig()
        c.vtrace.gamma = env.gamma > 0 ? env.gamma : (env.name.environment?.defaultGamma ?? 0.99)
        c.entropyCoefficient = Float(env.entropyCoefficient)
        c.valueCoefficient = Float(env.valueCoefficient)
        c.learningRate = Float(env.learningRate)
        c.maxGradNorm = Float(env.maxGradNorm)
        return c
    }

    /// The MLP of this run's environment.
    package var envMLPConfig: MLPConfig {
        let e = environment.make()
        return MLPConfig(inputSize: e.observationSize, actionCount: e.actionCount, hiddenSizes: env.hiddenSizes)
    }
}

/// Completed-episode statistics over a window of at least `minEpisodes` recent episodes, fed by actor reports
/// (each report: count, return sum, length sum).
package struct EpisodeWindow: Sendable {
    package let minEpisodes: Int
    private var reports: [(count: Double, returns: Double, lengths: Double)] = []
    package private(set) var totalEpisodes = 0.0

    package init(minEpisodes: Int = 100) { self.minEpisodes = minEpisodes }

    package mutating func add(count: Double, returnSum: Double, lengthSum: Double) {
        guard count > 0, count <= 1e6, count.isFinite, returnSum.isFinite, lengthSum.isFinite else { return }
        reports.append((count, returnSum, lengthSum))
        totalEpisodes += count
        // Drop the oldest reports while the rest still cover minEpisodes.
        while reports.count > 1, reports.dropFirst().reduce(0, { $0 + $1.count }) >= Double(minEpisodes) {
            reports.removeFirst()
        }
    }

    package var count: Double { reports.reduce(0) { $0 + $1.count } }
    /// Mean return and length over the window (nil before the first report).
    package var meanReturn: Double? { count > 0 ? reports.reduce(0) { $0 + $1.returns } / count : nil }
    package var meanLength: Double? { count > 0 ? reports.reduce(0) { $0 + $1.lengths } / count : nil }

    /// Folds an actor's `.metrics` report in; false when the message is not a report.
    mutating func add(report m: WireMetrics) -> Bool {
        guard let n = m.values[MetricKey.reportEpisodes] else { return false }
        add(count: n, returnSum: m.values[MetricKey.reportReturnSum] ?? .nan, lengthSum: m.values[MetricKey.reportLengthSum] ?? .nan)
        return true
    }

    var metrics: [String: Double] {
        var v: [String: Double] = [MetricKey.episodes: totalEpisodes]
        if let r = meanReturn { v[MetricKey.episodeReturn] = r }
        if let l = meanLength { v[MetricKey.episodeLength] = l }
        return v
    }
}

/// a ~ softmax(logits_r / T) (T = 0: argmax); returns (a, log-prob of a under the sampling distribution).
func sampleAction(_ logits: [Float], row r: Int, count A: Int, temperature: Double, rng: inout RNG) -> (Int, Float) {
    if temperature == 0 {
        let lp = MLP.logSoftmax(logits, row: r, count: A)
        return (lp.indices.max { lp[$0] < lp[$1] }!, 0)
    }
    let scaled = temperature == 1 ? Array(logits[(r * A)..<(r * A + A)]) : (0..<A).map { logits[r * A + $0] / Float(temperature) }
    let lp = MLP.logSoftmax(scaled, row: 0, count: A)
    var u = rng.uniform()
    for a in 0..<A {
        u -= exp(lp[a])
        if u < 0 { return (a, Float(lp[a])) }
    }
    return (A - 1, Float(lp[A - 1]))
}

package final class EpisodeSource: RolloutSource {
    let config: RunConfig
    let actorID: Int, incarnation: Int
    let net: MLP
    let makeEnvironment: () -> any Environment
    var envs: [any Environment]
    var observations: [[Float]] = []
    var episodeCounter: [UInt64]
    var epReturn: [Double], epLength: [Int]
    let reference: ReferenceReturns
    let envName: String

    /// `makeEnvironment` defaults to the run's `env.name`; tests plug a toy environment in here.
    package init(config: RunConfig, actorID: Int, incarnation: Int = 0,
                 makeEnvironment: (() -> any Environment)? = nil, hiddenSizes: [Int]? = nil) {
        self.config = config
        self.actorID = actorID
        self.incarnation = incarnation
        let make = makeEnvironment ?? { config.environment.make() }
        self.makeEnvironment = make
        let probe = make()
        self.envName = probe.name
        self.reference = probe.referenceReturns()
        self.net = MLP(config: MLPConfig(inputSize: probe.observationSize, actionCount: probe.actionCount,
                                         hiddenSizes: hiddenSizes ?? config.env.hiddenSizes), seed: config.run.seed)
        let B = config.env.envsPerActor
        self.envs = (0..<B).map { _ in make() }
        self.episodeCounter = [UInt64](repeating: 0, count: B)
        self.epReturn = [Double](repeating: 0, count: B)
        self.epLength = [Int](repeating: 0, count: B)
        for i in 0..<B { observations.append(envs[i].reset(seed: episodeSeed(i)).vector) }
    }

    func episodeSeed(_ i: Int) -> UInt64 {
        var r = RNG(seed: config.run.seed, stream: 0x6570, UInt64(actorID) << 32 | UInt64(i),
                    episodeCounter[i] ^ (UInt64(incarnation) << 40))
        return r.next()
    }

    package var job: JobKind { .envEpisodes }
    package var detail: String { "\(envs.count) \(envName) environments" }
    package var parameterCount: Int { net.params.count }
    package var layoutHash: UInt64 { BonfireCluster.layoutHash(net.layout) }
    package var pushHighWaterMark: Int32 { Int32(2 * (config.env.envsPerActor + 1)) }
    package func install(parameters: [Float]) { net.params = parameters }

    /// One round: every environment stepped `env.chunkLength` times (units = chunks; `maxUnits` is not split).
    package func produce(version: Int, maxUnits: Int, rng: inout RNG) throws -> [RolloutMessage] {
        let B = envs.count, D = net.config.inputSize, A = net.config.actionCount
        let v = UInt64(max(version, 0))
        var open = (0..<B).map { _ in EpisodeChunk(env: envName, observationSize: D) }
        var chunks: [EpisodeChunk] = []
        var report = (count: 0, returnSum: 0.0, lengthSum: 0.0)
        var batchObs = [Float](repeating: 0, count: B * D)   // (B, D)
        for _ in 0..<config.env.chunkLength {
            for i in 0..<B { for j in 0..<D { batchObs[i * D + j] = observations[i][j] } }
            let (logits, _) = net.forward(batchObs, batch: B)   // (B, A)
            for i in 0..<B {
                let (a, lp) = sampleAction(logits, row: i, count: A, temperature: 1, rng: &rng)
                let r: StepResult
                do { r = try envs[i].step(a) } catch {
                    throw ClusterError("actor-\(actorID): environment \(envName) rejected action \(a): \(error)")
                }
                open[i].append(observation: observations[i], action: a, reward: r.reward, done: r.done,
                               truncated: r.truncated, behaviourLogProb: lp, behaviourVersion: v)
                epReturn[i] += Double(r.reward); epLength[i] += 1
                if r.isLast {
                    report.count += 1; report.returnSum += epReturn[i]; report.lengthSum += Double(epLength[i])
                    epReturn[i] = 0; epLength[i] = 0
                    if r.truncated {
                        open[i].bootstrapObservation = r.observation.vector
                        chunks.append(open[i])
                        open[i] = EpisodeChunk(env: envName, observationSize: D)
                    }
                    episodeCounter[i] += 1
                    observations[i] = envs[i].reset(seed: episodeSeed(i)).vector
                } else {
                    observations[i] = r.observation.vector
                }
            }
        }
        for i in 0..<B where open[i].count > 0 {
            if !open[i].dones.last! { open[i].bootstrapObservation = observations[i] }
            chunks.append(open[i])
        }
        var out = chunks.map { RolloutMessage(payload: .episodes($0.wire), units: 1, samples: $0.count) }
        if report.count > 0 {
            out.append(RolloutMessage(payload: .metrics(WireMetrics(step: 0, version: v, values: [
                MetricKey.reportEpisodes: Double(report.count), MetricKey.reportReturnSum: report.returnSum,
                MetricKey.reportLengthSum: report.lengthSum,
            ])), units: 0, samples: 0, mayDrop: true))
        }
        return out
    }

    /// Mean undiscounted return of the installed parameters over `numPrompts` fresh episodes per temperature.
    package func evaluate(_ r: WireEvalRequest, version: Int, rng: inout RNG) throws -> WireEvalReport {
        let episodes = max(1, min(r.numPrompts, 100_000))
        var rows: [WireEvalRow] = []
        for temperature in (r.temperatures.isEmpty ? [1.0] : r.temperatures) {
            var env = makeEnvironment()
            var total = 0.0
            for k in 0..<episodes {
                var seedRNG = RNG(seed: config.run.seed, stream: 0x6576, UInt64(k))   // evaluation episodes
                var o = env.reset(seed: seedRNG.next()).vector
                while true {
                    let (logits, _) = net.forward(o, batch: 1)
                    let (a, _) = sampleAction(logits, row: 0, count: net.config.actionCount, temperature: temperature, rng: &rng)
                    let s: StepResult
                    do { s = try env.step(a) } catch { throw ClusterError("actor-\(actorID): evaluation step failed: \(error)") }
                    total += Double(s.reward)
                    if s.isLast { break }
                    o = s.observation.vector
                }
            }
            let mean = total / Double(episodes)
            let fraction = reference.optimal > 0 ? mean / reference.optimal : 0
            rows.append(WireEvalRow(n: 1, temperature: temperature, passAtN: 0, boN: 0, meanReward: mean,
                                    numPrompts: episodes, meanReturn: mean, fractionOfOptimal: fraction))
        }
        return WireEvalReport(requestID: r.requestID, version: UInt64(max(version, 0)), task: r.task, split: r.split, rows: rows)
    }
}

package final class ActorCriticPolicyLearner: PolicyLearner {
    let config: RunConfig
    let learner: ActorCriticLearner
    let envName: String
    package private(set) var step = 0
    var episodes = EpisodeWindow()
    var stepsReceived = 0
    var skipped = 0

    package init(config: RunConfig, makeEnvironment: (() -> any Environment)? = nil, hiddenSizes: [Int]? = nil) {
        self.config = config
        let e = (makeEnvironment ?? { config.environment.make() })()
        self.envName = e.name
        let mlp = MLPConfig(inputSize: e.observationSize, actionCount: e.actionCount, hiddenSizes: hiddenSizes ?? config.env.hiddenSizes)
        self.learner = ActorCriticLearner(net: MLP(config: mlp, seed: config.run.seed), config: config.actorCriticConfig)
    }

    var net: MLP { learner.net }
    package var job: JobKind { .envEpisodes }
    package var detail: String {
        let t = learner.config
        return "env \(envName), MLP \(net.config.inputSize)→\(net.config.hiddenSizes.map(String.init).joined(separator: "→"))→\(net.config.actionCount)+1, " +
            "γ \(t.vtrace.gamma), entropy \(t.entropyCoefficient), lr \(t.learningRate)"
    }
    package var parameters: [Float] { net.params }
    package var layoutHash: UInt64 { BonfireCluster.layoutHash(net.layout) }
    package var unitsPerUpdate: Int { config.env.chunksPerUpdate }
    package var pullHighWaterMark: Int32 { Int32(2 * config.env.chunksPerUpdate) }
    package var runningMetrics: [String: Double] {
        episodes.metrics.merging([MetricKey.envSteps: Double(stepsReceived), MetricKey.skippedUpdates: Double(skipped)]) { a, _ in a }
    }

    package func prepare(tick: () -> Void, log: (String) -> Void) throws {}

    package func admission(_ c: inout ValidationContext) {
        c.rolloutKind = .episodes
        c.env = envName
        c.observationDim = net.config.inputSize
        c.actionCount = net.config.actionCount
        c.observationBound = 1e6
        c.rewardRange = -1e6...1e6
    }

    package func accept(_ payload: WirePayload) -> Accepted<EpisodeChunk> {
        switch payload {
        case .episodes(let w):
            do {
                let chunk = try EpisodeChunk(wire: w, actionCount: net.config.actionCount)
                stepsReceived += chunk.count
                return .units([chunk])
            } catch {
                return .invalid(.episodeStructure, detail: "\(error)")
            }
        case .metrics(let m):
            return episodes.add(report: m) ? .statistics : .invalid(.invalidField, detail: "metrics without an episode report")
        default:
            return .invalid(.jobKindMismatch, detail: "\(payload.kind) on the rollout socket of an environment job")
        }
    }

    package func update(_ batch: [EpisodeChunk], version: Int) throws -> [String: Double] {
        learner.version = UInt64(version)
        let before = net.params, beforeOpt = learner.optimizer
        let st: ActorCriticStats
        do { st = try learner.update(batch) } catch {
            throw ClusterError("learner: update failed on validated chunks: \(error)")   // a programmer error
        }
        if !st.policyLoss.isFinite || !st.valueLoss.isFinite || !net.params.allSatisfy(isPublishable) {
            net.params = before
            learner.optimizer = beforeOpt
            skipped += 1
            roleLog("learner: update \(step + 1) diverged; " + divergedUpdateAdvice(skipped: skipped, learningRateKey: "env.learningRate",
                                                                                   value: config.env.learningRate))
        }
        step += 1
        return [MetricKey.policyLoss: st.policyLoss, MetricKey.valueLoss: st.valueLoss, MetricKey.entropy: st.entropy,
                MetricKey.rhoMean: st.meanRho, MetricKey.gradNorm: Double(st.gradNorm)]
    }

    package func save(to url: URL, metadata: [String: String]) throws {
        try ModelCheckpoint.save(net, optimizer: learner.optimizer, step: step,
                                 metadata: metadata.merging(["env": envName]) { a, _ in a }, to: url)
    }

    package func restore(from url: URL) throws -> [String: String] {
        let (opt, step, meta) = try ModelCheckpoint.load(from: url, into: net)
        guard meta["env"] == envName else {
            throw ClusterError("checkpoint \(url.lastPathComponent) is for env \"\(meta["env"] ?? "none")\", this run is \(envName); use another run.dir")
        }
        if let opt { learner.optimizer = opt }
        self.step = step
        return meta
    }
}
