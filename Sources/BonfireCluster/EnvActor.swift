// The environment actor: the runtime's actor for environment jobs (`env.name` = gridworld | keydoor). Holds an MLP
// with the latest parameters it received (one policy version per round), steps `env.envsPerActor` environments
// `env.chunkLength` times per round — one batched forward per step, a ~ π(·|x) sampled, log π(a|x) and the version
// recorded per step — and pushes one EpisodeBatch message per environment chunk (chunks also end at a truncation, as
// in EnvTraining.swift), then one `.metrics` message with the completed episodes of the round (count, return sum,
// length sum) for the learner's episode statistics. Sockets and protocol are the shared `ActorLink` (ActorLink.swift);
// the PUSH high-water mark is 2 rounds of chunks (backpressure, so an actor cannot run far ahead).
//
// Episodes are seeded from (run seed, actor id, pid, env index, episode counter); actions from
// RNG(run seed, actor id, pid), so a restarted actor does not replay its previous episodes.
// Evaluation requests: answered with one row per requested temperature, n = 1, over `numPrompts` fresh episodes
// (eval seeds, disjoint from training): meanReward = boN = mean undiscounted return of the current policy (Bo-1 with
// R = the episode return), passAtN = that return / the environment's optimal return (fraction of optimal);
// temperature 0 = greedy actions, otherwise softmax(logits / T).
import BonfireAlgorithms
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class EnvActorRole {
    let config: RunConfig
    let training: EnvTrainingConfig
    let net: MLP
    let hash: UInt64
    let actorID: Int
    var version: Int = -1
    var rng: RNG
    var envs: [any Environment]
    var observations: [[Float]]
    var episodeCounter: [UInt64]
    var epReturn: [Double], epLength: [Int]
    var stepsTotal = 0, chunksSent = 0, droppedTotal = 0, episodesTotal = 0
    /// Rounds rolled out with the version held now, and the budget per version (0 = unlimited).
    var roundsWithVersion = 0
    let roundBudget: Int
    let reference: ReferenceReturns

    package init(config: RunConfig, id: Int) throws {
        self.config = config
        self.actorID = id
        let training = try config.envTrainingConfig()
        self.training = training
        self.net = MLP(config: try config.envMLPConfig(), seed: config.run.seed)
        self.hash = layoutHash(net.layout)
        self.rng = RNG(seed: config.run.seed, stream: 0x656E_7661, UInt64(id), UInt64(getpid()))   // "enva"
        let B = config.env.envsPerActor
        let fill = (config.env.chunksPerUpdate * config.learner.publishEvery + config.actors.count * B - 1) / (config.actors.count * B)
        self.roundBudget = config.env.roundsPerVersion == 0 ? 0 : max(config.env.roundsPerVersion, fill)
        self.envs = (0..<B).map { _ in training.makeEnvironment() }
        self.episodeCounter = [UInt64](repeating: 0, count: B)
        self.epReturn = [Double](repeating: 0, count: B)
        self.epLength = [Int](repeating: 0, count: B)
        self.observations = []
        let e = training.makeEnvironment()
        if let g = e as? GridWorld { reference = g.referenceReturns() }
        else if let k = e as? KeyDoor { reference = k.referenceReturns() }
        else { reference = ReferenceReturns(optimal: 0, random: 0) }
        for i in 0..<B { observations.append(envs[i].reset(seed: episodeSeed(i)).vector) }
    }

    var name: String { "actor-\(actorID)" }

    func episodeSeed(_ i: Int) -> UInt64 {
        var r = RNG(seed: config.run.seed, stream: 0x6570, UInt64(actorID) << 32 | UInt64(i), episodeCounter[i] ^ (UInt64(getpid()) << 40))
        return r.next()
    }

    package func run(context: ZMQContext) throws -> Int32 {
        let e = config.endpoints
        let link = try ActorLink(context: context, config: config, id: actorID,
                                 capabilities: ["episodes:" + envs[0].name, "eval"],
                                 pushHighWaterMark: Int32(2 * (config.env.envsPerActor + 1)), layoutHash: layoutHash(net.layout),
                                 parameterCount: net.params.count, modelSection: "env section")
        defer { link.close() }
        let apply: ([Float], Int) throws -> Void = { [self] values, v in
            let first = version < 0
            net.params = values
            version = v
            roundsWithVersion = 0
            if first { roleLog("\(name): got parameters version \(v); rolling out \(envs.count) \(envs[0].name) environments") }
        }
        try link.register(detail: "; env \(envs[0].name) × \(envs.count)")
        guard try link.fetchInitialParameters(apply) else { return 0 }

        var lastMetrics = monotonicMillis()
        var periodSteps = 0
        var pushBlockedSince: Int64?
        while true {
            if StopFlag.isSet {
                roleLog("\(name): stop signal; leaving")
                link.leave(reason: "actor stopped by signal")
                return 0
            }
            let now = monotonicMillis()
            _ = try link.pollParameters(apply)
            for event in try link.pollControl() {
                switch event {
                case .shutdown(let reason):
                    roleLog("\(name): shutdown from coordinator (\(reason)); sent \(chunksSent) chunks, \(stepsTotal) env steps, \(episodesTotal) episodes")
                    return 0
                case .evalRequest(let r):
                    try link.sendControl(.evalReport(evaluate(r)), timeout: ms(config.liveness.receiveTimeoutMs))
                }
            }
            link.heartbeat(state: "sampling")
            if now - lastMetrics >= Int64(config.logging.periodSeconds * 1000) {
                let rate = Double(periodSteps) / (Double(now - lastMetrics) / 1000)
                // samples = env steps, so the coordinator's samples/s line counts env steps.
                try link.sendControl(.metrics(WireMetrics(step: UInt64(chunksSent), version: UInt64(max(version, 0)), values: [
                    "actor/samples_total": Double(stepsTotal), "actor/dropped_total": Double(droppedTotal),
                    "actor/episodes_total": Double(episodesTotal), EnvMetricKey.envStepsPerSecond: rate,
                ])))
                lastMetrics = now; periodSteps = 0
            }

            // Version budget: after `roundBudget` rounds with one version, wait (bounded) for a newer one.
            if roundBudget > 0, roundsWithVersion >= roundBudget {
                guard try link.waitForNewerVersion(apply, state: "waiting-for-version") else { continue }
                roundsWithVersion = 0   // newer version (apply reset it too) or none within the deadline: roll out
            }
            // One round with the single version we hold now.
            let (chunks, report) = try rollout()
            roundsWithVersion += 1
            var blocked = false
            for c in chunks {
                // After one send timed out, drop the rest of the round instead of waiting again for each chunk.
                if !blocked, try link.push(.episodes(c.wire), timeout: ms(config.liveness.receiveTimeoutMs)) {
                    chunksSent += 1
                } else {
                    droppedTotal += 1
                    blocked = true
                }
            }
            if report.count > 0 {
                // Episode statistics are not worth waiting for: dropped when the queue is full.
                _ = try link.tryPush(.metrics(WireMetrics(step: UInt64(chunksSent), version: UInt64(version), values: [
                    EnvMetricKey.reportEpisodes: Double(report.count), EnvMetricKey.reportReturnSum: report.returnSum,
                    EnvMetricKey.reportLengthSum: report.lengthSum,
                ])))
            }
            let steps = chunks.reduce(0) { $0 + $1.count }
            stepsTotal += steps; periodSteps += steps
            if blocked {
                let since = pushBlockedSince ?? now
                pushBlockedSince = since
                roleLog("\(name): learner is not taking rollouts at \(e.connect(e.rolloutPort)) (send waited " +
                        "\(config.liveness.receiveTimeoutMs) ms, blocked for \(now - since) ms); dropped chunks (\(droppedTotal) so far), retrying")
            } else {
                pushBlockedSince = nil
            }
        }
    }

    /// Steps every environment `chunkLength` times with the current parameters; returns the chunks (cut at
    /// truncations and at the round's end) and the completed episodes' count, return sum and length sum.
    func rollout() throws -> (chunks: [EpisodeChunk], report: (count: Int, returnSum: Double, lengthSum: Double)) {
        let B = envs.count, D = net.config.inputSize, A = net.config.actionCount, name = envs[0].name
        let v = UInt64(max(version, 0))
        var open = (0..<B).map { _ in EpisodeChunk(env: name, observationSize: D) }
        var chunks: [EpisodeChunk] = []
        var report = (count: 0, returnSum: 0.0, lengthSum: 0.0)
        var batchObs = [Float](repeating: 0, count: B * D)   // (B, D)
        for _ in 0..<config.env.chunkLength {
            for i in 0..<B { for j in 0..<D { batchObs[i * D + j] = observations[i][j] } }
            let (logits, _) = net.forward(batchObs, batch: B)   // (B, A)
            for i in 0..<B {
                let (a, lp) = sampleAction(logits, row: i, count: A, temperature: 1)
                let r: StepResult
                do { r = try envs[i].step(a) } catch {
                    throw ClusterError("\(self.name): environment \(name) rejected action \(a): \(error)")
                }
                open[i].append(observation: observations[i], action: a, reward: r.reward, done: r.done,
                               truncated: r.truncated, behaviourLogProb: lp, behaviourVersion: v)
                epReturn[i] += Double(r.reward); epLength[i] += 1
                if r.isLast {
                    report.count += 1; report.returnSum += epReturn[i]; report.lengthSum += Double(epLength[i])
                    episodesTotal += 1
                    epReturn[i] = 0; epLength[i] = 0
                    if r.truncated {
                        open[i].bootstrapObservation = r.observation.vector
                        chunks.append(open[i])
                        open[i] = EpisodeChunk(env: name, observationSize: D)
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
        return (chunks, report)
    }

    /// a ~ softmax(logits_r / T) (T = 0: argmax); returns (a, log-prob of a under the sampling distribution).
    func sampleAction(_ logits: [Float], row r: Int, count A: Int, temperature: Double) -> (Int, Float) {
        if temperature == 0 {
            let lp = MLP.logSoftmax(logits, row: r, count: A)
            let a = lp.indices.max { lp[$0] < lp[$1] }!
            return (a, 0)
        }
        let scaled = temperature == 1 ? logits : (0..<A).map { logits[r * A + $0] / Float(temperature) }
        let lp = MLP.logSoftmax(scaled, row: temperature == 1 ? r : 0, count: A)
        var u = rng.uniform()
        for a in 0..<A {
            u -= exp(lp[a])
            if u < 0 { return (a, Float(lp[a])) }
        }
        return (A - 1, Float(lp[A - 1]))
    }

    /// Mean undiscounted return of the current parameters over `numPrompts` fresh episodes per temperature.
    func evaluate(_ r: WireEvalRequest) throws -> WireEvalReport {
        let episodes = max(1, r.numPrompts)
        roleLog("\(name): evaluating version \(version) (requested \(r.version)) on \(episodes) \(envs[0].name) episodes")
        var rows: [WireEvalRow] = []
        for temperature in (r.temperatures.isEmpty ? [1.0] : r.temperatures) {
            var env = training.makeEnvironment()
            var total = 0.0
            for k in 0..<episodes {
                var seedRNG = RNG(seed: config.run.seed, stream: 0x6576, UInt64(k))   // eval seeds, as EnvTraining
                var o = env.reset(seed: seedRNG.next()).vector
                while true {
                    let (logits, _) = net.forward(o, batch: 1)
                    let (a, _) = sampleAction(logits, row: 0, count: net.config.actionCount, temperature: temperature)
                    let s: StepResult
                    do { s = try env.step(a) } catch { throw ClusterError("\(name): evaluation step failed: \(error)") }
                    total += Double(s.reward)
                    if s.isLast { break }
                    o = s.observation.vector
                }
            }
            let mean = total / Double(episodes)
            rows.append(WireEvalRow(n: 1, temperature: temperature,
                                    passAtN: reference.optimal > 0 ? mean / reference.optimal : 0,
                                    boN: mean, meanReward: mean, numPrompts: episodes))
        }
        roleLog("\(name): eval v\(version): " + rows.map { String(format: "T=%.2f return=%.3f (%.0f%% of optimal %.2f)", $0.temperature, $0.meanReward, 100 * $0.passAtN, reference.optimal) }.joined(separator: ", "))
        return WireEvalReport(requestID: r.requestID, version: UInt64(max(version, 0)), task: r.task, split: r.split, rows: rows)
    }
}
