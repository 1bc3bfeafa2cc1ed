// The actor side of the runtime's sockets (used by ActorRuntime.swift for every kind of rollout): the four sockets,
// registration with the coordinator, heartbeats, the late-joiner parameter path and control messages.
//
//   DEALER → coordinator (hello, heartbeats, metrics, eval reports; receives eval requests and shutdown)
//   SUB    ← learner PUB (parameter broadcasts; CONFLATE keeps only the newest). From a learner on the same host
//            (`endpoints.sharedMemoryParameters`) a broadcast is a small notice and the parameters are copied out of
//            its shared-memory ring (ParameterSlotRing); a notice this actor cannot use makes it ask directly.
//   DEALER → learner param ROUTER (a `hello` there asks for the current parameters: the late-joiner path, so a new or
//            restarted actor never waits for the next broadcast — the PUB/SUB slow-joiner problem — and a missed
//            broadcast is fetched after a quiet spell)
//   PUSH   → learner PULL (rollouts; a small SNDHWM gives backpressure)
// Every wait has a deadline; long waits keep heartbeating so they never look like death to the coordinator.
import BonfireMath
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class ActorLink {
    /// What the coordinator asked for.
    package enum ControlEvent {
        case shutdown(reason: String)
        case evalRequest(WireEvalRequest)
        /// The coordinator's count of live actors (the version budget is re-planned over them).
        case liveActors(Int)
    }

    let config: RunConfig
    package private(set) var identity: RoleIdentity
    var decoder: WireDecoder
    /// Admission of every received message (framing, sender role, meaning: parameter count, layout, finite values,
    /// versions; eval requests of this run's task); drops counted by reason and logged rate-limited.
    package private(set) var inbox: WireInbox
    var backoff: Backoff
    package let control: ZMQSocket
    package let sub: ZMQSocket
    let paramReq: ZMQSocket
    let pushSocket: ZMQSocket
    /// CURVE client keys when `security.mode = curve`.
    let security: RoleSecurity
    let capabilities: [String]
    let expectedHash: UInt64
    let expectedCount: Int
    /// What `install` says on a layout mismatch: which config section decides the model ("model section").
    let modelSection: String
    /// The policy version held (−1 before the first parameters).
    package private(set) var version = -1
    /// Parameters installed so far (a restarted learner may re-send the version held: waits compare installs).
    package private(set) var installs = 0
    /// How those parameters came: by the learner's broadcast, or as the answer to a direct ask (late join, a
    /// missed broadcast). A healthy run installs almost every version from the broadcast (`actor/params_broadcast`).
    package private(set) var broadcastInstalls = 0, requestedInstalls = 0
    /// Of `broadcastInstalls`, those copied out of the learner's shared-memory ring.
    package private(set) var sharedMemoryInstalls = 0
    /// Notices not taken from shared memory, by reason (each followed by a direct ask for the full parameters).
    package private(set) var sharedMemoryRejections: [ParameterSlotRing.Rejection: Int] = [:]
    /// This host's identity when this actor may read shared memory (Linux, not inproc, enabled); nil otherwise, and
    /// nil from the moment this host's ring proved unreadable (`maxRingFailures` in a row: e.g. a container with its
    /// own /dev/shm): the next hello then tells the learner to broadcast full parameters.
    var sharedMemoryHost: String?
    var ringFailuresInARow = 0
    static let maxRingFailures = 5
    /// The learner's ring, mapped on the first usable notice (re-mapped when the learner's file changes).
    var ring: ParameterSlotRing?
    /// Two copy-out buffers, used in turn: the runtime holds the one installed last, so the other is free to be
    /// written in place (one buffer would be copied on write every version; a fresh one costs its page faults).
    var ringScratch: [[Float]] = [[], []]
    var ringNext = 0
    var lastRejectionLog: Int64 = 0
    /// The sender id of the learner whose parameters are held (its pid; a new one means the learner restarted).
    var learnerID: UInt32?
    var lastHeartbeat: Int64 = 0
    /// Notices a silent coordinator (training goes on; hello is repeated until it answers).
    package private(set) var coordinatorWatch: CoordinatorWatch
    var lastHello: Int64 = 0
    var lastParams: Int64 = 0
    var lastParamAsk: Int64 = 0
    /// Evaluation requests that arrived before the first parameters; returned by the first `pollControl`.
    var pendingEvals: [WireEvalRequest] = []
    /// Control events read while a push waited (handed out by the next pollControl).
    var stashedEvents: [ControlEvent] = []
    /// A shutdown was read while a push waited: the run is over, a blocked push is no news.
    package var shutdownPending: Bool { stashedEvents.contains { if case .shutdown = $0 { true } else { false } } }

    package var name: String { identity.name }

    package init(context: ZMQContext, config: RunConfig, id: Int, capabilities: [String], pushHighWaterMark: Int32,
                 layoutHash: UInt64, parameterCount: Int, modelSection: String = "model and env sections") throws {
        self.config = config
        sharedMemoryHost = config.endpoints.sharedMemoryParameters && config.endpoints.transport != .inproc
            ? ParameterSlotRing.hostIdentity() : nil
        self.identity = RoleIdentity(runID: config.run.id, role: .actor, id: UInt32(id))
        let limits = WireLimits(parameterCount: parameterCount)   // also ZMQ_MAXMSGSIZE on every receiving socket
        self.decoder = WireDecoder(runID: config.run.id, limits: limits)
        self.inbox = WireInbox(logPeriod: .milliseconds(config.logging.warnEveryMs))
        self.backoff = Backoff(config.liveness, rng: RNG(seed: config.run.seed, stream: 4, UInt64(id)))
        self.capabilities = capabilities
        self.expectedHash = layoutHash
        self.expectedCount = parameterCount
        self.modelSection = modelSection
        let e = config.endpoints
        security = try RoleSecurity.start(config: config, role: .actor, context: context)
        coordinatorWatch = CoordinatorWatch(windowMs: config.liveness.heartbeatIntervalMs * config.liveness.livenessCount,
                                            now: monotonicMillis())
        control = try ZMQSocket(context, .dealer, linger: .milliseconds(200))
        sub = try ZMQSocket(context, .sub, linger: .zero)
        paramReq = try ZMQSocket(context, .dealer, linger: .zero)
        pushSocket = try ZMQSocket(context, .push, linger: .milliseconds(500))
        for s in [control, paramReq, pushSocket] {
            try s.set(.reconnectInterval(ms(config.liveness.reconnectInitialMs)))
            try s.set(.reconnectIntervalMax(ms(config.liveness.reconnectMaxMs)))
        }
        for s in [control, sub, paramReq] { try s.limitIncoming(to: limits) }
        // Keep only the newest broadcast — except over inproc: with libzmq 4.3.4 an inproc SUB with ZMQ_CONFLATE that
        // connects before the PUB binds never receives anything (measured; `bonfire train` starts its actor threads
        // before the learner binds), and every version then came from the direct ask once per heartbeat interval
        // (a synchronous in-process run went at ~1 update/s). A 2-message queue instead: receiveBroadcast drains it.
        if e.transport == .inproc { try sub.set(.receiveHighWaterMark(2)) } else { try sub.set(.conflate(true)) }
        try sub.set(.subscribe([]))
        try pushSocket.set(.sendHighWaterMark(pushHighWaterMark))
        try pushSocket.set(.immediate(true))
        for s in [control, sub, paramReq, pushSocket] { try security.client(s) }
        try control.connect(e.connect(e.coordinatorPort))
        try sub.connect(e.connect(e.paramsPort))
        try paramReq.connect(e.connect(e.paramsRequestPort))
        try pushSocket.connect(e.connect(e.rolloutPort))
    }

    package func close() {
        control.close(); sub.close(); paramReq.close(); pushSocket.close(); security.stop()
        ring?.close(); ring = nil
    }

    func hello() -> WireHello {
        // The learner broadcasts notices only while every actor that asked it for parameters says it shares its host.
        WireHello(role: .actor, id: identity.id, host: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                  capabilities: capabilities + (sharedMemoryHost.map { [ParameterSlotRing.capabilityPrefix + $0] } ?? []))
    }

    /// Sends a heartbeat when one is due (never blocks).
    package func heartbeat(state: String) {
        let now = monotonicMillis()
        guard now - lastHeartbeat >= Int64(config.liveness.heartbeatIntervalMs) else { return }
        lastHeartbeat = now
        if case .lost(let silent) = coordinatorWatch.tick(now: now) {
            roleLog("\(name): coordinator silent for \(silent) ms (window \(coordinatorWatch.windowMs) ms); " +
                    (config.liveness.onCoordinatorLoss == .pause ? "rollouts paused (liveness.onCoordinatorLoss = pause)" : "training goes on") +
                    ", registering again when it answers")
        }
        if coordinatorWatch.isLost {
            _ = try? control.trySend([identity.envelope(.hello(hello())).encoded()])
        }
        _ = try? control.trySend([identity.envelope(.heartbeat(WireHeartbeat(
            policyVersion: UInt64(max(version, 0)), unixTimeMs: unixTimeMs(), state: state))).encoded()])
    }

    /// Sleeps `ms` milliseconds in small steps, heartbeating so a long backoff does not look like death.
    func pause(ms: Int, state: String) {
        let until = monotonicMillis() + Int64(ms)
        while monotonicMillis() < until, !StopFlag.isSet {
            heartbeat(state: state)
            usleep(useconds_t(min(50, max(1, until - monotonicMillis())) * 1000))
        }
    }

    /// What this actor accepts: parameters of its model's count and layout, finite and not older than held; control
    /// messages from the coordinator about this run's task.
    var admission: ValidationContext {
        var c = ValidationContext(receiver: .actor, runID: config.run.id)
        c.task = config.task.name.rawValue
        c.parameterCount = expectedCount
        c.layoutHash = expectedHash
        c.currentVersion = version >= 0 ? version : nil   // parameters older than held are replays
        // The coordinator's heartbeats, live-actor counts and eval requests carry the learner's version, which is
        // ahead of the one an actor holds.
        c.maxVersionAhead = 1 << 24
        return c
    }

    /// The received message if it passes admission; nil (counted, logged) otherwise.
    func admit(_ got: ZMQReceived) -> WireEnvelope? {
        if case .success(let e) = got.envelope, e.senderRole == .learner, let v = Self.parameterVersion(e.payload),
           let held = learnerID, e.senderID != held, Int(exactly: v) != nil {
            // A restarted learner (resumed from its last checkpoint, possibly older than what we hold): forget the
            // version held so its parameters are taken and the version's rollouts are produced again (the same
            // ones: the rollout RNG is a function of the version).
            roleLog("\(name): learner restarted (id \(held) → \(e.senderID)); taking its version \(v) (held \(version))")
            version = -1
            learnerID = nil
        }
        guard let env = inbox.admit(got.envelope, context: admission, log: { [name] in roleLog("\(name): " + $0) }) else { return nil }
        if env.senderRole == .learner, Self.parameterVersion(env.payload) != nil, learnerID == nil { learnerID = env.senderID }
        return env
    }

    /// The version of a parameters message or notice; nil for anything else.
    static func parameterVersion(_ p: WirePayload) -> UInt64? {
        switch p {
        case .parameters(let m): m.version
        case .parameterNotice(let n): n.version
        default: nil
        }
    }

    /// Hello → HelloAck, retried with capped exponential backoff until `peerGiveUpMs`.
    package func register(detail: String = "") throws {
        backoff.reset()
        let started = monotonicMillis()
        while !StopFlag.isSet {
            _ = try control.send(identity.envelope(.hello(hello())), timeout: .milliseconds(500))
            if let got = try control.receiveEnvelope(&decoder, timeout: ms(config.liveness.receiveTimeoutMs)),
               let env = admit(got), case .helloAck(let ack) = env.payload, ack.accepted {
                roleLog("\(name): registered with coordinator (run \(config.run.id), current version \(ack.currentVersion))\(detail)")
                backoff.reset()
                return
            }
            guard let delay = backoff.next(giveUpAfterMs: config.liveness.peerGiveUpMs) else {
                throw ClusterError("\(name): coordinator at \(config.endpoints.connect(config.endpoints.coordinatorPort)) " +
                                   "did not answer for \(monotonicMillis() - started) ms; is it running? (raise liveness.peerGiveUpMs to wait longer)")
            }
            roleLog("\(name): no answer from coordinator after \(monotonicMillis() - started) ms; retrying in \(delay) ms")
            pause(ms: delay, state: "registering")
        }
    }

    /// Hands admitted parameters (count, layout, finite values checked by `admit`) that are newer than the held
    /// version to `apply`. True if applied.
    func install(_ p: WireParameters, _ apply: ([Float], Int) throws -> Void) throws -> Bool {
        guard Int(p.version) > version else { return false }
        try apply(p.values, Int(p.version))
        version = Int(p.version)
        installs += 1
        return true
    }

    /// The late-joiner path: ask the learner for its current parameters instead of waiting for a broadcast, and take
    /// a broadcast if one comes first. False when the coordinator said shut down (or a stop signal came) first.
    package func fetchInitialParameters(_ apply: ([Float], Int) throws -> Void) throws -> Bool {
        backoff.reset()
        let started = monotonicMillis()
        var nextRequest: Int64 = 0
        var lastLog = started
        while !StopFlag.isSet {
            let now = monotonicMillis()
            if now >= nextRequest {
                _ = try paramReq.trySend([identity.envelope(.hello(hello())).encoded()])
                nextRequest = now + Int64(backoff.nextDelayMs())
            }
            if let got = try paramReq.receiveEnvelope(&decoder, timeout: .milliseconds(50)),
               let env = admit(got), case .parameters(let p) = env.payload, try install(p, apply) {
                lastParams = monotonicMillis()
                requestedInstalls += 1
                return true
            }
            if try receiveBroadcast(apply) { lastParams = monotonicMillis(); return true }
            heartbeat(state: "waiting-for-parameters")
            while let got = try control.receiveEnvelope(&decoder, timeout: .zero) {
                guard let env = admit(got) else { continue }
                if case .back(let down) = coordinatorWatch.contact(now: monotonicMillis()) {
                    roleLog("\(name): coordinator is back after \(down) ms")
                }
                switch env.payload {
                case .shutdown(let s):
                    roleLog("\(name): shutdown from coordinator while waiting for parameters (\(s.reason))")
                    return false
                case .evalRequest(let r):
                    if pendingEvals.count < 16 { pendingEvals.append(r) }  // answered once we hold parameters (bounded)
                default: break
                }
            }
            // A learner that is still warming up is alive as far as the coordinator knows (it gives up on a silent
            // learner itself and shuts everyone down): wait as long as the coordinator answers.
            if now - started > Int64(config.liveness.peerGiveUpMs), coordinatorWatch.isLost {
                throw ClusterError("\(name): learner at \(config.endpoints.connect(config.endpoints.paramsRequestPort)) " +
                                   "sent no parameters for \(now - started) ms; is it running? If its SFT warm-up takes " +
                                   "longer, raise liveness.peerGiveUpMs" + layoutHint)
            }
            if now - lastLog >= Int64(config.logging.warnEveryMs) {
                roleLog("\(name): waiting for initial parameters from the learner (\(now - started) ms so far; it may still be warming up)")
                lastLog = now
            }
        }
        return false
    }

    /// Newest broadcast, if any (CONFLATE: at most one waiting). True if installed.
    func receiveBroadcast(_ apply: ([Float], Int) throws -> Void, timeout: Duration = .zero) throws -> Bool {
        var installed = false
        while let got = try sub.receiveEnvelope(&decoder, timeout: installed ? .zero : timeout) {
            if let env = admit(got) {
                switch env.payload {
                case .parameters(let p):
                    if try install(p, apply) {
                        installed = true
                        broadcastInstalls += 1
                    }
                case .parameterNotice(let n) where Int(n.version) > version:
                    if try install(n, apply) {
                        installed = true
                        broadcastInstalls += 1
                    } else {
                        // Not usable here: ask for the full parameters now (the answer is read by pollParameters).
                        _ = try paramReq.trySend([identity.envelope(.hello(hello())).encoded()])
                        lastParamAsk = monotonicMillis()
                    }
                default: break
                }
            }
            if !installed { break }
        }
        return installed
    }

    /// Copies the parameters a same-host notice (admitted: version, size, layout checked) announces out of the
    /// learner's shared-memory ring, verifying host, file, slot version, checksum and finite values; installs them.
    /// False (counted by reason, logged rate-limited) when they cannot be taken from there.
    func install(_ n: WireParameterNotice, _ apply: ([Float], Int) throws -> Void) throws -> Bool {
        let rejection: ParameterSlotRing.Rejection
        if let host = sharedMemoryHost, n.hostIdentity == host {
            do {
                if ring?.fileName != n.fileName {
                    ring?.close(); ring = nil
                    ring = try ParameterSlotRing.open(directory: ParameterSlotRing.directory(fallback: config.run.dir),
                                                      fileName: n.fileName, runID: config.run.id, layoutHash: expectedHash,
                                                      parameterCount: expectedCount)
                }
                guard let why = ring!.read(n, into: &ringScratch[ringNext], bound: admission.parameterBound) else {
                    try apply(ringScratch[ringNext], Int(n.version))
                    ringNext = 1 - ringNext
                    version = Int(n.version)
                    installs += 1
                    sharedMemoryInstalls += 1
                    ringFailuresInARow = 0
                    return true
                }
                rejection = why
                // A file that changed under us is mapped again next time.
                if why == .fileInvalid || why == .badFileName { ring?.close(); ring = nil }
            } catch let why as ParameterSlotRing.Rejection {
                rejection = why
            }
        } else {
            rejection = .otherHost
        }
        sharedMemoryRejections[rejection, default: 0] += 1
        if [.fileMissing, .fileInvalid, .badFileName, .shapeMismatch].contains(rejection) {
            ringFailuresInARow += 1
            if ringFailuresInARow >= Self.maxRingFailures, sharedMemoryHost != nil {
                sharedMemoryHost = nil
                ring?.close(); ring = nil
                roleLog("\(name): the learner's shared memory is not readable here (\(rejection.rawValue), " +
                        "\(ringFailuresInARow) times in a row); asking it for full parameter broadcasts")
            }
        }
        let now = monotonicMillis()
        if now - lastRejectionLog >= Int64(config.logging.warnEveryMs) {
            lastRejectionLog = now
            roleLog("\(name): parameters version \(n.version) not taken from shared memory (\(rejection.rawValue); " +
                    "\(sharedMemoryRejections.values.reduce(0, +)) so far); asking the learner for them directly")
        }
        return false
    }

    /// Takes newer parameters from a broadcast or from a direct answer; after `liveness.parameterRefreshMs` without
    /// any parameters message it asks the learner directly (PUB drops under its high-water mark). Throws when the learner has been silent for
    /// `peerGiveUpMs`. True if newer parameters were installed.
    package func pollParameters(_ apply: ([Float], Int) throws -> Void, timeout: Duration = .zero) throws -> Bool {
        let now = monotonicMillis()
        var installed = false
        if try receiveBroadcast(apply, timeout: timeout) { installed = true; lastParams = now }
        while let got = try paramReq.receiveEnvelope(&decoder, timeout: .zero) {
            // Any answer shows the learner is alive, even when it holds no newer version.
            if let env = admit(got), case .parameters(let p) = env.payload {
                if try install(p, apply) { installed = true; requestedInstalls += 1 }
                lastParams = now
            }
        }
        let refresh = Int64(config.liveness.parameterRefreshMs)
        if now - lastParams > refresh, now - lastParamAsk > refresh {
            _ = try paramReq.trySend([identity.envelope(.hello(hello())).encoded()])
            lastParamAsk = now
        }
        if now - lastParams > Int64(config.liveness.peerGiveUpMs) {
            let e = config.endpoints
            throw ClusterError("\(name): no parameters from the learner for \(now - lastParams) ms " +
                               "(> liveness.peerGiveUpMs); is the learner running at \(e.connect(e.paramsPort))?" + layoutHint)
        }
        return installed
    }

    /// The version budget's wait: up to `deadlineMs` (nil: no deadline, the synchronous schedule) for parameters
    /// newer than the ones held, heartbeating. True when a newer version was installed or the deadline passed (then
    /// sample anyway: e.g. an actor died and the learner waits for more rollouts). False when a control message
    /// (shutdown, evaluation) or a stop signal came first: handle that before sampling again.
    package func waitForNewerVersion(_ apply: ([Float], Int) throws -> Void, state: String, deadlineMs: Int?) throws -> Bool {
        let held = installs
        let until = deadlineMs.map { monotonicMillis() + Int64($0) } ?? Int64.max
        var lastAsk = monotonicMillis()
        while installs == held, monotonicMillis() < until, !StopFlag.isSet {
            let ready = try ZMQSocket.pollReadable([sub, control, paramReq], timeout: .milliseconds(5))
            _ = try pollParameters(apply)   // also asks the learner directly after a quiet spell (a missed broadcast)
            // Without a deadline (synchronous schedule) nothing else moves until the next version arrives: ask the
            // learner directly once per heartbeat interval, so a missed broadcast costs at most that long.
            if deadlineMs == nil, monotonicMillis() - lastAsk >= Int64(config.liveness.heartbeatIntervalMs) {
                _ = try paramReq.trySend([identity.envelope(.hello(hello())).encoded()])
                lastAsk = monotonicMillis()
            }
            heartbeat(state: state)
            if ready.contains(1) { return installs != held }   // shutdown / eval first
        }
        if installs == held {
            if StopFlag.isSet { return false }
            _ = try pollParameters(apply)   // also asks the learner directly after a quiet spell
        }
        return true
    }

    /// An evaluation asks for `target`: when this actor holds an older version, ask the learner directly and wait
    /// up to `withinMs` for it (a missed broadcast must not mislabel the table). True when `target` is held.
    package func catchUp(to target: Int, withinMs: Int, _ apply: ([Float], Int) throws -> Void) throws -> Bool {
        guard version < target else { return true }
        _ = try paramReq.trySend([identity.envelope(.hello(hello())).encoded()])
        let until = monotonicMillis() + Int64(withinMs)
        while version < target, monotonicMillis() < until, !StopFlag.isSet {
            _ = try ZMQSocket.pollReadable([sub, paramReq], timeout: .milliseconds(5))
            _ = try pollParameters(apply)
            heartbeat(state: "sampling")
        }
        return version >= target
    }

    /// Control messages since the last call (and evaluation requests held from before the first parameters).
    /// A request to register again is answered here, at most once per heartbeat interval.
    package func pollControl() throws -> [ControlEvent] {
        var events = stashedEvents + pendingEvals.map { ControlEvent.evalRequest($0) }
        stashedEvents.removeAll()
        pendingEvals.removeAll()
        let now = monotonicMillis()
        while let got = try control.receiveEnvelope(&decoder, timeout: .zero) {
            guard let env = admit(got) else { continue }
            if case .back(let down) = coordinatorWatch.contact(now: now) {
                roleLog("\(name): coordinator is back after \(down) ms")
            }
            switch env.payload {
            case .shutdown(let s): events.append(.shutdown(reason: s.reason))
            case .evalRequest(let r): events.append(.evalRequest(r))
            case .metrics(let m) where env.senderRole == .coordinator:
                if let live = m.values[MetricKey.liveActors], live.isFinite, live >= 0, live <= 1_000_000 {
                    events.append(.liveActors(Int(live)))
                }
            case .helloAck(let ack) where !ack.accepted:
                if now - lastHello >= Int64(config.liveness.heartbeatIntervalMs) {
                    roleLog("\(name): coordinator asks to register again (\(ack.reason))")
                    _ = try control.send(identity.envelope(.hello(hello())), timeout: .milliseconds(200))
                    lastHello = now
                }
            default: break
            }
        }
        return events
    }

    /// When parameters were dropped for their shape, the likely cause (a different model config) for a give-up error.
    var layoutHint: String {
        let n = inbox.drops[.layoutMismatch] + inbox.drops[.parameterCountMismatch]
        return n == 0 ? "" : ". \(n) parameter messages had another layout or size than this actor's model " +
            "(hash \(expectedHash), \(expectedCount) floats): run every role with the same config (\(modelSection))"
    }

    /// Pushes without waiting; false when the queue is full (statistics not worth waiting for).
    package func tryPush(_ payload: WirePayload) throws -> Bool {
        try pushSocket.send(identity.envelope(payload), timeout: .zero)  // encoded straight into the ZeroMQ message
    }

    /// Sends on the control socket (reports, metrics); `timeout` nil = do not wait.
    package func sendControl(_ payload: WirePayload, timeout: Duration? = nil) throws {
        let env = identity.envelope(payload)
        if let timeout { _ = try control.send(env, timeout: timeout) } else { _ = try control.trySend([env.encoded()]) }
    }

    /// Pushes a rollout to the learner; false when it would not take it within `timeout` (backpressure). Waits in
    /// slices of one heartbeat interval and heartbeats between them, so backpressure never looks like death.
    package func push(_ payload: WirePayload, timeout: Duration) throws -> Bool {
        let env = identity.envelope(payload)
        let deadline = ContinuousClock.now + timeout
        let slice = ms(max(1, config.liveness.heartbeatIntervalMs / 2))
        while true {
            let left = deadline - ContinuousClock.now
            if try pushSocket.send(env, timeout: max(.zero, min(slice, left))) { return true }
            if ContinuousClock.now >= deadline || StopFlag.isSet { return false }
            heartbeat(state: "sampling")
            // The learner may have finished: a shutdown read here ends the wait (the run loop handles it next)
            // instead of holding the actor — and `bonfire train`'s exit — for the whole timeout.
            let events = try pollControl()
            stashedEvents += events
            if shutdownPending { return false }
        }
    }

    /// Says goodbye to the coordinator (stop signal).
    package func leave(reason: String) {
        _ = try? control.send(identity.envelope(.shutdown(WireShutdown(reason: reason))), timeout: .milliseconds(200))
    }
}
