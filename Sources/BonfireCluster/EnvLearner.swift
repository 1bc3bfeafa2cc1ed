// The environment learner: the runtime's learner for environment jobs (`env.name` = gridworld | keydoor).
// Collects EpisodeChunks from actors, drops the too-stale ones, runs one off-policy actor-critic update (V-trace,
// ActorCriticLearner, Sources/BonfireAlgorithms/ActorCritic.swift) per `env.chunksPerUpdate` chunks, and publishes
// the MLP's parameters as the next policy version. Sockets and protocol are the shared LearnerLink (LearnerLink.swift):
//
//   PULL   (bind rolloutPort)        ← actors' `.episodes` (one chunk per message) and `.metrics` (completed
//                                      episodes of the actor's last round: env/episodes, env/return_sum,
//                                      env/length_sum — the learner aggregates them into its own metrics)
//   PUB    (bind paramsPort)         → parameters after every `learner.publishEvery` updates
//   ROUTER (bind paramsRequestPort)  ← a `hello` asks for the current parameters (late-joining / restarted actors)
//   DEALER → coordinator             hello, heartbeats, metrics (one per update; `run/finished` at learner.maxSteps)
//
// Policy version v = number of updates applied; a `--resume`d run continues the sequence from its checkpoint.
// Staleness: a chunk is judged by its oldest behaviour version: lag = v − that > learner.maxPolicyLag → dropped and
// counted (StalenessGate); accepted chunks are corrected by V-trace (ρ̄, c̄ = 1).
// Metrics per update: loss/policy, loss/value, policy/entropy, vtrace/rho_mean, train/grad_norm, staleness/*,
// env/episode_return and env/episode_length (mean over the last ≥ 100 completed episodes the actors reported, i.e.
// of the behaviour policies), env/episodes, env/steps and throughput/env_steps_per_s (steps received per second).
// Checkpoints (<run>/checkpoints/vNNNNNN.safetensors): one F32 tensor per MLP layout entry plus "adam.m.<name>" and
// "adam.v.<name>", metadata policy_version, step, adam_step, env, mlp (MLPConfig JSON), run_id, config.
import BonfireAlgorithms
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Metric keys of environment jobs (the coordinator's period line shows return, length and env steps/s).
package enum EnvMetricKey {
    package static let episodeReturn = "env/episode_return"
    package static let episodeLength = "env/episode_length"
    package static let envStepsPerSecond = "throughput/env_steps_per_s"
    package static let episodes = "env/episodes"
    package static let envSteps = "env/steps"
    /// Actor → learner report of one round's completed episodes (sent on the rollout PUSH socket).
    package static let reportEpisodes = "env/report/episodes"
    package static let reportReturnSum = "env/report/return_sum"
    package static let reportLengthSum = "env/report/length_sum"
}

extension RunConfig {
    /// The environment kind of an environment job; throws when `env.name` is not one.
    package func environmentKind() throws -> EnvironmentKind {
        guard let k = EnvironmentKind(rawValue: env.name), RunConfig.envNames.contains(env.name) else {
            throw ClusterError("env.name \"\(env.name)\" is not an environment job; use one of \(RunConfig.envNames.joined(separator: ", "))")
        }
        return k
    }

    /// The single-process training config this run's `env` section corresponds to (defaults of
    /// `EnvTrainingConfig.defaults(for:)`, overridden by the section's knobs).
    package func envTrainingConfig() throws -> EnvTrainingConfig {
        var c = EnvTrainingConfig.defaults(for: try environmentKind())
        c.seed = run.seed
        c.numEnvs = env.envsPerActor
        c.unrollLength = env.chunkLength
        c.hiddenSizes = env.hiddenSizes
        if env.gamma > 0 { c.learner.vtrace.gamma = env.gamma }
        c.learner.entropyCoefficient = Float(env.entropyCoefficient)
        c.learner.valueCoefficient = Float(env.valueCoefficient)
        c.learner.learningRate = Float(env.learningRate)
        c.learner.maxGradNorm = Float(env.maxGradNorm)
        return c
    }

    /// The MLP shape of this run's environment.
    package func envMLPConfig() throws -> MLPConfig {
        let t = try envTrainingConfig()
        let e = t.makeEnvironment()
        return MLPConfig(inputSize: e.observationSize, actionCount: e.actionCount, hiddenSizes: t.hiddenSizes)
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
        guard count > 0, count.isFinite, returnSum.isFinite, lengthSum.isFinite else { return }
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
}

package final class EnvLearnerRole {
    let config: RunConfig
    let runDir: RunDirectory
    let training: EnvTrainingConfig
    let envName: String
    let learner: ActorCriticLearner
    /// Policy version (resumed version + updates of this process).
    var version = 0
    /// Learner updates (continues across --resume).
    var step = 0
    var gate: StalenessGate
    let resume: Bool
    var lastCheckpointVersion = -1
    var episodes = EpisodeWindow()
    var invalidChunks = 0

    package init(config: RunConfig, runDir: RunDirectory, resume: Bool) throws {
        self.config = config
        self.runDir = runDir
        self.resume = resume
        self.training = try config.envTrainingConfig()
        let mlp = try config.envMLPConfig()
        self.envName = training.makeEnvironment().name
        self.learner = ActorCriticLearner(net: MLP(config: mlp, seed: config.run.seed), config: training.learner)
        self.gate = StalenessGate(config.learner)
    }

    var net: MLP { learner.net }
    var hash: UInt64 { layoutHash(net.layout) }

    /// Loads the latest checkpoint of this run when resuming.
    func prepare() throws {
        guard resume else { return }
        guard let ref = runDir.latestCheckpoint() else {
            roleLog("learner: --resume given but no checkpoint in \(runDir.checkpointsURL.path); starting fresh")
            return
        }
        let file: (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String])
        do { file = try SafeTensors.read(from: ref.url) } catch {
            throw ClusterError("learner: cannot read checkpoint \(ref.url.path): \(error). Delete it to resume from the previous one")
        }
        guard file.metadata["env"] == envName else {
            throw ClusterError("learner: checkpoint \(ref.url.lastPathComponent) is for env \"\(file.metadata["env"] ?? "none")\", " +
                               "this run is \(envName); use another run.dir")
        }
        var params = net.params, m = [Float](repeating: 0, count: params.count), v = m
        for e in net.layout.entries {
            guard let t = file.tensors[e.name], t.shape == e.shape else {
                throw ClusterError("learner: checkpoint \(ref.url.lastPathComponent) lacks tensor \(e.name) \(e.shape) " +
                                   "(env.hiddenSizes changed?); resume with the config the run started with")
            }
            params.replaceSubrange(e.range, with: t.data)
            if let tm = file.tensors["adam.m." + e.name], let tv = file.tensors["adam.v." + e.name],
               tm.data.count == e.range.count, tv.data.count == e.range.count {
                m.replaceSubrange(e.range, with: tm.data); v.replaceSubrange(e.range, with: tv.data)
            }
        }
        net.params = params
        learner.optimizer.m = m
        learner.optimizer.v = v
        learner.optimizer.step = Int(file.metadata["adam_step"] ?? "") ?? 0
        version = Int(file.metadata["policy_version"] ?? "") ?? ref.version
        step = Int(file.metadata["step"] ?? "") ?? version
        lastCheckpointVersion = version
        roleLog("learner: resumed from \(ref.url.lastPathComponent): version \(version), step \(step)")
    }

    package func run(context: ZMQContext) throws -> Int32 {
        let e = config.endpoints
        let link = try LearnerLink(context: context, config: config, capabilities: ["env:" + envName],
                                   pullHighWaterMark: Int32(2 * config.env.chunksPerUpdate), pubHighWaterMark: 2)
        defer { link.close() }
        let values = { [net] in net.params }
        try prepare()

        try link.publish(version: version, layoutHash: hash, values: net.params)
        link.sendMetrics(step: step, version: version, values: [:])
        let t = training.learner
        roleLog("learner: env \(envName), serving version \(version) (\(net.parameterCount) MLP parameters " +
                "\(net.config.inputSize)→\(net.config.hiddenSizes.map(String.init).joined(separator: "→"))→\(net.config.actionCount)+1); " +
                "\(config.env.chunksPerUpdate) chunks of ≤\(config.env.chunkLength) steps per update, γ \(t.vtrace.gamma), " +
                "entropy \(t.entropyCoefficient), lr \(t.learningRate), max lag \(config.learner.maxPolicyLag)")

        var buffer: [EpisodeChunk] = []
        var ready: [EpisodeChunk] = []
        var lastRollout = monotonicMillis()
        var lastWaitLog = monotonicMillis()
        let started = monotonicMillis()
        let stepsAtStart = step
        var stepsReceived = 0
        let actionCount = net.config.actionCount, inputSize = net.config.inputSize
        while true {
            if let why = try link.service(version: version, layoutHash: hash, values: values) {
                roleLog("learner: \(why): final checkpoint at version \(version)")
                try checkpoint()
                return 0
            }
            let now = monotonicMillis()
            // Rollouts: wait up to 20 ms for the first message, then drain what is queued (bounded).
            var received = 0
            while received < 4 * config.env.chunksPerUpdate,
                  let env = try link.receiveRollout(timeout: received == 0 ? .milliseconds(20) : .zero) {
                received += 1
                lastRollout = now
                switch env.payload {
                case .episodes(let w):
                    stepsReceived += w.numSteps
                    let chunk: EpisodeChunk
                    do {
                        guard w.env == envName, w.observationDim == inputSize else {
                            throw ActorCriticError("env \(w.env) with D = \(w.observationDim), this run is \(envName) with D = \(inputSize)")
                        }
                        chunk = try EpisodeChunk(wire: w, actionCount: actionCount)
                    } catch {
                        invalidChunks += 1
                        roleLog("learner: dropped an invalid chunk from \(peerName(role: env.senderRole, id: env.senderID)) " +
                                "(\(invalidChunks) so far): \(error)")
                        continue
                    }
                    buffer.append(chunk)
                case .metrics(let m):
                    episodes.add(count: m.values[EnvMetricKey.reportEpisodes] ?? 0,
                                 returnSum: m.values[EnvMetricKey.reportReturnSum] ?? 0,
                                 lengthSum: m.values[EnvMetricKey.reportLengthSum] ?? 0)
                default: break
                }
            }
            if received == 0, now - lastRollout > Int64(config.liveness.receiveTimeoutMs), now - lastWaitLog > 5000 {
                roleLog("learner: no rollouts for \(now - lastRollout) ms at \(e.bind(e.rolloutPort)); waiting for actors (see the coordinator log for live actors)")
                lastWaitLog = now
            }
            // The staleness gate judges chunks when they are used (a chunk can wait in the buffer): oldest first,
            // too-stale ones dropped and counted. `ready` holds chunks accepted at the current version (the version
            // only changes with the update that consumes them all).
            while ready.count < config.env.chunksPerUpdate, !buffer.isEmpty {
                let chunk = buffer.removeFirst()
                if gate.decide(behaviourVersion: Int(chunk.oldestBehaviourVersion), currentVersion: version).isAccepted {
                    ready.append(chunk)
                }
            }
            guard ready.count == config.env.chunksPerUpdate else { continue }
            let batch = ready
            ready.removeAll(keepingCapacity: true)
            let st: ActorCriticStats
            do { st = try learner.update(batch) } catch {
                throw ClusterError("learner: update failed on validated chunks: \(error)")   // not expected
            }
            let lagSum = batch.reduce(0.0) { acc, c in
                acc + c.behaviourVersions.reduce(0.0) { $0 + Double(version - min(version, Int($1))) }
            }
            let batchSteps = batch.reduce(0) { $0 + $1.count }
            version += 1
            step += 1
            if version % config.learner.publishEvery == 0 {
                try link.publish(version: version, layoutHash: hash, values: net.params)
            }
            let elapsed = max(Double(monotonicMillis() - started) / 1000, 1e-3)
            var stats: [String: Double] = [
                MetricKey.policyLoss: st.policyLoss, "loss/value": st.valueLoss, "policy/entropy": st.entropy,
                "vtrace/rho_mean": st.meanRho, "lag/mean": lagSum / Double(max(1, batchSteps)),
                "train/grad_norm": Double(st.gradNorm), MetricKey.learnerStep: Double(step),
                MetricKey.stepsPerSecond: Double(step - stepsAtStart) / elapsed,
                EnvMetricKey.envStepsPerSecond: Double(stepsReceived) / elapsed,
                EnvMetricKey.envSteps: Double(stepsReceived), EnvMetricKey.episodes: episodes.totalEpisodes,
                MetricKey.accepted: Double(gate.accepted), MetricKey.dropped: Double(gate.dropped),
                MetricKey.acceptedStale: Double(gate.acceptedStale), MetricKey.meanLag: gate.meanAcceptedLag,
                MetricKey.wireDropped: Double(link.dropped + invalidChunks),
            ]
            if let r = episodes.meanReturn { stats[EnvMetricKey.episodeReturn] = r }
            if let l = episodes.meanLength { stats[EnvMetricKey.episodeLength] = l }
            let finished = step >= config.learner.maxSteps
            if finished { stats[MetricKey.runFinished] = 1 }
            if (config.learner.checkpointEvery > 0 && version % config.learner.checkpointEvery == 0) || finished {
                try checkpoint()
            }
            link.sendMetrics(step: step, version: version, values: stats)
            if finished {
                roleLog("learner: reached learner.maxSteps=\(config.learner.maxSteps) at version \(version); " +
                        "return/mean \(episodes.meanReturn.map { String(format: "%.3f", $0) } ?? "-") over the last \(Int(episodes.count)) episodes; done")
                link.leave(reason: "finished at version \(version)")
                try link.lingerAfterFinish(version: version, layoutHash: hash, values: values)
                return 0
            }
        }
    }

    func checkpoint() throws {
        guard version != lastCheckpointVersion else { return }
        let url = runDir.checkpointURL(version: version)
        let opt = learner.optimizer
        var tensors: [SafeTensors.NamedTensor] = net.layout.entries.map { ($0.name, $0.shape, Array(net.params[$0.range])) }
        if opt.m.count == net.params.count {
            for e in net.layout.entries { tensors.append(("adam.m." + e.name, e.shape, Array(opt.m[e.range]))) }
            for e in net.layout.entries { tensors.append(("adam.v." + e.name, e.shape, Array(opt.v[e.range]))) }
        }
        let mlpJSON = (try? JSONEncoder().encode(net.config)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        do {
            try FileManager.default.createDirectory(at: runDir.checkpointsURL, withIntermediateDirectories: true)
            try SafeTensors.write(to: url, tensors: tensors, metadata: [
                "policy_version": String(version), "step": String(step), "adam_step": String(opt.step),
                "env": envName, "mlp": mlpJSON, "run_id": config.run.id, "config": config.resolvedJSON(),
            ])
        } catch {
            throw ClusterError("learner: cannot write checkpoint \(url.path): \(error). Check free disk space and permissions")
        }
        lastCheckpointVersion = version
        roleLog("learner: checkpoint \(url.lastPathComponent) (version \(version), step \(step))")
    }
}
