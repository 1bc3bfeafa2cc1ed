// The one actor loop, for every kind of rollout (seed_rl's generic actor): register, fetch parameters, then
// repeatedly roll out with the version held, push, answer evaluation requests and heartbeat. What is rolled out is
// the `RolloutSource` (Jobs/); the sockets are `ActorLink`. The same loop runs as an OS process (`bonfire actor`)
// and as a thread of `bonfire train` (in-process transport): only the endpoints differ.
//
// Version budget: with each version an actor produces its share of one update's units over the live actors (the
// coordinator announces the live count), then waits for a newer version — without deadline in the synchronous
// schedule; up to `actors.versionWaitMs` in the asynchronous one, then it samples anyway (a dead peer never stalls
// it). Randomness: rollouts draw from RNG(run seed, actor id, incarnation, version) — no pid, no clock — so a
// synchronous run is bit-reproducible; evaluations draw from RNG(run seed, version), so a version's table does not
// depend on which actor evaluated it, and an actor keeps the parameters of the newest few scheduled evaluation versions
// so it evaluates the requested version even after moving past it.
import BonfireMath
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class ActorRuntime {
    let config: RunConfig
    let id: Int
    /// Restart count of this actor id (`bonfire local` passes it): a restarted actor does not replay its rollouts.
    let incarnation: Int
    let source: any RolloutSource
    var samplesTotal = 0, messagesSent = 0, droppedTotal = 0

    package init(config: RunConfig, id: Int, incarnation: Int = 0, source: any RolloutSource) {
        self.config = config; self.id = id; self.incarnation = incarnation; self.source = source
    }

    /// Above this many parameters an actor keeps no copy of a scheduled evaluation version (up to four more copies of
    /// a large model's parameters would cost more than an evaluation of a slightly newer version).
    static let maxSnapshotParameters = 16 << 20
    /// Scheduled evaluation versions kept (the oldest is dropped first).
    static let maxSnapshots = 3

    /// The rollout stream of one version.
    static func rolloutRNG(config: RunConfig, actor: Int, incarnation: Int, version: Int) -> RNG {
        RNG(seed: config.run.seed, stream: 0x726F_6C6C, UInt64(actor), UInt64(incarnation) << 32 | UInt64(max(0, version)))   // "roll"
    }

    /// The evaluation stream of one version: the same for every actor.
    package static func evalRNG(config: RunConfig, version: Int) -> RNG {
        RNG(seed: config.run.seed, stream: 0x6576_616C, UInt64(max(0, version)))   // "eval"
    }

    package func run(context: ZMQContext) throws -> Int32 {
        let link = try ActorLink(context: context, config: config, id: id,
                                 capabilities: [source.job.capability, "eval"],
                                 pushHighWaterMark: source.pushHighWaterMark, layoutHash: source.layoutHash,
                                 parameterCount: source.parameterCount)
        defer { link.close() }
        let name = link.name
        let sync = config.learner.schedule == .sync
        var budget = VersionBudget(unitsPerUpdate: config.unitsPerUpdate, publishEvery: config.learner.publishEvery,
                                   liveActors: config.actors.count)
        var rng = RNG(seed: 0)
        var exhaustedAt: Int64? = nil   // when the share of the version held ran out (the async wait's start)
        // The parameters of the newest few versions the coordinator will ask to evaluate (0 and multiples of
        // eval.everyVersions), kept when installed: an actor that moved past one by the time the request arrives still
        // evaluates that version itself, so the table is the same in every run with the seed (issue 13). A tiny
        // model can pass versions 0 and 10 before the request for 0 arrives, hence more than one.
        var evalSnapshots: [(version: Int, values: [Float])] = []
        var heldValues: [Float] = []
        let every = config.eval.everyVersions
        let keepSnapshots = source.parameterCount <= Self.maxSnapshotParameters
        let apply: ([Float], Int) throws -> Void = { [self] values, version in
            let first = link.version < 0
            source.install(parameters: values)
            if keepSnapshots {
                heldValues = values
                if version == 0 || (every > 0 && version % every == 0) {
                    evalSnapshots.append((version, values))
                    if evalSnapshots.count > Self.maxSnapshots { evalSnapshots.removeFirst() }
                }
            }
            budget.produced = 0
            exhaustedAt = nil
            rng = Self.rolloutRNG(config: config, actor: id, incarnation: incarnation, version: version)
            if first { roleLog("\(name): got parameters version \(version); rolling out \(source.detail)") }
        }
        try link.register(detail: "; \(source.detail)")
        guard try link.fetchInitialParameters(apply) else { return 0 }

        var lastMetrics = monotonicMillis()
        var periodSamples = 0
        var pushBlockedSince: Int64?
        var lastBlockedLog: Int64 = 0
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
                    roleLog("\(name): shutdown from coordinator (\(reason)); sent \(messagesSent) messages, \(samplesTotal) samples; " +
                            "versions installed: \(link.broadcastInstalls) from broadcasts (\(link.sharedMemoryInstalls) through " +
                            "shared memory), \(link.requestedInstalls) asked for")
                    return 0
                case .evalRequest(let r):
                    _ = try link.pollParameters(apply)  // evaluate the newest parameters we can get
                    if let want = Int(exactly: r.version), want <= link.version + 1_000_000 {
                        _ = try link.catchUp(to: want, withinMs: config.liveness.receiveTimeoutMs, apply)
                    }
                    var evaluated = link.version
                    if let want = Int(exactly: r.version), want < link.version,
                       let k = evalSnapshots.firstIndex(where: { $0.version == want }) {
                        source.swapParameters(evalSnapshots.remove(at: k).values)   // the requested version itself
                        evaluated = want
                    }
                    var evalRNG = Self.evalRNG(config: config, version: evaluated)
                    roleLog("\(name): evaluating version \(evaluated) (requested \(r.version)) on \(r.numPrompts) \(r.split) items")
                    let report = try source.evaluate(r, version: evaluated, rng: &evalRNG)
                    if evaluated != link.version { source.swapParameters(heldValues) }
                    try link.sendControl(.evalReport(report), timeout: ms(config.liveness.receiveTimeoutMs))
                case .liveActors(let k):
                    if k >= 1, k != budget.liveActors {
                        roleLog("\(name): \(k) live actors (was \(budget.liveActors)): share per version \(VersionBudget(unitsPerUpdate: budget.unitsPerUpdate, publishEvery: budget.publishEvery, liveActors: k).share) units")
                        budget.liveActors = k
                    }
                }
            }
            link.heartbeat(state: "sampling")
            if now - lastMetrics >= Int64(config.logging.periodSeconds * 1000) {
                let rate = Double(periodSamples) / (Double(now - lastMetrics) / 1000)
                try link.sendControl(.metrics(WireMetrics(step: UInt64(messagesSent), version: UInt64(max(link.version, 0)), values: [
                    MetricKey.actorSamplesTotal: Double(samplesTotal), MetricKey.actorDroppedTotal: Double(droppedTotal),
                    MetricKey.samplesPerSecond: rate,
                    MetricKey.actorParamsBroadcast: Double(link.broadcastInstalls),
                    MetricKey.actorParamsRequested: Double(link.requestedInstalls),
                    MetricKey.actorParamsSharedMemory: Double(link.sharedMemoryInstalls),
                    MetricKey.actorParamsSharedMemoryRejected: Double(link.sharedMemoryRejections.values.reduce(0, +)),
                ].merging(link.inbox.drops.metrics) { a, _ in a })))   // wire/dropped(/<reason>) of this actor
                lastMetrics = now; periodSamples = 0
            }

            if budget.exhausted {
                // One deadline per version (control traffic interrupts the wait, but does not restart it).
                let since = exhaustedAt ?? now
                exhaustedAt = since
                let left = config.actors.versionWaitMs - Int(now - since)
                if sync || left > 0 {
                    _ = try link.waitForNewerVersion(apply, state: "waiting-for-version", deadlineMs: sync ? nil : left)
                    continue
                }
                budget.produced = 0   // async: no newer version within actors.versionWaitMs; sample anyway
                exhaustedAt = nil
            }
            guard config.liveness.onCoordinatorLoss.mayWork(coordinatorLost: link.coordinatorWatch.isLost) else {
                link.heartbeat(state: "paused")   // liveness.onCoordinatorLoss = pause: wait for the coordinator
                usleep(20_000)
                continue
            }
            let messages = try source.produce(version: link.version, maxUnits: budget.remaining, rng: &rng)
            var blocked = false
            for m in messages {
                budget.produced += m.units
                if m.mayDrop {
                    _ = try link.tryPush(m.payload)
                    continue
                }
                // After one send timed out, drop the rest instead of waiting again for each message.
                if !blocked, try link.push(m.payload, timeout: ms(config.liveness.receiveTimeoutMs)) {
                    messagesSent += 1
                    samplesTotal += m.samples
                    periodSamples += m.samples
                } else {
                    droppedTotal += m.units
                    blocked = true
                }
            }
            if blocked, !link.shutdownPending {
                let since = pushBlockedSince ?? now
                pushBlockedSince = since
                if now - lastBlockedLog >= Int64(config.logging.warnEveryMs) {
                    lastBlockedLog = now
                    let e = config.endpoints
                    roleLog("\(name): learner is not taking rollouts at \(e.connect(e.rolloutPort)) (send waited " +
                            "\(config.liveness.receiveTimeoutMs) ms, blocked for \(now - since) ms); \(droppedTotal) units dropped so far; retrying")
                }
            } else {
                pushBlockedSince = nil
            }
        }
    }
}

extension RunConfig {
    /// Rollout units per learner update: BoN groups (`learner.groupsPerStep`) or env units (`env.chunksPerUpdate`).
    package var unitsPerUpdate: Int { jobKind == .bon ? learner.groupsPerStep : env.chunksPerUpdate }
}
