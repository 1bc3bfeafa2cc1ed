// The one learner loop, for every algorithm (acme's Learner; seed_rl's learner): collect rollouts, judge staleness
// when a unit is used, update on exactly `unitsPerUpdate` units, publish the next policy version, report metrics,
// checkpoint. What an update is — and how a message is validated, converted and checkpointed — is the
// `PolicyLearner` (Jobs/); the sockets are `LearnerLink`. The same loop runs as an OS process (`bonfire learner`)
// and as a thread of `bonfire train`; only the endpoints differ.
//
// Policy version v = number of updates applied (a --resume'd run continues from its checkpoint).
// Schedules: asynchronous — lag = v − behaviour version ≤ learner.maxPolicyLag accepted (importance-corrected by the
// algorithm), older dropped and counted; synchronous — only units of version v are accepted (lag 0), so the run is
// a deterministic function of the seed.
// Invalid messages are dropped and counted by reason (`wire/dropped/<reason>`), logged at most once per
// `logging.warnEveryMs` per reason; never trained on. The buffer of waiting units is bounded.
import BonfireMath
import BonfireModel
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class LearnerRuntime<L: PolicyLearner> {
    let config: RunConfig
    let runDir: RunDirectory
    let learner: L
    let resume: Bool
    package private(set) var version = 0
    var gate: StalenessGate
    var lastCheckpointVersion = -1
    /// Dropped messages by reason (counted, never trained on).
    package private(set) var drops: [String: Int] = [:]
    var lastDropLog: [String: Int64] = [:]

    package init(config: RunConfig, runDir: RunDirectory, learner: L, resume: Bool) {
        self.config = config; self.runDir = runDir; self.learner = learner; self.resume = resume
        self.gate = StalenessGate(maxPolicyLag: config.learner.schedule == .sync ? 0 : config.learner.maxPolicyLag)
    }

    /// Resume from the newest readable checkpoint, or start fresh (learner.prepare). `--resume` without any
    /// checkpoint is an error that says so.
    func start(tick: () -> Void) throws {
        if resume {
            let refs = runDir.checkpoints()
            guard !refs.isEmpty else {
                throw ClusterError("learner: --resume given but there is no checkpoint in \(runDir.checkpointsURL.path); " +
                                   "start without --resume, or point run.dir at the run to continue")
            }
            for ref in refs {
                do {
                    let meta = try learner.restore(from: ref.url)
                    version = Int(meta["policy_version"] ?? "") ?? ref.version
                    lastCheckpointVersion = version
                    roleLog("learner: resumed from \(ref.url.lastPathComponent): version \(version), step \(learner.step)")
                    return
                } catch {
                    roleLog("learner: checkpoint \(ref.url.lastPathComponent) is unusable (\(error)); trying the previous one")
                }
            }
            throw ClusterError("learner: no usable checkpoint in \(runDir.checkpointsURL.path) (every one failed to load, see above); " +
                               "start a new run directory or restore a checkpoint")
        }
        try learner.prepare(tick: tick) { roleLog("learner: " + $0) }
    }

    func drop(_ reason: String, _ detail: String, from sender: String) {
        drops[reason, default: 0] += 1
        let now = monotonicMillis()
        if now - (lastDropLog[reason] ?? Int64.min / 2) >= Int64(config.logging.warnEveryMs) {
            lastDropLog[reason] = now
            roleLog("learner: dropped a rollout from \(sender): \(reason) (\(drops[reason]!) so far): \(detail)")
        }
    }

    package func run(context: ZMQContext) throws -> Int32 {
        let e = config.endpoints
        // Fail before binding anything when there is nothing to resume from.
        if resume, runDir.checkpoints().isEmpty {
            throw ClusterError("learner: --resume given but there is no checkpoint in \(runDir.checkpointsURL.path); " +
                               "start without --resume, or point run.dir at the run to continue")
        }
        let link = try LearnerLink(context: context, config: config, capabilities: [learner.job.capability, learner.detail],
                                   pullHighWaterMark: learner.pullHighWaterMark, pubHighWaterMark: 4)
        defer { link.close() }
        let hash = learner.layoutHash
        let values = { [learner] in learner.parameters }

        // A warm-up can take a while: keep heartbeating so the coordinator does not declare us dead.
        try start { link.heartbeat(version: 0, state: "warm-up") }
        try link.publish(version: version, layoutHash: hash, values: learner.parameters)
        link.sendMetrics(step: learner.step, version: version, values: [:])
        roleLog("learner: serving version \(version) (\(learner.parameters.count) parameters); \(learner.detail); " +
                "\(learner.unitsPerUpdate) units per update, schedule \(config.learner.schedule.rawValue), max lag \(gate.maxPolicyLag)")

        var buffer: [L.Unit] = []   // arrived, not yet judged (bounded)
        var ready: [L.Unit] = []    // accepted for the next update (judged once each, at the current version)
        let bufferCap = max(4 * learner.unitsPerUpdate, 64)
        var lastRollout = monotonicMillis()
        var lastWaitLog = monotonicMillis()
        let started = monotonicMillis()
        let stepsAtStart = learner.step
        var unitsSeen = 0
        while true {
            if let why = try link.service(version: version, layoutHash: hash, values: values) {
                roleLog("learner: \(why): final checkpoint at version \(version)")
                try checkpoint()
                return 0
            }
            let now = monotonicMillis()
            var received = 0
            while received < 64, let env = try link.receiveRollout(timeout: received == 0 ? .milliseconds(20) : .zero) {
                received += 1
                lastRollout = now
                let sender = peerName(role: env.senderRole, id: env.senderID)
                guard env.senderRole == .actor else { drop("wrong_role", "\(env.payload.kind) from a \(env.senderRole)", from: sender); continue }
                switch learner.accept(env.payload) {
                case .units(let units):
                    buffer.append(contentsOf: units)
                    if buffer.count > bufferCap {
                        let excess = buffer.count - bufferCap
                        buffer.removeFirst(excess)
                        drops["buffer_full", default: 0] += excess
                    }
                case .statistics: break
                case .invalid(let reason, let detail): drop(reason, detail, from: sender)
                }
            }
            if received == 0, now - lastRollout > Int64(config.liveness.receiveTimeoutMs),
               now - lastWaitLog > Int64(config.logging.warnEveryMs) {
                roleLog("learner: no rollouts for \(now - lastRollout) ms at \(e.bind(e.rolloutPort)); waiting for actors (see the coordinator log for live actors)")
                lastWaitLog = now
            }
            // Staleness is judged when a unit is used, not when it arrived: a queued unit ages.
            while ready.count < learner.unitsPerUpdate, !buffer.isEmpty {
                let u = buffer.removeFirst()
                if gate.decide(behaviourVersion: u.behaviourVersion, currentVersion: version).isAccepted {
                    ready.append(u)
                    unitsSeen += 1
                }
            }
            guard ready.count == learner.unitsPerUpdate else { continue }
            let batch = ready
            ready.removeAll(keepingCapacity: true)

            var stats = try learner.update(batch, version: version)
            version += 1
            if version % config.learner.publishEvery == 0 {
                try link.publish(version: version, layoutHash: hash, values: learner.parameters)
            }
            let elapsed = max(Double(monotonicMillis() - started) / 1000, 1e-3)
            stats.merge(learner.runningMetrics) { a, _ in a }
            stats[MetricKey.learnerStep] = Double(learner.step)
            stats[MetricKey.stepsPerSecond] = Double(learner.step - stepsAtStart) / elapsed
            stats[MetricKey.unitsPerSecond] = Double(unitsSeen) / elapsed
            stats[MetricKey.accepted] = Double(gate.accepted)
            stats[MetricKey.dropped] = Double(gate.dropped)
            stats[MetricKey.acceptedStale] = Double(gate.acceptedStale)
            stats[MetricKey.meanLag] = gate.meanAcceptedLag
            stats.merge(gate.lagCountMetrics) { _, lag in lag }   // staleness histogram (staleness/lag_count/<k>)
            stats[MetricKey.wireDropped] = Double(link.dropped + drops.values.reduce(0, +))
            for (reason, n) in drops { stats[MetricKey.wireDropped + "/" + reason] = Double(n) }
            let finished = learner.step >= config.learner.maxSteps
            if finished { stats[MetricKey.runFinished] = 1 }
            if (config.learner.checkpointEvery > 0 && version % config.learner.checkpointEvery == 0) || finished { try checkpoint() }
            link.sendMetrics(step: learner.step, version: version, values: stats)
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
            try learner.save(to: url, metadata: ["policy_version": String(version), "run_id": config.run.id,
                                                 "job": learner.job.rawValue, "config": config.resolvedJSON()])
        } catch {
            throw ClusterError("learner: cannot write checkpoint \(url.path): \(error). Check free disk space and permissions")
        }
        lastCheckpointVersion = version
        roleLog("learner: checkpoint \(url.lastPathComponent) (version \(version), step \(learner.step))")
        do {
            let removed = try CheckpointStore(directory: runDir.checkpointsURL).prune(keep: config.learner.keepCheckpoints)
            if !removed.isEmpty { roleLog("learner: pruned \(removed.count) old checkpoint(s), keeping \(config.learner.keepCheckpoints)") }
        } catch {
            roleLog("learner: could not prune old checkpoints: \(error)")
        }
    }
}
