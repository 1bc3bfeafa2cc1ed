// The learner: collects BoN groups from actors, drops the too-stale ones, runs the configured algorithm's update,
// and publishes versioned parameters (after every `publishEvery` updates). Sockets and protocol are the shared
// `LearnerLink` (LearnerLink.swift); metrics go to the coordinator once per update, `run/finished` at the end.
// Policy version v = number of updates applied (a resumed run continues the sequence from its checkpoint).
// Staleness: lag = v − behaviour version; lag > maxPolicyLag → dropped and counted (StalenessGate); accepted stale
// samples are importance-corrected by the algorithm (truncated ratios, `learner.importanceClip`).
import BonfireAlgorithms
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class LearnerRole {
    let config: RunConfig
    let runDir: RunDirectory
    let task: any VerifiableTask
    var model: GPT
    var updater: PolicyUpdater
    var version = 0
    var gate: StalenessGate
    let resume: Bool
    var lastCheckpointVersion = -1

    package init(config: RunConfig, runDir: RunDirectory, resume: Bool) throws {
        self.config = config
        self.runDir = runDir
        self.resume = resume
        self.task = try TaskRegistry.make(name: config.task.name, seed: config.task.seed)
        self.model = GPT(config: config.gptConfig, seed: config.run.seed)
        self.updater = try PolicyUpdater(config: config, task: task, layout: model.layout)
        self.gate = StalenessGate(config.learner)
    }

    var hash: UInt64 { layoutHash(model.layout) }

    /// Loads the starting point: the latest checkpoint of this run (--resume), an init checkpoint, or a fresh
    /// model warmed up by SFT on reference solutions.
    func prepare(tick: () -> Void) throws {
        if resume, let ref = runDir.latestCheckpoint() {
            let (opt, step, meta) = try Checkpoint.load(from: ref.url, into: model)
            if let opt { updater.optimizer = opt }
            version = Int(meta["policy_version"] ?? "") ?? step
            updater.step = step
            lastCheckpointVersion = version
            roleLog("learner: resumed from \(ref.url.lastPathComponent): version \(version), step \(step)")
            return
        }
        if resume { roleLog("learner: --resume given but no checkpoint in \(runDir.checkpointsURL.path); starting fresh") }
        if !config.algorithm.initCheckpoint.isEmpty {
            let url = URL(fileURLWithPath: config.algorithm.initCheckpoint)
            do { _ = try Checkpoint.load(from: url, into: model) } catch {
                throw ClusterError("learner: cannot load algorithm.initCheckpoint \(url.path): \(error)")
            }
            roleLog("learner: initialised from \(url.path)")
            return
        }
        if config.algorithm.sftWarmupSteps > 0 {
            roleLog("learner: no init checkpoint: \(config.algorithm.sftWarmupSteps) SFT warm-up steps on reference solutions")
            try updater.warmup(model: model, steps: config.algorithm.sftWarmupSteps, tick: tick) { roleLog("learner: warm-up " + $0) }
        }
    }

    package func run(context: ZMQContext) throws -> Int32 {
        let e = config.endpoints
        let link = try LearnerLink(context: context, config: config, capabilities: [config.algorithm.name],
                                   pullHighWaterMark: 64, pubHighWaterMark: 4)
        defer { link.close() }
        let hash = self.hash
        let values = { [model] in model.params }

        // Warm-up can take a while: keep heartbeating so the coordinator does not declare us dead.
        try prepare { link.heartbeat(version: 0, state: "warm-up") }
        // Parameters of the starting version, for actors that are already waiting.
        try link.publish(version: version, layoutHash: hash, values: model.params)
        link.sendMetrics(step: updater.step, version: version, values: [:])
        roleLog("learner: serving version \(version) (\(model.params.count) parameters); algorithm \(config.algorithm.name), " +
                "N′=\(config.algorithm.trainN), \(config.learner.groupsPerStep) groups per update, max lag \(config.learner.maxPolicyLag)")

        var buffer: [BoNGroup] = []   // arrived, not yet judged
        var ready: [BoNGroup] = []    // judged fresh enough for the next update (judged once each)
        var lastRollout = monotonicMillis()
        var lastWaitLog = monotonicMillis()
        let started = monotonicMillis()
        let stepsAtStart = updater.step
        var samplesSeen = 0
        while true {
            if let why = try link.service(version: version, layoutHash: hash, values: values) {
                roleLog("learner: \(why): final checkpoint at version \(version)")
                try checkpoint()
                return 0
            }
            let now = monotonicMillis()
            // Rollouts.
            if let env = try link.receiveRollout(timeout: .milliseconds(20)) {
                if case .bonGroups(let b) = env.payload {
                    lastRollout = now
                    buffer.append(contentsOf: b.groups.map { BoNGroup(wire: $0) })
                }
            } else if now - lastRollout > Int64(config.liveness.receiveTimeoutMs), now - lastWaitLog > 5000 {
                roleLog("learner: no rollouts for \(now - lastRollout) ms at \(e.bind(e.rolloutPort)); waiting for actors (see the coordinator log for live actors)")
                lastWaitLog = now
            }
            // Staleness is judged when a group is used, not when it arrived: a queued group ages. `ready` holds groups
            // accepted at the current version (the version only changes with the update that consumes them all).
            while ready.count < config.learner.groupsPerStep, !buffer.isEmpty {
                let g = buffer.removeFirst()
                if gate.decide(behaviourVersion: g.behaviourVersion, currentVersion: version).isAccepted {
                    ready.append(g)
                    samplesSeen += g.n
                }
            }
            guard ready.count == config.learner.groupsPerStep else { continue }
            let batch = ready
            ready.removeAll()

            // One update on the oldest usable groups.
            var stats = try updater.update(model: model, groups: batch, currentVersion: version)
            version += 1
            if version % config.learner.publishEvery == 0 {
                try link.publish(version: version, layoutHash: hash, values: model.params)
            }
            let elapsed = Double(monotonicMillis() - started) / 1000
            stats[MetricKey.stepsPerSecond] = Double(updater.step - stepsAtStart) / max(elapsed, 1e-3)
            stats[MetricKey.samplesPerSecond] = Double(samplesSeen) / max(elapsed, 1e-3)
            stats[MetricKey.accepted] = Double(gate.accepted)
            stats[MetricKey.dropped] = Double(gate.dropped)
            stats[MetricKey.acceptedStale] = Double(gate.acceptedStale)
            stats[MetricKey.meanLag] = gate.meanAcceptedLag
            stats[MetricKey.wireDropped] = Double(link.dropped)
            let finished = updater.step >= config.learner.maxSteps
            if finished { stats[MetricKey.runFinished] = 1 }
            if (config.learner.checkpointEvery > 0 && version % config.learner.checkpointEvery == 0) || finished { try checkpoint() }
            link.sendMetrics(step: updater.step, version: version, values: stats)
            if finished {
                roleLog("learner: reached learner.maxSteps=\(config.learner.maxSteps) at version \(version); done")
                link.leave(reason: "finished at version \(version)")
                try link.lingerAfterFinish(version: version, layoutHash: hash, values: values)
                return 0
            }
        }
    }

    func checkpoint() throws {
        guard version != lastCheckpointVersion else { return }
        let url = runDir.checkpointURL(version: version)
        do {
            try Checkpoint.save(model: model, optimizer: updater.optimizer, step: updater.step,
                                metadata: ["policy_version": String(version), "run_id": config.run.id,
                                           "algorithm": config.algorithm.name, "config": config.resolvedJSON()],
                                to: url)
        } catch {
            throw ClusterError("learner: cannot write checkpoint \(url.path): \(error). Check free disk space and permissions")
        }
        lastCheckpointVersion = version
        roleLog("learner: checkpoint \(url.lastPathComponent) (version \(version), step \(updater.step))")
    }
}

extension BoNGroup {
    /// The algorithms' view of a wire group.
    init(wire g: WireBoNGroup) {
        self.init(promptTokens: g.promptTokens, responses: g.responses.map(\.tokens),
                  behaviourLogProbs: g.responses.map(\.tokenLogProbs), behaviourVersion: Int(g.behaviourVersion),
                  scores: g.responses.map(\.verifierScore), rewards: g.responses.map(\.reward),
                  itemID: String(g.itemID))
    }
}
