// An actor: samples BoN groups with the latest parameters it holds, scores them, pushes them to the learner, and
// runs evaluations when the coordinator asks.
//
//   DEALER → coordinator (hello, heartbeats, metrics, eval reports; receives eval requests and shutdown)
//   SUB    ← learner PUB (parameter broadcasts; CONFLATE keeps only the newest)
//   DEALER → learner param ROUTER (a `hello` there asks for the current parameters: the late-joiner path, so a new
//            or restarted actor never waits for the next broadcast — the PUB/SUB slow-joiner problem)
//   PUSH   → learner PULL (BoN group batches; a small SNDHWM gives backpressure, so actors cannot race ahead
//            producing samples that would only be dropped as stale)
// Every N responses of a group come from one policy version, recorded once per group.
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class ActorRole {
    let config: RunConfig
    var identity: RoleIdentity
    let task: any VerifiableTask
    let verifier: any Verifier
    let model: GPT
    let hash: UInt64
    var version: Int = -1
    var decoder: WireDecoder
    var rng: RNG
    var backoff: Backoff
    var samplesTotal = 0, groupsSent = 0, droppedTotal = 0
    var promptCursor: Int
    /// Prompts per pushed message (each with `sampling.groupSize` responses).
    let promptsPerMessage = 2

    package init(config: RunConfig, id: Int) throws {
        self.config = config
        self.identity = RoleIdentity(runID: config.run.id, role: .actor, id: UInt32(id))
        self.task = try TaskRegistry.make(name: config.task.name, seed: config.task.seed)
        self.verifier = try makeVerifier(name: config.actors.verifier, task: task, seed: config.run.seed)
        self.model = GPT(config: config.gptConfig, seed: config.run.seed)
        self.hash = layoutHash(model.layout)
        self.decoder = WireDecoder(runID: config.run.id)
        self.rng = RNG(seed: config.run.seed, stream: 3, UInt64(id), UInt64(getpid()))
        self.backoff = Backoff(config.liveness, rng: RNG(seed: config.run.seed, stream: 4, UInt64(id)))
        // Actors walk the train split from different offsets; a restarted actor starts elsewhere (pid in the stream).
        self.promptCursor = rng.int(1_000_000)
    }

    var name: String { identity.name }

    package func run(context: ZMQContext) throws -> Int32 {
        let e = config.endpoints
        let control = try ZMQSocket(context, .dealer, linger: .milliseconds(200))
        let sub = try ZMQSocket(context, .sub, linger: .zero)
        let paramReq = try ZMQSocket(context, .dealer, linger: .zero)
        let push = try ZMQSocket(context, .push, linger: .milliseconds(500))
        defer { control.close(); sub.close(); paramReq.close(); push.close() }
        for s in [control, paramReq, push] {
            try s.set(.reconnectInterval(ms(config.liveness.reconnectInitialMs)))
            try s.set(.reconnectIntervalMax(ms(config.liveness.reconnectMaxMs)))
        }
        try sub.set(.conflate(true))
        try sub.set(.subscribe([]))
        try push.set(.sendHighWaterMark(4))
        try push.set(.immediate(true))
        try control.connect(e.connect(e.coordinatorPort))
        try sub.connect(e.connect(e.paramsPort))
        try paramReq.connect(e.connect(e.paramsRequestPort))
        try push.connect(e.connect(e.rolloutPort))

        try register(control)
        guard try fetchInitialParameters(paramReq, sub, control) else { return 0 }
        for r in pendingEvals {
            _ = try control.send(identity.envelope(.evalReport(evaluate(r))), timeout: ms(config.liveness.receiveTimeoutMs))
        }
        pendingEvals.removeAll()

        var lastMetrics = monotonicMillis()
        var lastParams = monotonicMillis()
        var periodSamples = 0
        var pushBlockedSince: Int64?
        var lastBlockedLog: Int64 = 0
        var lastParamAsk: Int64 = 0
        var lastHello: Int64 = 0
        while true {
            if StopFlag.isSet {
                roleLog("\(name): stop signal; leaving")
                _ = try? control.send(identity.envelope(.shutdown(WireShutdown(reason: "actor stopped by signal"))),
                                      timeout: .milliseconds(200))
                return 0
            }
            let now = monotonicMillis()
            // Newest parameters, if any (CONFLATE: at most one waiting).
            if try receiveParameters(sub, timeout: .zero) { lastParams = now }
            // A broadcast can be missed (PUB drops under its high-water mark): after a quiet spell, ask directly.
            while let got = try paramReq.receiveEnvelope(&decoder, timeout: .zero) {
                // Any answer shows the learner is alive, even when it holds no newer version.
                if case .success(let env) = got.envelope, case .parameters(let p) = env.payload { _ = try install(p); lastParams = now }
            }
            if now - lastParams > 5000, now - lastParamAsk > 5000 {
                _ = try paramReq.trySend([identity.envelope(.hello(hello())).encoded()])
                lastParamAsk = now
            }
            if now - lastParams > Int64(config.liveness.peerGiveUpMs) {
                throw ClusterError("\(name): no parameters from the learner for \(now - lastParams) ms " +
                                   "(> liveness.peerGiveUpMs); is the learner running at \(e.connect(e.paramsPort))?")
            }
            // Control messages.
            while let got = try control.receiveEnvelope(&decoder, timeout: .zero) {
                guard case .success(let env) = got.envelope else { continue }
                switch env.payload {
                case .shutdown(let s):
                    roleLog("\(name): shutdown from coordinator (\(s.reason)); sent \(groupsSent) groups, \(samplesTotal) samples")
                    return 0
                case .evalRequest(let r):
                    _ = try receiveParameters(sub, timeout: .zero)  // evaluate the newest parameters we can get
                    let report = evaluate(r)
                    _ = try control.send(identity.envelope(.evalReport(report)), timeout: ms(config.liveness.receiveTimeoutMs))
                case .helloAck(let ack) where !ack.accepted:
                    // One hello per heartbeat interval at most (several requests may be queued).
                    if now - lastHello >= Int64(config.liveness.heartbeatIntervalMs) {
                        roleLog("\(name): coordinator asks to register again (\(ack.reason))")
                        _ = try control.send(identity.envelope(.hello(hello())), timeout: .milliseconds(200))
                        lastHello = now
                    }
                default: break
                }
            }
            heartbeat(control, state: "sampling")
            if now - lastMetrics >= Int64(config.logging.periodSeconds * 1000) {
                let rate = Double(periodSamples) / (Double(now - lastMetrics) / 1000)
                _ = try control.trySend([identity.envelope(.metrics(WireMetrics(step: UInt64(groupsSent), version: UInt64(max(version, 0)), values: [
                    "actor/samples_total": Double(samplesTotal), "actor/dropped_total": Double(droppedTotal),
                    "throughput/samples_per_s": rate,
                ]))).encoded()])
                lastMetrics = now; periodSamples = 0
            }

            // One message of BoN groups, sampled by the single version we hold now.
            let batch = sampleGroups()
            let env = identity.envelope(.bonGroups(batch))
            if try push.send(env, timeout: ms(config.liveness.receiveTimeoutMs)) {
                groupsSent += batch.groups.count
                samplesTotal += batch.groups.reduce(0) { $0 + $1.responses.count }
                periodSamples += batch.groups.reduce(0) { $0 + $1.responses.count }
                pushBlockedSince = nil
            } else {
                droppedTotal += batch.groups.count
                let since = pushBlockedSince ?? now
                pushBlockedSince = since
                if now - lastBlockedLog >= 10_000 {
                    lastBlockedLog = now
                    roleLog("\(name): learner is not taking rollouts at \(e.connect(e.rolloutPort)) (send waited " +
                        "\(config.liveness.receiveTimeoutMs) ms, blocked for \(now - since) ms); \(droppedTotal) groups dropped so far; retrying")
                }
            }
        }
    }

    var lastHeartbeat: Int64 = 0
    /// Evaluation requests that arrived before the first parameters.
    var pendingEvals: [WireEvalRequest] = []

    /// Sends a heartbeat when one is due (never blocks).
    func heartbeat(_ control: ZMQSocket, state: String) {
        let now = monotonicMillis()
        guard now - lastHeartbeat >= Int64(config.liveness.heartbeatIntervalMs) else { return }
        lastHeartbeat = now
        _ = try? control.trySend([identity.envelope(.heartbeat(WireHeartbeat(
            policyVersion: UInt64(max(version, 0)), unixTimeMs: unixTimeMs(), state: state))).encoded()])
    }

    /// Sleeps `ms` milliseconds in small steps, heartbeating so a long backoff does not look like death.
    func pause(ms: Int, _ control: ZMQSocket, state: String) {
        let until = monotonicMillis() + Int64(ms)
        while monotonicMillis() < until, !StopFlag.isSet {
            heartbeat(control, state: state)
            usleep(useconds_t(min(50, max(1, until - monotonicMillis())) * 1000))
        }
    }

    func hello() -> WireHello {
        WireHello(role: .actor, id: identity.id, host: ProcessInfo.processInfo.hostName, pid: UInt32(getpid()),
                  capabilities: ["bon-groups", "eval"])
    }

    /// Hello → HelloAck, retried with capped exponential backoff until `peerGiveUpMs`.
    func register(_ control: ZMQSocket) throws {
        backoff.reset()
        let started = monotonicMillis()
        while !StopFlag.isSet {
            _ = try control.send(identity.envelope(.hello(hello())), timeout: .milliseconds(500))
            if let got = try control.receiveEnvelope(&decoder, timeout: ms(config.liveness.receiveTimeoutMs)),
               case .success(let env) = got.envelope, case .helloAck(let ack) = env.payload, ack.accepted {
                roleLog("\(name): registered with coordinator (run \(config.run.id), current version \(ack.currentVersion))")
                backoff.reset()
                return
            }
            guard let delay = backoff.next(giveUpAfterMs: config.liveness.peerGiveUpMs) else {
                throw ClusterError("\(name): coordinator at \(config.endpoints.connect(config.endpoints.coordinatorPort)) " +
                                   "did not answer for \(monotonicMillis() - started) ms; is it running? (raise liveness.peerGiveUpMs to wait longer)")
            }
            roleLog("\(name): no answer from coordinator after \(monotonicMillis() - started) ms; retrying in \(delay) ms")
            pause(ms: delay, control, state: "registering")
        }
    }

    /// The late-joiner path: ask the learner for its current parameters instead of waiting for a broadcast.
    func fetchInitialParameters(_ paramReq: ZMQSocket, _ sub: ZMQSocket, _ control: ZMQSocket) throws -> Bool {
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
               case .success(let env) = got.envelope, case .parameters(let p) = env.payload, try install(p) { return true }
            if try receiveParameters(sub, timeout: .zero) { return true }
            heartbeat(control, state: "waiting-for-parameters")
            while let got = try control.receiveEnvelope(&decoder, timeout: .zero) {
                guard case .success(let env) = got.envelope else { continue }
                switch env.payload {
                case .shutdown(let s):
                    roleLog("\(name): shutdown from coordinator while waiting for parameters (\(s.reason))")
                    return false
                case .evalRequest(let r):
                    pendingEvals.append(r)  // answered as soon as we hold parameters
                default: break
                }
            }
            if now - started > Int64(config.liveness.peerGiveUpMs) {
                throw ClusterError("\(name): learner at \(config.endpoints.connect(config.endpoints.paramsRequestPort)) " +
                                   "sent no parameters for \(now - started) ms; is it running? If its SFT warm-up takes " +
                                   "longer, raise liveness.peerGiveUpMs")
            }
            if now - lastLog >= 5000 {
                roleLog("\(name): waiting for initial parameters from the learner (\(now - started) ms so far; it may still be warming up)")
                lastLog = now
            }
        }
        return false
    }

    /// Installs a broadcast if it is newer than what we hold. Returns true if installed.
    func receiveParameters(_ sub: ZMQSocket, timeout: Duration) throws -> Bool {
        var installed = false
        while let got = try sub.receiveEnvelope(&decoder, timeout: installed ? .zero : timeout) {
            if case .success(let env) = got.envelope, case .parameters(let p) = env.payload, try install(p) { installed = true }
            if !installed { break }
        }
        return installed
    }

    func install(_ p: WireParameters) throws -> Bool {
        guard p.layoutHash == hash, p.values.count == model.params.count else {
            throw ClusterError("\(name): parameter layout from the learner (hash \(p.layoutHash), \(p.values.count) floats) " +
                               "does not match this actor's model (hash \(hash), \(model.params.count) floats); " +
                               "run every role with the same config (model section)")
        }
        guard Int(p.version) > version else { return false }
        let first = version < 0
        model.params = p.values
        version = Int(p.version)
        if first { roleLog("\(name): got parameters version \(version); sampling") }
        return true
    }

    func nextItem() -> TaskItem {
        promptCursor += 1
        return task.item(split: .train, index: promptCursor % trainSplitSize)
    }

    func sampleGroups() -> WireBoNGroupBatch {
        let items = (0..<promptsPerMessage).map { _ in nextItem() }
        // Prompt token ids without BOS on the wire (the learner's sequences are BOS + prompt + response).
        let promptIDs = items.map { (try? Tokenizer.encode($0.prompt)) ?? [] }
        let prompts = promptIDs.map { [Tokenizer.bos] + $0 }
        let sc = config.samplingConfig
        let out = model.sample(prompts: prompts, samplesPerPrompt: config.sampling.groupSize, config: sc, rng: &rng)
        var groups: [WireBoNGroup] = []
        for (k, item) in items.enumerated() {
            let texts = out[k].map { Tokenizer.decode($0.tokens) }
            let scores = verifier.scores(item: item, responses: texts)
            let responses = out[k].enumerated().map { (i, r) in
                WireBoNResponse(tokens: r.tokens, tokenLogProbs: r.logProbs, verifierScore: scores[i],
                                reward: task.reward(item: item, response: texts[i]).reward)
            }
            groups.append(WireBoNGroup(itemID: UInt64(item.index), promptTokens: promptIDs[k],
                                       behaviourVersion: UInt64(version), temperature: sc.temperature, responses: responses))
        }
        return WireBoNGroupBatch(task: config.task.name, groups: groups)
    }

    func evaluate(_ r: WireEvalRequest) -> WireEvalReport {
        roleLog("\(name): evaluating version \(version) (requested \(r.version)) on \(r.numPrompts) \(r.split) prompts")
        let split = Split(rawValue: r.split) ?? .test
        let items = task.items(split: split, range: 0..<max(1, r.numPrompts))
        let table = evaluatePolicy(model: model, task: task, verifier: verifier, items: items,
                                   samples: config.eval.samples, nList: r.nList, temperatures: r.temperatures,
                                   maxNewTokens: config.sampling.maxNewTokens, rng: &rng)
        return WireEvalReport(requestID: r.requestID, version: UInt64(version), task: r.task, split: r.split,
                              rows: table.map { WireEvalRow(n: $0.n, temperature: $0.temperature, passAtN: $0.passAtN,
                                                           boN: $0.boN, meanReward: $0.meanReward, numPrompts: items.count) })
    }
}

/// Train-split indices actors cycle through.
let trainSplitSize = 100_000
