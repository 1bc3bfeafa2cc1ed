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
// Every message is admitted by the link's inbox against the job's `admission` context (meaning, not just framing);
// invalid ones are dropped and counted by reason (`wire/dropped/<reason>`), logged at most once per
// `logging.warnEveryMs` per reason; never trained on. The buffer of waiting units is bounded. The unit ledger
// (UnitLedger.swift) accounts for every admitted unit and is saved, with the pending units, beside each checkpoint;
// a checkpoint is written before the version it holds is published.
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
    /// What became of every admitted unit (saved with checkpoints, restored by --resume).
    package private(set) var ledger = UnitLedger()
    /// Arrived, not yet judged (bounded).
    var buffer: [L.Unit] = []
    /// Accepted for the next update (judged once each, at the current version).
    var ready: [L.Unit] = []

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
            var newestError: Error?
            for ref in refs {
                do {
                    let meta = try learner.restore(from: ref.url)
                    version = Int(meta["policy_version"] ?? "") ?? ref.version
                    lastCheckpointVersion = version
                    var restored = 0
                    do {
                        if let p = try PendingRollouts<L.Unit>.read(forCheckpoint: ref.url), p.version == version {
                            ledger = p.ledger
                            buffer = p.units
                            restored = p.units.count
                        }
                    } catch {
                        roleLog("learner: \(error)")
                    }
                    roleLog("learner: resumed from \(ref.url.lastPathComponent): version \(version), step \(learner.step), " +
                            "\(restored) pending rollout units restored (ledger: \(ledger.admitted) admitted, \(ledger.trained) trained)")
                    return
                } catch {
                    roleLog("learner: checkpoint \(ref.url.lastPathComponent) is unusable (\(error)); trying the previous one")
                    newestError = newestError ?? error
                }
            }
            // The newest checkpoint's error is the one to act on (e.g. a missing run file every checkpoint needs).
            throw ClusterError("learner: no usable checkpoint in \(runDir.checkpointsURL.path) (every one failed to load, see above; " +
                               "the newest: \(newestError.map { "\($0)" } ?? "?")); start a new run directory or restore a checkpoint")
        }
        try learner.prepare(tick: tick) { roleLog("learner: " + $0) }
    }

    package func run(context: ZMQContext) throws -> Int32 {
        let e = config.endpoints
        // Fail before binding anything when there is nothing to resume from.
        if resume, runDir.checkpoints().isEmpty {
            throw ClusterError("learner: --resume given but there is no checkpoint in \(runDir.checkpointsURL.path); " +
                               "start without --resume, or point run.dir at the run to continue")
        }
        let link = try LearnerLink(context: context, config: config, capabilities: [learner.job.capability, learner.detail],
                                   pullHighWaterMark: learner.pullHighWaterMark, pubHighWaterMark: 4,
                                   parameterCount: learner.parameters.count)
        defer { link.close() }
        learner.admission(&link.rolloutContext)
        func drop(_ reason: DropReason, count n: Int = 1, _ detail: String, from sender: String) {
            link.rolloutInbox.reject(reason, count: n, peer: sender, detail: detail, log: { roleLog("learner: " + $0) })
        }
        let hash = learner.layoutHash
        let values = { [learner] in learner.parameters }

        // A warm-up can take a while: keep heartbeating so the coordinator does not declare us dead.
        try start { link.warmUpTick() }
        try link.publish(version: version, layoutHash: hash, values: learner.parameters)
        link.sendMetrics(step: learner.step, version: version, values: [:])
        roleLog("learner: serving version \(version) (\(learner.parameters.count) parameters); \(learner.detail); " +
                "\(learner.unitsPerUpdate) units per update, schedule \(config.learner.schedule.rawValue), max lag \(gate.maxPolicyLag)")

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
            while received < 64, let got = try link.receiveRollout(timeout: received == 0 ? .milliseconds(20) : .zero,
                                                                  version: version) {
                received += 1
                lastRollout = now
                guard let env = got else { continue }     // dropped by the inbox (counted, logged)
                let sender = peerName(role: env.senderRole, id: env.senderID)
                switch learner.accept(env.payload) {
                case .units(let units):
                    buffer.append(contentsOf: units)
                    ledger.admitted += units.count
                    if buffer.count > bufferCap {
                        let excess = buffer.count - bufferCap
                        buffer.removeFirst(excess)
                        ledger.evicted += excess
                        drop(.bufferFull, count: excess, "\(excess) oldest waiting units evicted (queue holds \(bufferCap))", from: sender)
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
                } else {
                    ledger.stale += 1
                }
            }
            guard ready.count == learner.unitsPerUpdate,
                  config.liveness.onCoordinatorLoss.mayWork(coordinatorLost: link.coordinatorWatch.isLost) else { continue }
            let batch = ready
            ready.removeAll(keepingCapacity: true)

            var stats = try learner.update(batch, version: version)
            ledger.trained += batch.count
            version += 1
            let finished = learner.step >= config.learner.maxSteps
            // Checkpoint before publishing: no actor ever holds a version newer than the newest checkpoint (with
            // checkpointEvery = 1), so a resumed learner never lags what the actors already saw.
            if (config.learner.checkpointEvery > 0 && version % config.learner.checkpointEvery == 0) || finished { try checkpoint() }
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
            stats.merge(link.drops.metrics) { a, _ in a }     // wire/dropped and wire/dropped/<reason>
            stats.merge(ledger.metrics(pending: buffer.count + ready.count)) { a, _ in a }
            if finished { stats[MetricKey.runFinished] = 1 }
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
        // The pending units first: a checkpoint file never exists without its pending file (a crash between the two
        // leaves an orphan pending file, which resume ignores and pruning removes).
        do {
            try PendingRollouts(version: version, ledger: ledger, units: ready + buffer).write(forCheckpoint: url)
        } catch {
            throw ClusterError("learner: cannot write \(PendingRollouts<L.Unit>.url(forCheckpoint: url).path): \(error). " +
                               "Check free disk space and permissions")
        }
        do {
            try learner.save(to: url, metadata: ["policy_version": String(version), "run_id": config.run.id,
                                                 "job": learner.job.rawValue, "config": config.resolvedJSON()])
        } catch {
            throw ClusterError("learner: cannot write checkpoint \(url.path): \(error). Check free disk space and permissions")
        }
        lastCheckpointVersion = version
        roleLog("learner: checkpoint \(url.lastPathComponent) (version \(version), step \(learner.step), \(ready.count + buffer.count) pending units)")
        do {
            let removed = try CheckpointStore(directory: runDir.checkpointsURL).prune(keep: config.learner.keepCheckpoints)
            // Pending files of removed checkpoints, and orphans of a crash between pending file and checkpoint.
            let fm = FileManager.default
            for name in (try? fm.contentsOfDirectory(atPath: runDir.checkpointsURL.path)) ?? [] where name.hasSuffix(".pending.json") {
                let ckpt = runDir.checkpointsURL.appendingPathComponent(String(name.dropLast(".pending.json".count)) + ".safetensors")
                if !fm.fileExists(atPath: ckpt.path) { try? fm.removeItem(at: runDir.checkpointsURL.appendingPathComponent(name)) }
            }
            if !removed.isEmpty { roleLog("learner: pruned \(removed.count) old checkpoint(s), keeping \(config.learner.keepCheckpoints)") }
        } catch {
            roleLog("learner: could not prune old checkpoints: \(error)")
        }
    }
}
