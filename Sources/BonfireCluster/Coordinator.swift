// The coordinator: registry, liveness, evaluation schedule and the run's log — the process people watch.
//
//   ROUTER (bind coordinatorPort) ◀── DEALER from the learner and every actor
//     hello      → register (or re-register after a restart), reply HelloAck with the current version; a peer
//                  announcing another job kind (capability "job=<kind>") is refused
//     heartbeat  → liveness; an unknown or dead peer is told to register again (HelloAck(accepted: false))
//     metrics    → metrics.jsonl; learner versions drive the eval schedule
//     eval_report→ eval/<version>.json + metrics.jsonl + the log
//   every `logging.periodSeconds`: one line with version, steps/s, samples/s, live actors, dropped/stale, loss, eval.
// Decisions are the pure state machines (LivenessTracker, EvalSchedule); this file only moves messages.
import BonfireWire
import Foundation

package final class Coordinator {
    let config: RunConfig
    let runDir: RunDirectory
    var identity: RoleIdentity
    var liveness: LivenessTracker
    var schedule: EvalSchedule
    var decoder: WireDecoder
    var routes: [String: [UInt8]] = [:]          // peer name → ROUTER routing id
    var lastLearner: [String: Double] = [:]      // latest learner metrics
    var learnerVersion = 0, learnerStep = 0
    var actorSamples: [String: Double] = [:]     // cumulative samples per actor
    var actorDropped: [String: Double] = [:]
    var latestEval: EvalTable?
    var nextEvalActor = 0
    var requestCounter: UInt64 = 0
    var requestedVersion: [UInt64: Int] = [:]
    var peerState: [String: String] = [:]        // last heartbeat state ("sampling", "waiting-for-parameters", …)
    var undelivered: [Int] = []                  // scheduled evaluations no actor could take yet
    var announcedLiveActors = -1
    /// The ROUTER routing id of the connection that registered as the learner.
    var learnerRoute: [UInt8]?
    var lastPeerHeartbeat: Int64 = 0                 // the live-actor count last sent to the actors
    /// Admission of every message on the ROUTER (framing, sender role, replays, meaning); drops counted by reason
    /// (`wire/dropped/<reason>` in the coordinator's metrics) and logged rate-limited.
    var inbox: WireInbox
    /// Peers the coordinator keeps state for; a new peer beyond it replaces the longest-dead one or is refused.
    let maxPeers: Int
    /// TensorBoard files, Prometheus endpoint, reward-hacking alarm (set while running).
    var monitor: CoordinatorMonitor?
    /// CURVE: the authenticated role of each message must be the role its envelope claims.
    var security: RoleSecurity?
    var finished = false
    var learnerEverSeen = false
    var learnerReported = false   // the first learner metrics (its starting version) also drive the eval schedule

    package init(config: RunConfig, runDir: RunDirectory) {
        self.config = config
        self.runDir = runDir
        self.identity = RoleIdentity(runID: config.run.id, role: .coordinator, id: 0)
        self.liveness = LivenessTracker(config.liveness)
        self.schedule = EvalSchedule(config.eval)
        self.decoder = WireDecoder(runID: config.run.id)
        self.inbox = WireInbox(logPeriod: .milliseconds(config.logging.warnEveryMs), checkSequences: true)
        self.maxPeers = max(64, 4 * config.actors.count + 8)
    }

    /// What the coordinator knows, against which each message is checked.
    var admission: ValidationContext {
        var c = ValidationContext(receiver: .coordinator, runID: config.run.id)
        c.task = config.task.name.rawValue
        c.currentVersion = learnerVersion
        // A restarted coordinator starts at 0 and hears the learner's real version from its metrics.
        c.maxVersionAhead = 1 << 24
        c.expectedEvalRequests = Set(requestedVersion.keys)
        c.requireRegistrationFor = [.evalReport]
        c.rewardRange = -1e6...1e6
        return c
    }

    func drop(_ reason: DropReason, peer: String, _ detail: String) {
        inbox.reject(reason, peer: peer, detail: detail, log: { roleLog("coordinator: " + $0) })
    }

    /// Runs until the learner reports the run finished (then shuts the actors down) or a stop signal arrives.
    /// Returns the process exit code.
    package func run(context: ZMQContext) throws -> Int32 {
        let security = try RoleSecurity.start(config: config, role: .coordinator, context: context)
        defer { security.stop() }
        self.security = security
        let router = try ZMQSocket(context, .router, linger: .milliseconds(500))
        defer { router.close() }
        try security.server(router)
        try router.set(.routerMandatory(false))
        try router.set(.receiveHighWaterMark(10_000))
        try router.limitIncoming(to: decoder.limits)   // ZMQ_MAXMSGSIZE: control messages are small (16 MiB cap)
        let endpoint = config.endpoints.bind(config.endpoints.coordinatorPort)
        do { try router.bind(endpoint) } catch {
            throw ClusterError("coordinator cannot bind \(endpoint): \(error). Is another run using this port? " +
                               "Stop it or pick free ports with --set endpoints.coordinatorPort=<port>")
        }
        roleLog("coordinator: run \(config.run.id) in \(runDir.url.path), control on \(endpoint); " +
                "liveness window \(liveness.windowMs) ms (\(config.liveness.heartbeatIntervalMs) ms × \(config.liveness.livenessCount))")

        let monitor = try CoordinatorMonitor(config.monitoring, runDirectory: runDir.url, runID: config.run.id, log: roleLog)
        self.monitor = monitor
        defer { monitor.close() }
        let started = monotonicMillis()
        var lastPeriod = started
        var lastPeriodStep = 0
        var lastPeriodSamples = 0.0
        var finishedAt: Int64?
        while true {
            if StopFlag.isSet {
                roleLog("coordinator: stop signal \(StopFlag.signalNumber): telling every role to shut down")
                broadcastShutdown(router, reason: "coordinator received signal \(StopFlag.signalNumber)")
                drainUntilTheLearnerLeaves(router)
                return 0
            }
            if let got = try router.receiveEnvelope(&decoder, timeout: .milliseconds(50)) {
                handle(got, router)
            }
            let now = monotonicMillis()
            for event in liveness.tick(now: now) { log(event) }
            announceLiveActors(router)
            if now - lastPeerHeartbeat >= Int64(config.liveness.heartbeatIntervalMs) {
                lastPeerHeartbeat = now   // learner and actors notice a lost coordinator by these (CoordinatorWatch)
                let hb = WirePayload.heartbeat(WireHeartbeat(policyVersion: UInt64(learnerVersion), unixTimeMs: unixTimeMs(), state: "coordinator"))
                for peer in liveness.peers.keys where liveness.isAlive(peer) { if let r = routes[peer] { send(hb, to: r, router) } }
            }
            if let v = undelivered.first, !liveness.livePeers(role: .actor).isEmpty {
                perform(.requestEval(version: v), router)
            }
            for action in schedule.tick(now: now) {
                if case .timedOut(let v) = action {
                    roleLog("coordinator: evaluation of version \(v) timed out after \(schedule.timeoutMs) ms (no eval_report); continuing")
                }
            }
            if !learnerEverSeen, now - started > Int64(config.liveness.peerGiveUpMs) {
                throw ClusterError("coordinator: no learner registered within \(config.liveness.peerGiveUpMs) ms; " +
                                   "start it with `bonfire learner --config \(runDir.configURL.path)`")
            }
            if learnerEverSeen, !finished, let p = liveness.peer("learner"), p.state != .alive,
               let down = p.downSince, now - down > Int64(config.liveness.peerGiveUpMs) {
                broadcastShutdown(router, reason: "learner gone")
                throw ClusterError("coordinator: learner silent for \(now - down) ms (> peerGiveUpMs); giving up. " +
                                   "Restart it with --resume to continue from the last checkpoint")
            }
            if Double(now - lastPeriod) >= config.logging.periodSeconds * 1000 {
                let dt = Double(now - lastPeriod) / 1000
                let samples = actorSamples.values.reduce(0, +)
                periodLine(stepsPerSecond: Double(learnerStep - lastPeriodStep) / dt,
                           samplesPerSecond: (samples - lastPeriodSamples) / dt)
                lastPeriod = now; lastPeriodStep = learnerStep; lastPeriodSamples = samples
            }
            if finished {
                if finishedAt == nil {
                    finishedAt = now
                    for a in schedule.finish(finalVersion: learnerVersion, now: now) { perform(a, router) }
                }
                // Wait for the final evaluation (bounded by its deadline), then stop everyone.
                if schedule.outstanding.isEmpty || now - finishedAt! > schedule.timeoutMs {
                    periodLine(stepsPerSecond: 0, samplesPerSecond: 0)
                    broadcastShutdown(router, reason: "run finished at version \(learnerVersion)")
                    try? runDir.appendMetrics(role: "coordinator", version: learnerVersion, values: [MetricKey.runFinished: 1])
                    roleLog("coordinator: run finished at version \(learnerVersion); run directory \(runDir.url.path)")
                    return 0
                }
            }
        }
    }

    private func handle(_ got: ZMQReceived, _ router: ZMQSocket) {
        guard let route = got.prefix.first else { return }
        var ctx = admission
        if case .success(let e) = got.envelope, liveness.peer(peerName(role: e.senderRole, id: e.senderID)) != nil {
            ctx.senderRegisteredRole = e.senderRole
        }
        guard let env = inbox.admit(got.envelope, context: ctx, log: { roleLog("coordinator: " + $0) }) else { return }
        let peer = peerName(role: env.senderRole, id: env.senderID)
        if let security, !security.accepts(got) {
            drop(.keyRoleMismatch, peer: peer, "its CURVE key is not bound to the role it claims")
            return
        }
        let role: PeerRole = env.senderRole == .learner ? .learner : .actor
        let now = monotonicMillis()
        if case .hello = env.payload {
            // Only a hello (re-)binds a peer name to a connection.
            if routes[peer] == nil, routes.count >= maxPeers {
                // Bounded: forget the longest-dead peer; refuse when every known peer is alive.
                let dead = liveness.peers.filter { $0.value.state != .alive }.min { ($0.value.downSince ?? 0) < ($1.value.downSince ?? 0) }
                guard let victim = dead?.key else {
                    drop(.tooManyItems, peer: peer, "\(routes.count) peers known and alive (limit \(maxPeers)); not registered")
                    return
                }
                forget(victim)
            }
            routes[peer] = route
        } else if let known = routes[peer], known != route {
            drop(.senderIdentityMismatch, peer: peer, "\(env.payload.kind) from another connection than the one \(peer) registered from")
            return
        }
        switch env.payload {
        case .hello(let h):
            let job = config.jobKind.capability
            if let announced = h.capabilities.first(where: { $0.hasPrefix("job=") }), announced != job {
                drop(.jobKindMismatch, peer: peer, "it runs \(announced), this run is \(job)")
                roleLog("coordinator: refused \(peer) (pid \(h.pid) on \(h.host)): it runs \(announced), this run is \(job); start it with this run's config")
                send(.helloAck(WireHelloAck(accepted: false, reason: "this run is \(job), you announced \(announced)",
                                            currentVersion: UInt64(learnerVersion),
                                            heartbeatIntervalMs: UInt32(config.liveness.heartbeatIntervalMs),
                                            liveness: UInt32(config.liveness.livenessCount))), to: route, router)
                return
            }
            if role == .learner {
                learnerEverSeen = true
                learnerRoute = route   // the latest hello wins (a restarted learner); its metrics are believed
            }
            log(liveness.register(peer, role: role, now: now), detail: "pid \(h.pid) on \(h.host)")
            let ack = WireHelloAck(accepted: true, currentVersion: UInt64(learnerVersion),
                                   heartbeatIntervalMs: UInt32(config.liveness.heartbeatIntervalMs),
                                   liveness: UInt32(config.liveness.livenessCount))
            send(.helloAck(ack), to: route, router)
        case .heartbeat(let hb):
            peerState[peer] = hb.state
            if let event = liveness.heartbeat(peer, now: now) {
                if case .mustRegister = event {
                    send(.helloAck(WireHelloAck(accepted: false, reason: "unknown or expired peer: send hello again",
                                                currentVersion: UInt64(learnerVersion),
                                                heartbeatIntervalMs: UInt32(config.liveness.heartbeatIntervalMs),
                                                liveness: UInt32(config.liveness.livenessCount))), to: route, router)
                } else { log(event) }
            }
        case .metrics(let m):
            // The inbox checked versions (fit Int, not absurdly ahead), keys and values; steps must fit as well, and
            // only the route that registered as the learner may speak for it.
            guard let version = Int(exactly: m.version), let step = Int(exactly: m.step), step <= Int(Int32.max) else {
                drop(.versionOutOfRange, peer: peer, "metrics step \(m.step)")
                return
            }
            if role == .learner, let registered = learnerRoute, registered != route {
                drop(.senderIdentityMismatch, peer: peer, "learner metrics from a connection that did not register as the learner")
                return
            }
            if role == .learner, learnerRoute == nil, m.values[MetricKey.runFinished] != nil {
                // After a coordinator restart the learner's metrics are logged before it registers again, but only
                // the registered learner can end the run.
                drop(.senderNotRegistered, peer: peer, "a 'run finished' claim from a learner that has not registered")
                return
            }
            _ = liveness.heartbeat(peer, now: now)
            try? runDir.appendMetrics(role: peer, version: version, values: m.values)
            if let extra = monitor?.metrics(role: peer, version: version, values: m.values), !extra.isEmpty {
                try? runDir.appendMetrics(role: "coordinator", version: version, values: extra)
            }
            if role == .learner {
                lastLearner = m.values
                learnerStep = step
                if !learnerReported {
                    learnerReported = true
                    learnerVersion = version
                    for a in schedule.started(atVersion: learnerVersion, now: now) { perform(a, router) }
                } else if version != learnerVersion || m.values[MetricKey.runFinished] == 1 {
                    learnerVersion = version
                    for a in schedule.versionPublished(learnerVersion, now: now) { perform(a, router) }
                }
                if m.values[MetricKey.runFinished] == 1, !finished {
                    finished = true
                    roleLog("coordinator: learner finished at version \(learnerVersion) (step \(learnerStep))")
                }
            } else {
                if let s = m.values[MetricKey.actorSamplesTotal], s.isFinite { actorSamples[peer] = s }
                if let d = m.values[MetricKey.actorDroppedTotal], d.isFinite { actorDropped[peer] = d }
            }
        case .evalReport(let r):
            // The actor evaluates the newest parameters it holds (which may differ from the scheduled version);
            // the request id says which scheduled evaluation this answers.
            // Only an answer to a request this coordinator sent to an actor is believed.
            guard let scheduled = requestedVersion.removeValue(forKey: r.requestID),
                  let reported = Int(exactly: r.version), reported <= learnerVersion + 1 else {
                drop(.unexpectedEvalReport, peer: peer, "request \(r.requestID), version \(r.version): answers no outstanding request")
                return
            }
            let outcome = schedule.reportReceived(version: scheduled, now: now)
            let envJob = config.jobKind != .bon
            let table = EvalTable(version: reported, time: Date().timeIntervalSince1970,
                                  prompts: r.rows.first?.numPrompts ?? 0,
                                  rows: r.rows.map { EvalTable.Row(temperature: $0.temperature, n: $0.n,
                                                                   passAtN: $0.passAtN, boN: $0.boN,
                                                                   meanReturn: envJob ? $0.meanReturn : nil,
                                                                   fractionOfOptimal: envJob ? $0.fractionOfOptimal : nil) })
            latestEval = table
            var values: [String: Double] = [:]
            // metrics.jsonl gets the rows at the first eval temperature (the full table is in eval/).
            for row in r.rows where row.temperature == (config.eval.temperatures.first ?? row.temperature) {
                if envJob {
                    values[MetricKey.evalMeanReturn] = row.meanReturn
                    values[MetricKey.evalFractionOfOptimal] = row.fractionOfOptimal
                } else {
                    values[MetricKey.passAt(row.n)] = row.passAtN
                    values[MetricKey.bestOf(row.n)] = row.boN
                }
            }
            try? runDir.appendMetrics(role: "coordinator", version: Int(r.version), values: values)
            monitor?.eval(table)
            do { _ = try runDir.writeEval(table) } catch {
                roleLog("coordinator: cannot write the eval table for version \(r.version): \(error)")
            }
            roleLog("coordinator: eval of version \(r.version) (scheduled for \(scheduled)) by \(peer), \(outcome), on \(table.prompts) test prompts:\n" + table.render())
        case .shutdown(let s):
            if let e = liveness.leave(peer, now: now) { log(e, detail: s.reason) }
        default:
            drop(.senderRoleNotAllowed, peer: peer, "\(env.payload.kind) is not a message the coordinator takes")
        }
    }

    /// Drops every trace of a peer (bounded tables).
    private func forget(_ peer: String) {
        routes[peer] = nil; peerState[peer] = nil; actorSamples[peer] = nil; actorDropped[peer] = nil
        liveness.forget(peer)
    }

    private func perform(_ action: EvalSchedule.Action, _ router: ZMQSocket) {
        guard case .requestEval(let version) = action else { return }
        // Prefer actors that hold parameters (heartbeat state "sampling"); others would answer late.
        let live = liveness.livePeers(role: .actor).sorted()
        let ready = live.filter { peerState[$0] == "sampling" }
        let actors = ready.isEmpty ? live : ready
        guard !actors.isEmpty else {
            if !undelivered.contains(version) {
                undelivered.append(version)
                if undelivered.count > 16 { undelivered.removeFirst(undelivered.count - 16) }   // bounded: newest kept
                roleLog("coordinator: eval of version \(version) due but no live actor yet; it is sent when one registers")
            }
            return
        }
        undelivered.removeAll { $0 == version }
        let target = actors[nextEvalActor % actors.count]
        nextEvalActor += 1
        requestCounter += 1
        let req = WireEvalRequest(requestID: requestCounter, version: UInt64(version), task: config.task.name.rawValue,
                                  split: "test", nList: config.eval.n, temperatures: config.eval.temperatures,
                                  numPrompts: config.eval.prompts)
        if let route = routes[target] {
            if requestedVersion.count >= 64, let oldest = requestedVersion.keys.min() { requestedVersion[oldest] = nil }   // bounded
            requestedVersion[requestCounter] = version
            send(.evalRequest(req), to: route, router)
            roleLog("coordinator: requested eval of version \(version) from \(target)")
        }
    }

    private func send(_ payload: WirePayload, to route: [UInt8], _ router: ZMQSocket) {
        let env = identity.envelope(payload)
        do { _ = try router.send(env, prefix: [route], timeout: .milliseconds(200)) } catch {
            roleLog("coordinator: send \(payload.kind) failed: \(error)")
        }
    }

    /// Tells every live actor how many actors are live when that changes (their version budget re-plans over them).
    private func announceLiveActors(_ router: ZMQSocket) {
        let live = liveness.livePeers(role: .actor)
        guard live.count != announcedLiveActors, !live.isEmpty else { return }
        announcedLiveActors = live.count
        let m = WireMetrics(step: 0, version: UInt64(learnerVersion), values: [MetricKey.liveActors: Double(live.count)])
        for peer in live { if let route = routes[peer] { send(.metrics(m), to: route, router) } }
    }

    /// After a stop signal (`bonfire local` signals every role at once): keep reading for up to `stopDrainMs` until
    /// the learner's goodbye, so the metrics lines it sent just before it (the last versions before the stop) are
    /// written instead of lost with the socket. A learner that is gone or never came costs nothing.
    static let stopDrainMs: Int64 = 1000
    private func drainUntilTheLearnerLeaves(_ router: ZMQSocket) {
        let until = monotonicMillis() + Self.stopDrainMs
        while !liveness.livePeers(role: .learner).isEmpty, monotonicMillis() < until {
            guard let got = try? router.receiveEnvelope(&decoder, timeout: .milliseconds(20)) else { continue }
            handle(got, router)
        }
    }

    private func broadcastShutdown(_ router: ZMQSocket, reason: String) {
        // Every peer it knows, dead or alive: one declared dead during a slow evaluation is often just slow, and
        // would otherwise wait peerGiveUpMs for a coordinator that is gone and exit with an error.
        for (_, route) in routes {
            send(.shutdown(WireShutdown(reason: reason)), to: route, router)
        }
    }

    private func log(_ event: LivenessEvent, detail: String = "") {
        let d = detail.isEmpty ? "" : " (\(detail))"
        switch event {
        case .joined(let p, let r): roleLog("coordinator: \(p) registered as \(r.rawValue)\(d)")
        case .rejoined(let p, _, let down): roleLog("coordinator: \(p) REJOINED after \(down) ms down\(d)")
        case .restarted(let p, _): roleLog("coordinator: \(p) re-registered (restarted)\(d)")
        case .dead(let p, _, let silent):
            roleLog("coordinator: \(p) DEAD: no heartbeat for \(silent) ms (window \(liveness.windowMs) ms); the run continues without it")
        case .left(let p, _): roleLog("coordinator: \(p) left\(d)")
        case .mustRegister(let p): roleLog("coordinator: \(p) is unknown; asked it to register")
        }
    }

    private func periodLine(stepsPerSecond: Double, samplesPerSecond: Double) {
        let live = liveness.livePeers(role: .actor).count
        let total = liveness.peers.values.filter { $0.role == .actor }.count
        monitor?.actors(live: live, dead: total - live)
        func f(_ k: String, _ digits: Int = 3) -> String {
            lastLearner[k].map { String(format: "%.\(digits)f", $0) } ?? "-"
        }
        var line = "v=\(learnerVersion) step=\(learnerStep) " +
            String(format: "steps/s=%.2f samples/s=%.1f", stepsPerSecond, samplesPerSecond) +
            " actors=\(live)/\(total) stale_dropped=\(f(MetricKey.dropped, 0)) stale_accepted=\(f(MetricKey.acceptedStale, 0))" +
            " wire_dropped=\(Int(actorDropped.values.reduce(0, +)) + inbox.drops.total + Int(lastLearner[MetricKey.wireDropped] ?? 0))" +
            " loss=\(f(MetricKey.policyLoss, 4))"
        switch config.jobKind {
        case .bon: line += " reward=\(f(MetricKey.rewardMean)) score=\(f(MetricKey.scoreMean))"
        case .envEpisodes, .textEpisodes:
            // Behaviour-policy episode return/length (the learner's window of the actors' reports).
            line += " return=\(f(MetricKey.episodeReturn)) length=\(f(MetricKey.episodeLength, 1))"
        }
        if let e = latestEval, e.rows.contains(where: { $0.meanReturn != nil }) {
            line += " eval@v\(e.version): " + e.rows.map { String(format: "T=%.2f return=%.3f (%.0f%% of optimal)", $0.temperature,
                                                                     $0.meanReturn ?? 0, 100 * ($0.fractionOfOptimal ?? 0)) }
                .joined(separator: " ")
        } else if let e = latestEval {
            let rows = e.rows.filter { $0.temperature == (config.eval.temperatures.first ?? 1) }
            line += " eval@v\(e.version): " + rows.map { String(format: "pass@%d=%.3f bo%d=%.3f", $0.n, $0.passAtN, $0.n, $0.boN) }
                .joined(separator: " ")
        }
        roleLog(line)
        try? runDir.appendMetrics(role: "coordinator", version: learnerVersion, values: [
            MetricKey.stepsPerSecond: stepsPerSecond, MetricKey.samplesPerSecond: samplesPerSecond,
            MetricKey.liveActors: Double(live),
        ].merging(inbox.drops.metrics) { a, _ in a })
    }
}

/// An operational error of a role: the message says what happened and what to do next.
package struct ClusterError: Error, CustomStringConvertible {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}
