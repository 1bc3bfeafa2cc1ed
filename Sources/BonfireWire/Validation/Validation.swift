// Validation of the MEANING of decoded wire messages (decoding, in `WireDecoder`, only checks framing). Pure and
// socket-free: a receiver fills a `ValidationContext` with what it knows (run, task, model sizes, its current policy
// version, the sender's registered role, limits) and asks `context.validate(envelope)`; the answer is `.valid` or
// `.invalid(reason, detail:)`, counted in a `DropCounter` and logged through a `DropLog`. Nothing here traps on any
// value: every wire integer is converted with `Int(exactly:)`, every float is checked with `isFinite` before use.
//
// What each message must satisfy (beyond the envelope's run id, sender role and registration):
//   BoNGroupBatch   task = run's task; 1...maxGroupsPerBatch groups; per group: non-empty prompt, item id < itemCount, N in groupSizes,
//                   behaviour version fits Int, ≤ current + maxVersionAhead, ≥ current − maxLag; temperature finite
//                   in range; per response: 1...maxNewTokens tokens, prompt + response ≤ contextLength, ids < vocab,
//                   log-probs finite in [logProbFloor, logProbCeiling], verifier score and reward finite and in range.
//   EpisodeBatch    env = run's env; 1...maxStepsPerBatch steps; D = observationDim; observations and bootstrap
//                   finite and |x| ≤ observationBound; done/truncation/bootstrap structure (EpisodeChunk rules); actions in 0..<actionCount; rewards finite in range; log-probs
//                   as above; every behaviour version as above.
//   ParameterAnnounce  version fits, not older than held; count = parameterCount; layout hash = layoutHash; finite.
//   EvalRequest     version fits; task; 1...maxEvalNs N values each in 1...maxEvalN; temperatures finite in range.
//   EvalReport      version fits, not from the future; task; request id expected; rows 1...maxEvalRows with
//                   n in 1...maxEvalN, pass@N and Bo-N in [0, 1], mean reward finite in range.
//   Metrics         step and version fit; ≤ maxMetricKeys keys, each non-empty and ≤ maxStringBytes; values finite.
//   Hello           role ≠ unspecified and = envelope role, id = envelope id; strings and capabilities bounded.
//   HelloAck        version fits; heartbeat interval and liveness in range.   Heartbeat: version fits; state bounded.
//   Shutdown        reason bounded.

/// What a run's rollout messages are (the wire's view of the job; `BonfireCluster.JobKind` maps onto it).
package enum RolloutKind: String, Sendable, CaseIterable, Codable {
    /// BoN groups over a text task (`.bonGroups`).
    case bonGroups = "bon_groups"
    /// Environment episodes (`.episodes`), MLP or multi-turn text environments.
    case episodes
}

/// Limits on what a peer can make a receiver allocate or store. Defaults are generous but finite.
package struct ValidationLimits: Equatable, Sendable {
    /// BoN groups in one batch.
    package var maxGroupsPerBatch = 4096
    /// Steps T in one episode batch.
    package var maxStepsPerBatch = 1 << 20
    /// Any string field (task, env, host, state, reason, split, metric key, capability), in UTF-8 bytes.
    package var maxStringBytes = 256
    /// Keys in one Metrics message.
    package var maxMetricKeys = 1024
    /// Capabilities in one Hello.
    package var maxCapabilities = 64
    /// Rows in one EvalReport; N values and temperatures in one EvalRequest.
    package var maxEvalRows = 1024
    /// Largest N of pass@N / Bo-N.
    package var maxEvalN = 1 << 16
    /// Prompts in one EvalRequest (0 = whole split is always allowed).
    package var maxEvalPrompts = 1 << 20

    package init() {}
}

/// What the receiver knows, against which a message's meaning is checked. `nil` fields skip their check (e.g. the
/// coordinator does not know the vocabulary and never receives BoN groups).
package struct ValidationContext: Sendable {
    /// The role that receives (decides which sender roles may send which message type).
    package var receiver: WireRole
    /// The run id; nil accepts any (tools).
    package var runID: String?
    /// The rollout kind this run trains on; nil accepts both.
    package var rolloutKind: RolloutKind?
    /// BoN groups' item ids must be in 0..<itemCount (the task's train split); nil skips the check.
    package var itemCount: Int?
    /// The run's task (BoN batches, eval requests/reports); nil accepts any.
    package var task: String?
    /// The run's environment (episode batches); nil accepts any.
    package var env: String?

    // Model (BoN groups)
    package var vocabSize: Int?
    package var contextLength: Int?
    package var maxNewTokens: Int?
    /// Allowed number of responses N per group (e.g. groupSize...groupSize).
    package var groupSizes: ClosedRange<Int>?

    // Versions
    /// The newest policy version the receiver knows (learner: its own; actor: the one it holds; coordinator: the
    /// learner's last reported). nil skips future/stale/replay checks (but versions must still fit Int).
    package var currentVersion: Int?
    /// Largest accepted lag = current − behaviour version of a rollout; nil = no staleness check.
    package var maxLag: Int?
    /// How far a version may be ahead of `currentVersion` (an actor may briefly hold a newer version than the
    /// coordinator has heard of). Default 0 for the learner; a coordinator should allow a small slack.
    package var maxVersionAhead = 0

    // Parameters
    package var parameterCount: Int?
    package var layoutHash: UInt64?
    /// |θ| above this is treated like a non-finite parameter. Default `defaultParameterBound`.
    package var parameterBound: Float = ValidationContext.defaultParameterBound
    /// 1e6: what every receiver accepts by default, and so what a learner may publish (BoNJob rolls back updates and
    /// stops SFT warm-ups that leave a parameter beyond it).
    package static let defaultParameterBound: Float = 1e6

    // Environments
    package var observationDim: Int?
    /// Actions must be in 0..<actionCount; nil only checks ≥ 0.
    package var actionCount: Int?
    /// |observation| above this is treated as non-finite. Default 1e9.
    package var observationBound: Float = 1e9

    // Values
    /// Log-probs must be in [logProbFloor, logProbCeiling]. The floor bounds importance weights: a sampled token
    /// with log-prob below −100 has probability < e⁻¹⁰⁰ (never happens). The ceiling allows float rounding above 0.
    package var logProbFloor: Float = Self.defaultLogProbRange.lowerBound
    package var logProbCeiling: Float = Self.defaultLogProbRange.upperBound
    /// The default [logProbFloor, logProbCeiling]. FastCodec checks decoded log-probs against it while copying them
    /// (`WireResponseSummary`); a context with these bounds or wider then needs no pass of its own.
    package static let defaultLogProbRange: ClosedRange<Float> = -100...1e-4
    /// Rewards R (BoN responses, env steps, eval mean reward). Set it to the task's range (e.g. 0...1).
    package var rewardRange: ClosedRange<Double> = -1e3...1e3
    /// Verifier scores r.
    package var scoreRange: ClosedRange<Double> = -1e6...1e6
    /// Sampling temperatures (BoN groups, eval requests/rows).
    package var temperatureRange: ClosedRange<Double> = 0...100

    // Sender
    /// The role the sender registered with (coordinator's peer table), if known. A mismatch with the envelope's
    /// `sender_role` is `.senderIdentityMismatch`.
    package var senderRegisteredRole: WireRole?
    /// Message kinds that are dropped unless `senderRegisteredRole` is known (e.g. a coordinator requires
    /// registration for metrics and eval reports). Default: none.
    package var requireRegistrationFor: Set<WireMessageKind> = []
    /// Eval report request ids the receiver is waiting for; nil = any.
    package var expectedEvalRequests: Set<UInt64>?

    package var limits = ValidationLimits()

    package init(receiver: WireRole, runID: String?) {
        self.receiver = receiver
        self.runID = runID
    }
}

/// The message types, for role permissions and metric keys.
package enum WireMessageKind: String, Sendable, CaseIterable, Hashable {
    case hello, helloAck = "hello_ack", heartbeat, parameters, bonGroups = "bon_groups", episodes
    case evalRequest = "eval_request", evalReport = "eval_report", metrics, shutdown
    case parameterNotice = "parameter_notice"

    package init(_ p: WirePayload) {
        switch p {
        case .hello: self = .hello
        case .helloAck: self = .helloAck
        case .heartbeat: self = .heartbeat
        case .parameters: self = .parameters
        case .bonGroups: self = .bonGroups
        case .episodes: self = .episodes
        case .evalRequest: self = .evalRequest
        case .evalReport: self = .evalReport
        case .metrics: self = .metrics
        case .shutdown: self = .shutdown
        case .parameterNotice: self = .parameterNotice
        }
    }

    /// Which sender roles may send this kind to `receiver` (the runtime's message flows, docs/cluster.md).
    ///   coordinator ← hello/heartbeat/shutdown (learner, actor, tool), metrics (learner, actor), eval reports (actor)
    ///   learner     ← BoN groups, episodes and episode statistics (actor), hello = parameter request (actor, tool),
    ///                 hello_ack/shutdown/heartbeat (coordinator)
    ///   actor       ← parameters (learner), hello_ack/eval requests/shutdown/heartbeat/live-actor metrics (coordinator)
    ///   tool        ← anything from a real role
    /// `allowedSenders(to:).contains(sender)` without building a Set per message: a table of role bitmasks, made
    /// once from `allowedSenders` (the one place the rules live).
    package func allows(_ sender: WireRole, to receiver: WireRole) -> Bool {
        guard let byReceiver = Self.senderMasks[self], Int(receiver.rawValue) < byReceiver.count, sender.rawValue < 32
        else { return false }
        return byReceiver[Int(receiver.rawValue)] & (1 << sender.rawValue) != 0
    }

    /// kind → (receiver raw value → bitmask of allowed senders' raw values).
    private static let senderMasks: [WireMessageKind: [UInt32]] = {
        let roles = WireRole.allCases
        let width = Int(roles.map(\.rawValue).max()!) + 1
        var out: [WireMessageKind: [UInt32]] = [:]
        for kind in allCases {
            var masks = [UInt32](repeating: 0, count: width)
            for r in roles {
                masks[Int(r.rawValue)] = kind.allowedSenders(to: r).reduce(0) { $0 | (1 << $1.rawValue) }
            }
            out[kind] = masks
        }
        return out
    }()

    package func allowedSenders(to receiver: WireRole) -> Set<WireRole> {
        switch receiver {
        case .coordinator:
            switch self {
            case .hello, .heartbeat, .shutdown: [.learner, .actor, .tool]
            case .metrics: [.learner, .actor]
            case .evalReport: [.actor]
            default: []
            }
        case .learner:
            switch self {
            // metrics: an environment actor's episode statistics travel with its episodes.
            case .bonGroups, .episodes, .metrics: [.actor]
            case .hello: [.actor, .tool]
            // heartbeat: the coordinator's own, by which a role notices it is gone (CoordinatorWatch).
            case .helloAck, .shutdown, .heartbeat: [.coordinator]
            default: []
            }
        case .actor:
            switch self {
            case .parameters, .parameterNotice: [.learner]
            // metrics: the live-actor count the version budget re-plans over.
            case .helloAck, .evalRequest, .shutdown, .heartbeat, .metrics: [.coordinator]
            default: []
            }
        case .tool: [.coordinator, .learner, .actor]
        case .unspecified: []
        }
    }
}

// MARK: - Validation

extension ValidationContext {
    /// Checks the envelope (run, sender role for this receiver, registration) and then the payload.
    package func validate(_ e: WireEnvelope) -> Validation {
        if e.protocolVersion != WireEnvelope.protocolVersion {
            return .invalid(.wrongProtocolVersion, detail: "protocol \(e.protocolVersion)")
        }
        if let runID, e.runID != runID {
            return .invalid(.unknownRunID, detail: "run id \"\(e.runID.prefix(64))\"")
        }
        let kind = WireMessageKind(e.payload)
        guard kind.allows(e.senderRole, to: receiver) else {
            return .invalid(.senderRoleNotAllowed,
                            detail: "a \(e.senderRole) may not send \(kind.rawValue) to the \(receiver)")
        }
        if let reg = senderRegisteredRole, reg != e.senderRole {
            return .invalid(.senderIdentityMismatch, detail: "registered as \(reg), envelope says \(e.senderRole)")
        }
        if senderRegisteredRole == nil, requireRegistrationFor.contains(kind) {
            return .invalid(.senderNotRegistered, detail: "\(kind.rawValue) from an unregistered \(e.senderRole)")
        }
        switch e.payload {
        case .hello(let m):
            if m.role != e.senderRole || m.id != e.senderID {
                return .invalid(.senderIdentityMismatch,
                                detail: "hello says \(m.role) \(m.id), envelope \(e.senderRole) \(e.senderID)")
            }
            return validate(m)
        case .helloAck(let m): return validate(m)
        case .heartbeat(let m): return validate(m)
        case .parameters(let m): return validate(m)
        case .bonGroups(let m): return validate(m)
        case .episodes(let m): return validate(m)
        case .evalRequest(let m): return validate(m)
        case .evalReport(let m): return validate(m)
        case .metrics(let m): return validate(m)
        case .shutdown(let m): return validate(m)
        case .parameterNotice(let m): return validate(m)
        }
    }

    // MARK: Shared checks
    // Field names (e.g. "groups[3].responses[5].logprobs") are autoclosures: built only for a detail, i.e. when a
    // check fails. Built eagerly they were most of `validate`'s cost for a valid BoN batch (three interpolated
    // strings per response).

    func string(_ s: String, _ field: @autoclosure () -> String) -> Validation {
        s.utf8.count <= limits.maxStringBytes ? .valid
            : .invalid(.stringTooLong, detail: "\(field()): \(s.utf8.count) bytes > \(limits.maxStringBytes)")
    }

    /// A version field that must fit Int and not be ahead of what the receiver knows.
    func version(_ v: UInt64, _ field: @autoclosure () -> String, future: Bool = true) -> (Int?, Validation) {
        guard let i = Int(exactly: v) else {
            return (nil, .invalid(.versionOutOfRange, detail: "\(field()) \(v) does not fit Int"))
        }
        if future, let cur = currentVersion {
            let (limit, o) = cur.addingReportingOverflow(max(0, maxVersionAhead))
            if !o && i > limit {
                return (nil, .invalid(.versionFromFuture, detail: "\(field()) \(i) > current \(cur) + \(maxVersionAhead)"))
            }
        }
        return (i, .valid)
    }

    /// A rollout's behaviour version: fits, not from the future, not older than current − maxLag.
    func behaviourVersion(_ v: UInt64, _ field: @autoclosure () -> String) -> Validation {
        let (i, r) = version(v, field())
        guard let i else { return r }
        if let cur = currentVersion, let lag = maxLag {
            let (age, o) = cur.subtractingReportingOverflow(i)
            if o || age > lag {
                return .invalid(.versionTooStale, detail: "\(field()) \(i): lag \(o ? "overflow" : String(age)) > \(lag)")
            }
        }
        return .valid
    }

    func logProbs(_ xs: [Float], withinDefaultRange: Bool = false, _ field: @autoclosure () -> String) -> Validation {
        let lo = logProbFloor, hi = logProbCeiling
        // Decoded by FastCodec, which found every value finite and inside the default range: if [lo, hi] holds
        // that range (false for NaN bounds), every value passes the loop below.
        if withinDefaultRange, lo <= Self.defaultLogProbRange.lowerBound, hi >= Self.defaultLogProbRange.upperBound {
            return .valid
        }
        // Fast pass: one branch-free (vectorised) sweep; when every value passes, so does the loop below. Anything
        // else — a bad value, or NaN bounds — goes through the loop, which finds the first offender and its reason.
        if Self.allFinite(xs, within: lo, hi) { return .valid }
        for (i, x) in xs.enumerated() {
            if !x.isFinite { return .invalid(.logProbNonFinite, detail: "\(field())[\(i)] = \(x)") }
            if x < lo || x > hi { return .invalid(.logProbOutOfRange, detail: "\(field())[\(i)] = \(x) outside [\(lo), \(hi)]") }
        }
        return .valid
    }

    func reward(_ x: Double, _ field: @autoclosure () -> String) -> Validation {
        if !x.isFinite { return .invalid(.rewardNonFinite, detail: "\(field()) = \(x)") }
        if !rewardRange.contains(x) { return .invalid(.rewardOutOfRange, detail: "\(field()) = \(x) outside \(rewardRange)") }
        return .valid
    }

    func temperature(_ x: Double, _ field: @autoclosure () -> String) -> Validation {
        x.isFinite && temperatureRange.contains(x) ? .valid
            : .invalid(.temperatureOutOfRange, detail: "\(field()) = \(x) outside \(temperatureRange)")
    }

    func count(_ n: Int, max: Int, _ field: @autoclosure () -> String, emptyReason: DropReason?) -> Validation {
        if n == 0, let emptyReason { return .invalid(emptyReason, detail: "\(field()) is empty") }
        return n <= max ? .valid : .invalid(.tooManyItems, detail: "\(field()): \(n) > \(max)")
    }

    // MARK: Rollouts

    package func validate(_ b: WireBoNGroupBatch) -> Validation {
        if let rolloutKind, rolloutKind != .bonGroups {
            return .invalid(.jobKindMismatch, detail: "BoN groups sent to a \(rolloutKind.rawValue) run")
        }
        if case let r = string(b.task, "task"), !r.isValid { return r }
        if let task, b.task != task { return .invalid(.taskMismatch, detail: "task \"\(b.task.prefix(64))\", run's is \"\(task)\"") }
        if case let r = count(b.groups.count, max: limits.maxGroupsPerBatch, "groups", emptyReason: .emptyBatch), !r.isValid { return r }
        for (gi, g) in b.groups.enumerated() {
            let r = validate(g, index: gi)
            if !r.isValid { return r }
        }
        return .valid
    }

    package func validate(_ g: WireBoNGroup, index gi: Int = 0) -> Validation {
        func f() -> String { "groups[\(gi)]" }
        if g.responses.isEmpty { return .invalid(.emptyGroup, detail: "\(f()) has no responses") }
        if let n = groupSizes, !n.contains(g.responses.count) {
            return .invalid(.groupSizeMismatch, detail: "\(f()) has \(g.responses.count) responses, expected \(n)")
        }
        if g.promptTokens.isEmpty { return .invalid(.emptyPrompt, detail: "\(f()) has an empty prompt") }
        if let itemCount, Int(exactly: g.itemID).map({ $0 >= itemCount }) ?? true {
            return .invalid(.itemOutOfRange, detail: "\(f()).item_id \(g.itemID) outside 0..<\(itemCount)")
        }
        if case let r = behaviourVersion(g.behaviourVersion, "\(f()).behaviour_version"), !r.isValid { return r }
        if case let r = temperature(Double(g.temperature), "\(f()).temperature"), !r.isValid { return r }
        if let ctx = contextLength, g.promptTokens.count > ctx {
            return .invalid(.sequenceTooLong, detail: "\(f()): prompt \(g.promptTokens.count) > context \(ctx)")
        }
        if case let r = tokens(g.promptTokens, idBits: g.decodedPromptIDBits, "\(f()).prompt"), !r.isValid { return r }
        for (ri, y) in g.responses.enumerated() {
            func rf() -> String { "\(f()).responses[\(ri)]" }
            if y.tokens.isEmpty { return .invalid(.emptyResponse, detail: "\(rf()) has no tokens") }
            if let m = maxNewTokens, y.tokens.count > m {
                return .invalid(.responseTooLong, detail: "\(rf()): \(y.tokens.count) tokens > maxNewTokens \(m)")
            }
            if let ctx = contextLength, g.promptTokens.count + y.tokens.count > ctx {
                return .invalid(.sequenceTooLong,
                                detail: "\(rf()): prompt \(g.promptTokens.count) + response \(y.tokens.count) > context \(ctx)")
            }
            if y.tokenLogProbs.count != y.tokens.count {
                return .invalid(.invalidField, detail: "\(rf()): \(y.tokens.count) tokens, \(y.tokenLogProbs.count) log-probs")
            }
            // (a summary FastCodec computed while decoding spares the passes over the arrays in the valid case)
            let summary = y.decodedSummary
            if case let r = tokens(y.tokens, idBits: summary?.tokenIDBits, rf()), !r.isValid { return r }
            if case let r = logProbs(y.tokenLogProbs, withinDefaultRange: summary?.logProbsWithinDefaultRange ?? false,
                                     "\(rf()).logprobs"), !r.isValid { return r }
            if !y.verifierScore.isFinite { return .invalid(.scoreNonFinite, detail: "\(rf()).verifier_score = \(y.verifierScore)") }
            if !scoreRange.contains(y.verifierScore) {
                return .invalid(.scoreOutOfRange, detail: "\(rf()).verifier_score = \(y.verifierScore) outside \(scoreRange)")
            }
            if case let r = reward(y.reward, "\(rf()).reward"), !r.isValid { return r }
        }
        return .valid
    }

    /// `idBits`: the OR of the ids, when the decoder computed it (ids off the wire are uint32: none is negative, and
    /// each is ≤ their OR).
    func tokens(_ ts: [Int], idBits: UInt32? = nil, _ field: @autoclosure () -> String) -> Validation {
        let v = vocabSize ?? Int.max
        if let idBits, Int(idBits) < v { return .valid }
        // Fast pass: all ids in 0..<v (read as unsigned, a negative id is huge). The OR of the ids bounds each of
        // them and vectorises; if it is not below v, the exact maximum decides; the loop below (lowest and highest
        // id, for the detail) runs only for a bad prompt or response, or a vocabulary size ≤ 0.
        // (with the decoder's OR already not below v, the OR pass would fail again: straight to the maximum)
        if v > 0, Self.allBelow(ts, UInt(v), orIsNotBelow: idBits != nil) { return .valid }
        var lo = Int.max, hi = Int.min
        for t in ts { lo = Swift.min(lo, t); hi = Swift.max(hi, t) }
        if !ts.isEmpty && (lo < 0 || hi >= v) {
            return .invalid(.tokenOutOfVocabulary, detail: "\(field()): token ids \(lo)...\(hi), vocabulary \(v)")
        }
        return .valid
    }

    /// Every x finite and in [lo, hi] (false for NaN bounds: the caller then checks value by value). Eight lanes
    /// at a time with explicit SIMD compares (a scalar loop here stays branchy: ~5× slower at 1000 values).
    static func allFinite(_ xs: [Float], within lo: Float, _ hi: Float) -> Bool {
        xs.withUnsafeBufferPointer { b in
            let n = b.count
            guard n > 0 else { return true }
            let raw = UnsafeRawPointer(b.baseAddress!)
            let lo8 = SIMD8<Float>(repeating: lo), hi8 = SIMD8<Float>(repeating: hi)
            let inf8 = SIMD8<Float>(repeating: .infinity)
            var ok = SIMDMask<SIMD8<Int32>>(repeating: true)
            var i = 0
            while i + 8 <= n {
                let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self)
                ok = ok .& (v .>= lo8) .& (v .<= hi8) .& (v .< inf8) .& (v .> -inf8)  // NaN fails every compare
                i += 8
            }
            var tail = true
            while i < n { let x = b[i]; tail = tail && x.isFinite && x >= lo && x <= hi; i += 1 }
            return all(ok) && tail
        }
    }

    /// Every id, read as unsigned, below `v`. `orIsNotBelow`: the caller knows the OR of the ids is ≥ v.
    static func allBelow(_ ts: [Int], _ v: UInt, orIsNotBelow: Bool = false) -> Bool {
        ts.withUnsafeBufferPointer { b in
            if !orIsNotBelow {
                var any: UInt = 0
                for t in b { any |= UInt(bitPattern: t) }
                if any < v { return true }
            }
            var top: UInt = 0
            for t in b { top = Swift.max(top, UInt(bitPattern: t)) }
            return top < v
        }
    }

    package func validate(_ b: WireEpisodeBatch) -> Validation {
        if let rolloutKind, rolloutKind != .episodes {
            return .invalid(.jobKindMismatch, detail: "episodes sent to a \(rolloutKind.rawValue) run")
        }
        if case let r = string(b.env, "env"), !r.isValid { return r }
        if let env, b.env != env { return .invalid(.envMismatch, detail: "env \"\(b.env.prefix(64))\", run's is \"\(env)\"") }
        let t = b.actions.count
        if case let r = count(t, max: limits.maxStepsPerBatch, "steps", emptyReason: .emptyBatch), !r.isValid { return r }
        // The decoder checks these; a locally built value may not have gone through it.
        let (td, o) = t.multipliedReportingOverflow(by: b.observationDim)
        guard b.observationDim >= 0, !o, b.observations.count == td, b.rewards.count == t, b.dones.count == t,
              b.truncations.count == t, b.behaviourLogProbs.count == t, b.behaviourVersions.count == t,
              b.bootstrapObservation.isEmpty || b.bootstrapObservation.count == b.observationDim else {
            return .invalid(.invalidField, detail: "per-step arrays disagree with T = \(t), D = \(b.observationDim)")
        }
        if let i = (0..<t).first(where: { b.dones[$0] && b.truncations[$0] }) {
            return .invalid(.episodeStructure, detail: "step \(i) is both done and truncated")
        }
        if let i = (0..<(t - 1)).first(where: { b.truncations[$0] }) {
            return .invalid(.episodeStructure, detail: "truncation at step \(i) of \(t); a chunk ends at a truncation")
        }
        if b.dones[t - 1] != b.bootstrapObservation.isEmpty {
            return .invalid(.episodeStructure, detail: "bootstrap observation \(b.bootstrapObservation.count) floats after a \(b.dones[t - 1] ? "terminal" : "non-terminal") last step")
        }
        if let d = observationDim, b.observationDim != d {
            return .invalid(.observationSizeMismatch, detail: "D = \(b.observationDim), env's is \(d)")
        }
        let bound = observationBound
        for (name, xs) in [("observations", b.observations), ("bootstrap_observation", b.bootstrapObservation)] {
            for (i, x) in xs.enumerated() where !(x.isFinite && abs(x) <= bound) {
                return .invalid(.observationNonFinite, detail: "\(name)[\(i)] = \(x)")
            }
        }
        let na = actionCount.map { Int32(clamping: $0) } ?? Int32.max
        for (i, a) in b.actions.enumerated() where a < 0 || a >= na {
            return .invalid(.actionOutOfRange, detail: "actions[\(i)] = \(a), action count \(actionCount.map(String.init) ?? "?")")
        }
        for (i, x) in b.rewards.enumerated() {
            if case let r = reward(Double(x), "rewards[\(i)]"), !r.isValid { return r }
        }
        if case let r = logProbs(b.behaviourLogProbs, "behaviour_logprobs"), !r.isValid { return r }
        // Oldest and newest decide staleness and the future check: two checks instead of T.
        if let lo = b.behaviourVersions.min(), let hi = b.behaviourVersions.max() {
            if case let r = behaviourVersion(hi, "behaviour_versions (newest)"), !r.isValid { return r }
            if case let r = behaviourVersion(lo, "behaviour_versions (oldest)"), !r.isValid { return r }
        }
        return .valid
    }

    // MARK: Parameters, evaluation, metrics, control

    /// Parameters announced by the learner. A version equal to `currentVersion` is valid (a re-broadcast; the caller
    /// may skip installing it); an older one is `.versionReplayed`.
    package func validate(_ p: WireParameters) -> Validation {
        guard let v = Int(exactly: p.version) else {
            return .invalid(.versionOutOfRange, detail: "parameters version \(p.version) does not fit Int")
        }
        if let cur = currentVersion, v < cur {
            return .invalid(.versionReplayed, detail: "parameters version \(v) < held \(cur)")
        }
        if let n = parameterCount, p.values.count != n {
            return .invalid(.parameterCountMismatch, detail: "\(p.values.count) parameters, model has \(n)")
        }
        if let h = layoutHash, p.layoutHash != h {
            return .invalid(.layoutMismatch, detail: "layout hash \(p.layoutHash), model's is \(h)")
        }
        let bound = parameterBound
        // One pass, no early exit in the common case: the largest |x| as a bit pattern (vectorised; any non-finite
        // value makes it ≥ infinity's bits). FastCodec computes it while decoding: then no pass at all here.
        let worstBits = p.largestMagnitudeBits ?? WireParameters.largestMagnitudeBits(p.values)
        let finite = worstBits < Float.infinity.bitPattern
        let worst = Float(bitPattern: worstBits)
        if !finite || !(worst <= bound) {
            let i = p.values.firstIndex { !($0.isFinite && abs($0) <= bound) } ?? -1
            return .invalid(.parameterNonFinite, detail: "parameter[\(i)] = \(i >= 0 ? p.values[i] : .nan), bound \(bound)")
        }
        return .valid
    }

    package func validate(_ r: WireEvalRequest) -> Validation {
        if case let (_, v) = version(r.version, "eval request version", future: false), !v.isValid { return v }
        for (s, f) in [(r.task, "task"), (r.split, "split")] {
            if case let v = string(s, f), !v.isValid { return v }
        }
        if let task, r.task != task { return .invalid(.taskMismatch, detail: "eval task \"\(r.task.prefix(64))\", run's is \"\(task)\"") }
        if case let v = count(r.nList.count, max: limits.maxEvalRows, "n_list", emptyReason: .evalValueOutOfRange), !v.isValid { return v }
        if case let v = count(r.temperatures.count, max: limits.maxEvalRows, "temperatures", emptyReason: .evalValueOutOfRange), !v.isValid { return v }
        for n in r.nList where n < 1 || n > limits.maxEvalN {
            return .invalid(.evalValueOutOfRange, detail: "N = \(n) outside 1...\(limits.maxEvalN)")
        }
        for (i, t) in r.temperatures.enumerated() {
            if case let v = temperature(t, "temperatures[\(i)]"), !v.isValid { return v }
        }
        if r.numPrompts < 0 || r.numPrompts > limits.maxEvalPrompts {
            return .invalid(.evalValueOutOfRange, detail: "num_prompts \(r.numPrompts) > \(limits.maxEvalPrompts)")
        }
        return .valid
    }

    package func validate(_ r: WireEvalReport) -> Validation {
        if case let (_, v) = version(r.version, "eval report version"), !v.isValid { return v }
        for (s, f) in [(r.task, "task"), (r.split, "split")] {
            if case let v = string(s, f), !v.isValid { return v }
        }
        if let task, r.task != task { return .invalid(.taskMismatch, detail: "eval task \"\(r.task.prefix(64))\", run's is \"\(task)\"") }
        if let expected = expectedEvalRequests, !expected.contains(r.requestID) {
            return .invalid(.unexpectedEvalReport, detail: "request id \(r.requestID) was not asked for")
        }
        if case let v = count(r.rows.count, max: limits.maxEvalRows, "rows", emptyReason: .emptyBatch), !v.isValid { return v }
        for (i, row) in r.rows.enumerated() {
            if row.n < 1 || row.n > limits.maxEvalN {
                return .invalid(.evalValueOutOfRange, detail: "rows[\(i)].n = \(row.n)")
            }
            if case let v = temperature(row.temperature, "rows[\(i)].temperature"), !v.isValid { return v }
            for (x, f) in [(row.passAtN, "pass_at_n"), (row.boN, "bo_n")] where !(x.isFinite && x >= 0 && x <= 1) {
                return .invalid(.evalValueOutOfRange, detail: "rows[\(i)].\(f) = \(x) outside [0, 1]")
            }
            if case let v = reward(row.meanReward, "rows[\(i)].mean_reward"), !v.isValid { return v }
            if row.numPrompts < 0 || row.numPrompts > limits.maxEvalPrompts {
                return .invalid(.evalValueOutOfRange, detail: "rows[\(i)].num_prompts = \(row.numPrompts)")
            }
        }
        return .valid
    }

    /// Metrics. Versions are only checked to fit Int (a resumed learner may legitimately report an older version).
    package func validate(_ m: WireMetrics) -> Validation {
        if case let (_, v) = version(m.version, "metrics version", future: false), !v.isValid { return v }
        if Int(exactly: m.step) == nil { return .invalid(.versionOutOfRange, detail: "metrics step \(m.step) does not fit Int") }
        if case let v = count(m.values.count, max: limits.maxMetricKeys, "metric keys", emptyReason: nil), !v.isValid { return v }
        for (k, x) in m.values {
            if k.isEmpty { return .invalid(.invalidField, detail: "empty metric key") }
            if case let v = string(k, "metric key"), !v.isValid { return v }
            if !x.isFinite { return .invalid(.metricNonFinite, detail: "\(k.prefix(64)) = \(x)") }
        }
        return .valid
    }

    package func validate(_ h: WireHello) -> Validation {
        if h.role == .unspecified || h.role == .coordinator {
            return .invalid(.controlValueOutOfRange, detail: "hello from role \(h.role)")
        }
        if case let v = string(h.host, "host"), !v.isValid { return v }
        if case let v = count(h.capabilities.count, max: limits.maxCapabilities, "capabilities", emptyReason: nil), !v.isValid { return v }
        for c in h.capabilities {
            if case let v = string(c, "capability"), !v.isValid { return v }
        }
        return .valid
    }

    package func validate(_ a: WireHelloAck) -> Validation {
        if case let (_, v) = version(a.currentVersion, "hello_ack current_version", future: false), !v.isValid { return v }
        if case let v = string(a.reason, "reason"), !v.isValid { return v }
        if a.heartbeatIntervalMs < 1 || a.heartbeatIntervalMs > 3_600_000 || a.liveness < 1 || a.liveness > 1000 {
            return .invalid(.controlValueOutOfRange,
                            detail: "heartbeat interval \(a.heartbeatIntervalMs) ms, liveness \(a.liveness)")
        }
        return .valid
    }

    package func validate(_ h: WireHeartbeat) -> Validation {
        if case let (_, v) = version(h.policyVersion, "heartbeat policy_version"), !v.isValid { return v }
        return string(h.state, "state")
    }

    package func validate(_ s: WireShutdown) -> Validation { string(s.reason, "reason") }

    /// A same-host parameter notice: the version, size and layout checks of `validate(_: WireParameters)` (the
    /// values themselves are checked while they are copied out of shared memory, ParameterSlotRing.read).
    package func validate(_ n: WireParameterNotice) -> Validation {
        guard let v = Int(exactly: n.version) else {
            return .invalid(.versionOutOfRange, detail: "parameter notice version \(n.version) does not fit Int")
        }
        if let cur = currentVersion, v < cur {
            return .invalid(.versionReplayed, detail: "parameter notice version \(v) < held \(cur)")
        }
        if let count = parameterCount, n.byteLength != UInt64(count) * 4 {
            return .invalid(.parameterCountMismatch, detail: "parameter notice of \(n.byteLength) bytes, model has \(count) floats")
        }
        if let h = layoutHash, n.layoutHash != h {
            return .invalid(.layoutMismatch, detail: "layout hash \(n.layoutHash), model's is \(h)")
        }
        if case let r = string(n.fileName, "file_name"), !r.isValid { return r }
        return string(n.hostIdentity, "host_identity")
    }
}

/// Per-sender sequence numbers (replay detection), bounded: at most `capacity` senders are remembered; the least
/// recently seen is forgotten first. A sender's counter restarts when it says hello again (a restarted process).
package struct SequenceTable: Sendable {
    package let capacity: Int
    private var last: [String: (seq: UInt64, tick: UInt64)] = [:]
    private var tick: UInt64 = 0

    package init(capacity: Int = 4096) {
        precondition(capacity > 0, "SequenceTable capacity must be positive, got \(capacity)")
        self.capacity = capacity
    }

    package var count: Int { last.count }

    /// `.valid` if `sequence` is above the last one from `peer` (and records it); `.sequenceReplayed` otherwise.
    /// Pass `restart: true` for a Hello (a restarted sender counts from 1 again).
    package mutating func check(peer: String, sequence: UInt64, restart: Bool = false) -> Validation {
        tick &+= 1
        if sequence == 0 { return .invalid(.sequenceReplayed, detail: "sequence 0 (senders count from 1)") }
        if !restart, let prev = last[peer], sequence <= prev.seq {
            return .invalid(.sequenceReplayed, detail: "sequence \(sequence) ≤ last \(prev.seq)")
        }
        if last[peer] == nil, last.count >= capacity, let oldest = last.min(by: { $0.value.tick < $1.value.tick }) {
            last.removeValue(forKey: oldest.key)
        }
        last[peer] = (sequence, tick)
        return .valid
    }

    package mutating func forget(peer: String) { last.removeValue(forKey: peer) }
}
