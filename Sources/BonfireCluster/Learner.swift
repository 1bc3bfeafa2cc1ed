// The learner: collects BoN groups from actors, drops the too-stale ones, runs the configured algorithm's update,
// and publishes versioned parameters.
//
//   PULL   (bind rolloutPort)        ← actors' BoN group batches
//   PUB    (bind paramsPort)         → parameter broadcast after every `publishEvery` updates
//   ROUTER (bind paramsRequestPort)  ← a `hello` asks for the current parameters (late-joining / restarted actors)
//   DEALER → coordinator             hello, heartbeats, metrics (one per update; `run/finished` at the end)
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
    var identity: RoleIdentity
    let task: any VerifiableTask
    var model: GPT
    var updater: PolicyUpdater
    var version = 0
    var gate: StalenessGate
    var decoder: WireDecoder
    let resume: Bool
    var lastCheckpointVersion = -1

    package init(config: RunConfig, runDir: RunDirectory, resume: Bool) throws {
        self.config = config
        self.runDir = runDir
        self.resume = resume
        self.identity = RoleIdentity(runID: config.run.id, role: .learner, id: 0)
        self.task = try TaskRegistry.make(name: config.task.name, seed: config.task.seed)
        self.model = GPT(config: config.gptConfig, seed: config.run.seed)
        self.updater = try PolicyUpdater(config: config, task: task, layout: model.layout)
        self.gate = StalenessGate(config.learner)
        self.decoder = WireDecoder(runID: config.run.id)
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
        let pull = try ZMQSocket(context, .pull, linger: .zero)
        let pub = try ZMQSocket(context, .pub, linger: .milliseconds(500))
        let paramRouter = try ZMQSocket(context, .router, linger: .milliseconds(200))
        let control = try ZMQSocket(context, .dealer, linger: .milliseconds(500))
        defer { pull.close(); pub.close(); paramRouter.close(); control.close() }
        try pull.set(.receiveHighWaterMark(64))
        try pub.set(.sendHighWaterMark(4))
        for (s, port) in [(pull, e.rolloutPort), (pub, e.paramsPort), (paramRouter, e.paramsRequestPort)] {
            do { try s.bind(e.bind(port)) } catch {
                throw ClusterError("learner cannot bind \(e.bind(port)): \(error). Is another run using this port? " +
                                   "Stop it or choose other ports (endpoints.*Port)")
            }
        }
        try control.set(.reconnectInterval(ms(config.liveness.reconnectInitialMs)))
        try control.set(.reconnectIntervalMax(ms(config.liveness.reconnectMaxMs)))
        try control.connect(e.connect(e.coordinatorPort))
        let hello = WireHello(role: .learner, id: 0, host: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                              capabilities: [config.algorithm.name])
        _ = try control.send(identity.envelope(.hello(hello)), timeout: .milliseconds(500))

        // Warm-up can take a while: keep heartbeating so the coordinator does not declare us dead.
        var lastBeat: Int64 = 0
        try prepare {
            let now = monotonicMillis()
            guard now - lastBeat >= Int64(self.config.liveness.heartbeatIntervalMs) else { return }
            lastBeat = now
            _ = try? control.trySend([self.identity.envelope(.heartbeat(WireHeartbeat(
                policyVersion: 0, unixTimeMs: unixTimeMs(), state: "warm-up"))).encoded()])
        }
        // Parameters of the starting version, for actors that are already waiting.
        var params = WireParameters(version: UInt64(version), layoutHash: hash, values: model.params)
        _ = try pub.trySend([identity.envelope(.parameters(params)).encoded()])
        sendMetrics(control, values: [:])
        roleLog("learner: serving version \(version) (\(model.params.count) parameters); algorithm \(config.algorithm.name), " +
                "N′=\(config.algorithm.trainN), \(config.learner.groupsPerStep) groups per update, max lag \(config.learner.maxPolicyLag)")

        var buffer: [BoNGroup] = []   // arrived, not yet judged
        var ready: [BoNGroup] = []    // judged fresh enough for the next update (judged once each)
        var lastHeartbeat: Int64 = 0
        var lastRollout = monotonicMillis()
        var lastWaitLog = monotonicMillis()
        let started = monotonicMillis()
        var stepsAtStart = updater.step
        var samplesSeen = 0
        while true {
            if StopFlag.isSet {
                roleLog("learner: stop signal \(StopFlag.signalNumber): final checkpoint at version \(version)")
                try checkpoint()
                _ = try? control.send(identity.envelope(.shutdown(WireShutdown(reason: "learner stopped by signal"))),
                                      timeout: .milliseconds(200))
                return 0
            }
            let now = monotonicMillis()
            // Late joiners: answer every parameter request with the current version.
            while let got = try paramRouter.receiveEnvelope(&decoder, timeout: .zero) {
                guard let route = got.prefix.first, case .success = got.envelope else { continue }
                if params.version != UInt64(version) {
                    params = WireParameters(version: UInt64(version), layoutHash: hash, values: model.params)
                }
                _ = try paramRouter.send(identity.envelope(.parameters(params)), prefix: [route], timeout: .milliseconds(200))
            }
            // Coordinator: shutdown, or a request to register again.
            while let got = try control.receiveEnvelope(&decoder, timeout: .zero) {
                guard case .success(let env) = got.envelope else { continue }
                switch env.payload {
                case .shutdown(let s):
                    roleLog("learner: shutdown from coordinator (\(s.reason)); final checkpoint at version \(version)")
                    try checkpoint()
                    return 0
                case .helloAck(let ack) where !ack.accepted:
                    _ = try control.send(identity.envelope(.hello(hello)), timeout: .milliseconds(200))
                default: break
                }
            }
            if now - lastHeartbeat >= Int64(config.liveness.heartbeatIntervalMs) {
                _ = try control.trySend([identity.envelope(.heartbeat(WireHeartbeat(
                    policyVersion: UInt64(version), unixTimeMs: unixTimeMs(), state: "training"))).encoded()])
                lastHeartbeat = now
            }
            // Rollouts.
            if let got = try pull.receiveEnvelope(&decoder, timeout: .milliseconds(20)) {
                switch got.envelope {
                case .failure(let err): roleLog("learner: dropped a rollout frame (\(decoder.dropped) so far): \(err)")
                case .success(let env):
                    if case .bonGroups(let b) = env.payload {
                        lastRollout = now
                        buffer.append(contentsOf: b.groups.map { BoNGroup(wire: $0) })
                    }
                }
            } else if now - lastRollout > Int64(config.liveness.receiveTimeoutMs), now - lastWaitLog > 5000 {
                roleLog("learner: no rollouts for \(now - lastRollout) ms at \(e.bind(e.rolloutPort)); waiting for actors (see the coordinator log for live actors)")
                lastWaitLog = now
            }
            // Staleness is judged when a group is used, not when it arrived: a queued group ages.
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
                params = WireParameters(version: UInt64(version), layoutHash: hash, values: model.params)
                _ = try pub.trySend([identity.envelope(.parameters(params)).encoded()])
            }
            let elapsed = Double(monotonicMillis() - started) / 1000
            stats[MetricKey.stepsPerSecond] = Double(updater.step - stepsAtStart) / max(elapsed, 1e-3)
            stats[MetricKey.samplesPerSecond] = Double(samplesSeen) / max(elapsed, 1e-3)
            stats[MetricKey.accepted] = Double(gate.accepted)
            stats[MetricKey.dropped] = Double(gate.dropped)
            stats[MetricKey.acceptedStale] = Double(gate.acceptedStale)
            stats[MetricKey.meanLag] = gate.meanAcceptedLag
            stats[MetricKey.wireDropped] = Double(decoder.dropped)
            let finished = updater.step >= config.learner.maxSteps
            if finished { stats[MetricKey.runFinished] = 1 }
            if (config.learner.checkpointEvery > 0 && version % config.learner.checkpointEvery == 0) || finished { try checkpoint() }
            sendMetrics(control, values: stats)
            if finished {
                roleLog("learner: reached learner.maxSteps=\(config.learner.maxSteps) at version \(version); done")
                _ = try? control.send(identity.envelope(.shutdown(WireShutdown(reason: "finished at version \(version)"))),
                                      timeout: .milliseconds(200))
                // Stay reachable briefly so the coordinator's final evaluation can fetch parameters.
                let until = monotonicMillis() + 2000
                while monotonicMillis() < until {
                    if let got = try control.receiveEnvelope(&decoder, timeout: .milliseconds(50)),
                       case .success(let env) = got.envelope, case .shutdown = env.payload { break }
                }
                return 0
            }
            if stepsAtStart > updater.step { stepsAtStart = updater.step }
        }
    }

    func sendMetrics(_ control: ZMQSocket, values: [String: Double]) {
        let m = WireMetrics(step: UInt64(updater.step), version: UInt64(version), values: values)
        _ = try? control.trySend([identity.envelope(.metrics(m)).encoded()])
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
