// The learner side of the runtime, shared by the BoN learner (Learner.swift) and the environment learner
// (EnvLearner.swift): its four sockets and the protocol around them.
//
//   PULL   (bind rolloutPort)        ← actors' rollouts (BoN group batches or episode chunks)
//   PUB    (bind paramsPort)         → parameter broadcast: the full parameters, or — while every actor that asked
//                                      for parameters shares this host (`endpoints.sharedMemoryParameters`) — a small
//                                      notice of the version written into the shared-memory ring (ParameterSlotRing)
//   ROUTER (bind paramsRequestPort)  ← a `hello` asks for the current parameters (late-joining / restarted actors)
//   DEALER → coordinator             hello, heartbeats, metrics; receives shutdown and "register again"
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class LearnerLink {
    let config: RunConfig
    var identity: RoleIdentity
    var decoder: WireDecoder
    let pull: ZMQSocket
    let pub: ZMQSocket
    let paramRouter: ZMQSocket
    let control: ZMQSocket
    /// CURVE server (behind the ZAP handler) and client keys when `security.mode = curve`.
    let security: RoleSecurity
    let hello: WireHello
    /// The last parameters built for the wire (rebuilt only when the version changed).
    var current: WireParameters?
    var lastHeartbeat: Int64 = 0
    /// This host's identity when broadcasting through shared memory is allowed (not inproc, enabled, Linux).
    let sharedMemoryHost: String?
    /// The shared-memory ring (created at the first publish); closed — file removed — for good once an actor from
    /// another host (or one that cannot read it) asks for parameters: from then on broadcasts carry the parameters.
    package private(set) var ring: ParameterSlotRing?
    var ringFailed = false
    /// Whether the next broadcast is a shared-memory notice.
    package var broadcastsThroughSharedMemory: Bool { sharedMemoryHost != nil && !ringFailed }
    /// Notices a silent coordinator (training goes on; hello is repeated until it answers).
    package private(set) var coordinatorWatch: CoordinatorWatch

    /// Admission of every received message (framing + meaning), one per socket; drops counted by reason.
    package var rolloutInbox: WireInbox
    var controlInbox: WireInbox
    var requestInbox: WireInbox
    /// What the learner accepts (the job fills in its part, `PolicyLearner.admission`); `currentVersion` is set by
    /// the caller of `receiveRollout`.
    package var rolloutContext: ValidationContext

    /// Every drop on every socket of the learner, by reason.
    package var drops: DropCounter {
        rolloutInbox.drops.merged(controlInbox.drops).merged(requestInbox.drops)
    }

    package init(context: ZMQContext, config: RunConfig, capabilities: [String], pullHighWaterMark: Int32,
                 pubHighWaterMark: Int32, parameterCount: Int) throws {
        self.config = config
        sharedMemoryHost = config.endpoints.sharedMemoryParameters && config.endpoints.transport != .inproc
            ? ParameterSlotRing.hostIdentity() : nil
        // The learner's sender id is its pid: actors see a restarted learner (a new id) and roll out again with the
        // version it resumed at, even when they already held it (ActorLink.admit).
        self.identity = RoleIdentity(runID: config.run.id, role: .learner, id: UInt32(truncatingIfNeeded: getpid()))
        // One size limit for the decoder and libzmq (ZMQ_MAXMSGSIZE: an oversized frame disconnects its sender
        // before it is buffered).
        let limits = WireLimits(parameterCount: parameterCount)
        self.decoder = WireDecoder(runID: config.run.id, limits: limits)
        let period = Duration.milliseconds(config.logging.warnEveryMs)
        rolloutInbox = WireInbox(logPeriod: period)
        controlInbox = WireInbox(logPeriod: period)
        requestInbox = WireInbox(logPeriod: period)
        rolloutContext = ValidationContext(receiver: .learner, runID: config.run.id)
        let e = config.endpoints
        security = try RoleSecurity.start(config: config, role: .learner, context: context)
        coordinatorWatch = CoordinatorWatch(windowMs: config.liveness.heartbeatIntervalMs * config.liveness.livenessCount,
                                            now: monotonicMillis())
        pull = try ZMQSocket(context, .pull, linger: .zero)
        pub = try ZMQSocket(context, .pub, linger: .milliseconds(500))
        paramRouter = try ZMQSocket(context, .router, linger: .milliseconds(200))
        control = try ZMQSocket(context, .dealer, linger: .milliseconds(500))
        try pull.set(.receiveHighWaterMark(pullHighWaterMark))
        for s in [pull, paramRouter, control] { try s.limitIncoming(to: limits) }
        try pub.set(.sendHighWaterMark(pubHighWaterMark))
        for (s, port) in [(pull, e.rolloutPort), (pub, e.paramsPort), (paramRouter, e.paramsRequestPort)] {
            do { try security.server(s); try s.bind(e.bind(port)) } catch {
                [pull, pub, paramRouter, control].forEach { $0.close() }
                throw ClusterError("learner cannot bind \(e.bind(port)): \(error). Is another run using this port? " +
                                   "Stop it or choose other ports (endpoints.*Port)")
            }
        }
        try control.set(.reconnectInterval(ms(config.liveness.reconnectInitialMs)))
        try control.set(.reconnectIntervalMax(ms(config.liveness.reconnectMaxMs)))
        try security.client(control)
        try control.connect(e.connect(e.coordinatorPort))
        hello = WireHello(role: .learner, id: identity.id, host: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                          capabilities: capabilities)
        _ = try control.send(identity.envelope(.hello(hello)), timeout: .milliseconds(500))
    }

    package func close() {
        pull.close(); pub.close(); paramRouter.close(); control.close(); security.stop()
        ring?.close(); ring = nil   // removes the file
    }

    func parameters(version: Int, layoutHash: UInt64, values: () -> [Float]) -> WireParameters {
        if let p = current, p.version == UInt64(version) { return p }
        let p = WireParameters(version: UInt64(version), layoutHash: layoutHash, values: values())
        current = p
        return p
    }

    /// Broadcasts the parameters of `version` (never blocks: a slow subscriber drops, and refreshes itself later).
    package func publish(version: Int, layoutHash: UInt64, values: [Float]) throws {
        let p = parameters(version: version, layoutHash: layoutHash, values: { values })
        if let notice = writeToRing(version: version, layoutHash: layoutHash, values: values) {
            _ = try pub.send(identity.envelope(.parameterNotice(notice)), timeout: .zero)
            return
        }
        // Encoded straight into the ZeroMQ message: one copy of the blob (an encoded() array would add a second).
        _ = try pub.send(identity.envelope(.parameters(p)), timeout: .zero)
    }

    /// Writes `values` into the shared-memory ring (created on first use, after removing stale files of this run
    /// left by a learner that died) and returns the notice to broadcast; nil when broadcasts carry the parameters.
    func writeToRing(version: Int, layoutHash: UInt64, values: [Float]) -> WireParameterNotice? {
        guard let host = sharedMemoryHost, !ringFailed else { return nil }
        if ring == nil {
            let dir = ParameterSlotRing.directory(fallback: config.run.dir)
            let stale = ParameterSlotRing.removeStale(directory: dir, runID: config.run.id)
            if !stale.isEmpty {
                roleLog("learner: removed \(stale.count) shared-memory parameter file(s) of a learner that is gone from \(dir)")
            }
            do {
                ring = try ParameterSlotRing.create(directory: dir, runID: config.run.id, layoutHash: layoutHash,
                                                    parameterCount: values.count)
                roleLog("learner: same-host actors read parameters from \(dir)/\(ring!.fileName) (endpoints.sharedMemoryParameters)")
            } catch {
                roleLog("learner: \(error); broadcasting full parameters instead")
                ringFailed = true
                return nil
            }
        }
        guard let ring, ring.layoutHash == layoutHash, ring.byteCapacity == values.count * 4 else { return nil }
        return values.withUnsafeBufferPointer { ring.write($0, version: UInt64(version), hostIdentity: host) }
    }

    /// An actor asked for parameters: if it cannot read this host's ring (another host, shared memory off or
    /// failing there), every later broadcast carries the parameters and the ring is removed.
    func noteParameterRequest(from hello: WireHello) {
        guard let host = sharedMemoryHost, !ringFailed,
              !hello.capabilities.contains(ParameterSlotRing.capabilityPrefix + host) else { return }
        ringFailed = true
        ring?.close(); ring = nil
        roleLog("learner: actor-\(hello.id) on \(hello.host) cannot read this host's shared memory; " +
                "broadcasting full parameters from now on")
    }

    /// Answers every queued parameter request with the parameters of `version`, once per asking peer: an actor
    /// that repeated its request while the learner was busy (loading a large model) gets one copy, not one per
    /// request (at 124 M parameters each copy is 498 MB; ten queued answers took the actor to 14 GB).
    package func serveParameterRequests(version: Int, layoutHash: UInt64, values: () -> [Float]) throws {
        let ctx = ValidationContext(receiver: .learner, runID: config.run.id)
        // One answer per asking peer per pass: an actor that re-asked while a large learner was busy would otherwise
        // get one multi-hundred-MB copy per request.
        var answered = Set<[UInt8]>()
        while let got = try paramRouter.receiveEnvelope(&decoder, timeout: .zero) {
            guard let route = got.prefix.first,
                  let env = requestInbox.admit(got.envelope, context: ctx, log: { roleLog("learner: " + $0) }) else { continue }
            guard security.accepts(got) else {
                requestInbox.reject(.keyRoleMismatch, peer: "parameter request", detail: "CURVE key not bound to the role it claims",
                                    log: { roleLog("learner: " + $0) })
                continue
            }
            if env.senderRole == .actor, case .hello(let h) = env.payload { noteParameterRequest(from: h) }
            guard answered.insert(route).inserted else { continue }
            let p = parameters(version: version, layoutHash: layoutHash, values: values)
            _ = try paramRouter.send(identity.envelope(.parameters(p)), prefix: [route], timeout: .milliseconds(200))
        }
    }

    /// Control messages: returns the coordinator's shutdown reason, if it sent one. A request to register again is
    /// answered here.
    package func pollControl() throws -> String? {
        if let reason = pendingShutdown { pendingShutdown = nil; return reason }
        let ctx = ValidationContext(receiver: .learner, runID: config.run.id)
        while let got = try control.receiveEnvelope(&decoder, timeout: .zero) {
            guard let env = controlInbox.admit(got.envelope, context: ctx, peer: "coordinator",
                                               log: { roleLog("learner: " + $0) }) else { continue }
            if case .back(let down) = coordinatorWatch.contact(now: monotonicMillis()) {
                roleLog("learner: coordinator is back after \(down) ms")
            }
            switch env.payload {
            case .shutdown(let s): return s.reason
            case .helloAck(let ack) where !ack.accepted:
                _ = try control.send(identity.envelope(.hello(hello)), timeout: .milliseconds(200))
            default: break
            }
        }
        return nil
    }

    /// A shutdown read while warming up (`warmUpTick`), returned by the next `pollControl`.
    var pendingShutdown: String?

    /// Keeps a warming-up learner in touch: heartbeats, and control traffic read (so the coordinator is not taken
    /// for lost and asked to register again every heartbeat); a shutdown is kept for the main loop.
    package func warmUpTick() {
        if pendingShutdown == nil, let reason = try? pollControl() { pendingShutdown = reason }
        heartbeat(version: 0, state: "warm-up")
    }

    /// One pass of the learner's duties besides training: answer parameter requests, read control messages,
    /// heartbeat. Returns why to stop (a stop signal — the coordinator is told we leave — or the coordinator's
    /// shutdown), nil to go on. The caller writes its final checkpoint and returns.
    package func service(version: Int, layoutHash: UInt64, values: () -> [Float]) throws -> String? {
        if StopFlag.isSet {
            leave(reason: "learner stopped by signal")
            return "stop signal \(StopFlag.signalNumber)"
        }
        try serveParameterRequests(version: version, layoutHash: layoutHash, values: values)
        if let reason = try pollControl() { return "shutdown from coordinator (\(reason))" }
        heartbeat(version: version, state: "training")
        return nil
    }

    /// Sends a heartbeat when one is due (never blocks).
    package func heartbeat(version: Int, state: String) {
        let now = monotonicMillis()
        guard now - lastHeartbeat >= Int64(config.liveness.heartbeatIntervalMs) else { return }
        lastHeartbeat = now
        if case .lost(let silent) = coordinatorWatch.tick(now: now) {
            roleLog("learner: coordinator silent for \(silent) ms (window \(coordinatorWatch.windowMs) ms); " +
                    (config.liveness.onCoordinatorLoss == .pause ? "training paused (liveness.onCoordinatorLoss = pause)" : "training goes on") +
                    ", registering again when it answers")
        }
        if coordinatorWatch.isLost {
            _ = try? control.trySend([identity.envelope(.hello(hello)).encoded()])
        }
        _ = try? control.trySend([identity.envelope(.heartbeat(WireHeartbeat(
            policyVersion: UInt64(version), unixTimeMs: unixTimeMs(), state: state))).encoded()])
    }

    package func sendMetrics(step: Int, version: Int, values: [String: Double]) {
        let m = WireMetrics(step: UInt64(step), version: UInt64(version), values: values)
        _ = try? control.trySend([identity.envelope(.metrics(m)).encoded()])
    }

    /// One rollout message, waiting up to `timeout`, admitted against `rolloutContext` at the learner's `version`
    /// (framing, sender role, run, meaning; CURVE key bound to the claimed role). `.some(nil)`: a message arrived
    /// and was dropped (counted by reason, logged rate-limited); `nil`: nothing arrived.
    package func receiveRollout(timeout: Duration, version: Int) throws -> WireEnvelope?? {
        guard let got = try pull.receiveEnvelope(&decoder, timeout: timeout) else { return nil }
        rolloutContext.currentVersion = version
        guard let env = rolloutInbox.admit(got.envelope, context: rolloutContext, log: { roleLog("learner: " + $0) }) else {
            return .some(nil)
        }
        guard security.accepts(got) else {
            rolloutInbox.reject(.keyRoleMismatch, peer: "\(env.senderRole)-\(env.senderID)",
                                detail: "its CURVE key is not bound to the role it claims", log: { roleLog("learner: " + $0) })
            return .some(nil)
        }
        return .some(env)
    }

    /// Says goodbye to the coordinator (finished or stopped).
    package func leave(reason: String) {
        _ = try? control.send(identity.envelope(.shutdown(WireShutdown(reason: reason))), timeout: .milliseconds(200))
    }

    /// After the last update: stay reachable briefly so the coordinator's final evaluation can fetch parameters.
    package func lingerAfterFinish(version: Int, layoutHash: UInt64, values: () -> [Float]) throws {
        let until = monotonicMillis() + 2000
        while monotonicMillis() < until {
            try serveParameterRequests(version: version, layoutHash: layoutHash, values: values)
            if try pollControl() != nil { return }
            usleep(20_000)
        }
    }
}
