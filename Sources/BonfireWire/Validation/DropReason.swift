// Why a received message was dropped, how many were dropped per reason (`DropCounter`, mergeable, exported as
// metrics), and a rate-limited log line per reason (`DropLog`). Framing drops (`WireDropReason`, decided by
// `WireDecoder`) and meaning drops (decided by `ValidationContext.validate`) share one enum and one counter, so a
// role reports every drop under `wire/dropped/<reason>` and `wire/dropped_total`.

/// Why an incoming message was dropped. `rawValue` is the stable metric-key suffix: `wire/dropped/<rawValue>`.
package enum DropReason: String, CaseIterable, Sendable, Hashable, Codable, CustomStringConvertible {
    // MARK: Framing (mirrors WireDropReason, decided before any field is looked at)
    /// Larger than the receiver's `maxMessageBytes`.
    case oversized
    /// Not a protobuf `Envelope` (truncated, bad varint, wrong wire type, …).
    case malformed
    /// `protocol_version` differs from this build's.
    case wrongProtocolVersion = "wrong_protocol_version"
    /// `run_id` is not this run.
    case unknownRunID = "unknown_run_id"
    /// The envelope carries no payload (or one this build does not know).
    case missingPayload = "missing_payload"
    /// Parsed, but lengths disagree or an enum value is unknown.
    case invalidField = "invalid_field"

    // MARK: Sender
    /// The envelope's `sender_role` may not send this message type to this receiver (e.g. an actor sending
    /// parameters, anyone but the learner sending learner metrics).
    case senderRoleNotAllowed = "sender_role_not_allowed"
    /// The receiver requires a registered sender for this message type and the sender is not registered.
    case senderNotRegistered = "sender_not_registered"
    /// The envelope's role/id disagrees with the sender's registration (or a Hello's role/id with its envelope).
    case senderIdentityMismatch = "sender_identity_mismatch"
    /// The envelope's sequence number is 0 or not above the last one seen from this sender (a replay).
    case sequenceReplayed = "sequence_replayed"

    // MARK: Versions
    /// A version (or step) does not fit this platform's `Int` (e.g. 2⁶⁴−1).
    case versionOutOfRange = "version_out_of_range"
    /// A version newer than the newest one the receiver knows of.
    case versionFromFuture = "version_from_future"
    /// A behaviour version older than `currentVersion − maxLag`.
    case versionTooStale = "version_too_stale"
    /// Parameters older than the ones the receiver already holds.
    case versionReplayed = "version_replayed"

    // MARK: Run consistency
    /// The BoN batch's / eval message's task is not the run's task.
    case taskMismatch = "task_mismatch"
    /// The episode batch's environment is not the run's environment.
    case envMismatch = "env_mismatch"
    /// A rollout kind this run does not train on (BoN groups to an episode learner, or the reverse).
    case jobKindMismatch = "job_kind_mismatch"
    /// An eval report whose request id the receiver did not ask for (or already received).
    case unexpectedEvalReport = "unexpected_eval_report"
    /// A BoN group's item id is not an item of the run's train split.
    case itemOutOfRange = "item_out_of_range"

    // MARK: Sizes and counts
    /// A batch with no groups / no steps / no rows, where at least one is required.
    case emptyBatch = "empty_batch"
    /// A BoN group with no responses.
    case emptyGroup = "empty_group"
    /// A BoN group with an empty prompt.
    case emptyPrompt = "empty_prompt"
    /// A response with no tokens.
    case emptyResponse = "empty_response"
    /// The number of responses in a group is outside the configured group size bounds.
    case groupSizeMismatch = "group_size_mismatch"
    /// An array (groups, steps, rows, metric keys, capabilities, eval N list) longer than the receiver's limit.
    case tooManyItems = "too_many_items"
    /// A string field (task, env, host, state, key, reason) longer than the receiver's limit.
    case stringTooLong = "string_too_long"
    /// A response longer than `maxNewTokens`.
    case responseTooLong = "response_too_long"
    /// prompt + response longer than the model's context.
    case sequenceTooLong = "sequence_too_long"
    /// A token id ≥ the vocabulary size (ids are unsigned on the wire; negative cannot occur after decoding but is
    /// counted here too).
    case tokenOutOfVocabulary = "token_out_of_vocabulary"
    /// Observation size differs from the environment's.
    case observationSizeMismatch = "observation_size_mismatch"
    /// Parameter count (or layout hash) differs from the model's.
    case parameterCountMismatch = "parameter_count_mismatch"
    case layoutMismatch = "layout_mismatch"

    // MARK: Values
    /// A log-prob that is NaN or ±∞.
    case logProbNonFinite = "logprob_non_finite"
    /// A log-prob > ~0 (not a log-probability) or below the floor (an absurd importance weight).
    case logProbOutOfRange = "logprob_out_of_range"
    /// A reward R (or per-step env reward, or eval mean reward) that is NaN or ±∞.
    case rewardNonFinite = "reward_non_finite"
    /// A finite reward outside the task's reward range.
    case rewardOutOfRange = "reward_out_of_range"
    /// A verifier score r that is NaN or ±∞.
    case scoreNonFinite = "score_non_finite"
    /// A finite verifier score outside the configured range.
    case scoreOutOfRange = "score_out_of_range"
    /// A sampling/eval temperature that is non-finite or outside the configured range.
    case temperatureOutOfRange = "temperature_out_of_range"
    /// An observation value that is non-finite or absurdly large.
    case observationNonFinite = "observation_non_finite"
    /// Episode structure broken: a step both done and truncated, a truncation before the last step, or a bootstrap
    /// observation present after a terminal last step (or missing after a non-terminal one).
    case episodeStructure = "episode_structure"
    /// An action outside 0..<actionCount.
    case actionOutOfRange = "action_out_of_range"
    /// A parameter that is NaN or ±∞ (or beyond the configured magnitude bound).
    case parameterNonFinite = "parameter_non_finite"
    /// A metrics value that is NaN or ±∞.
    case metricNonFinite = "metric_non_finite"
    /// An eval row with pass@N / Bo-N outside [0, 1], N outside 1...maxEvalN, or an N list entry out of range.
    case evalValueOutOfRange = "eval_value_out_of_range"
    /// A control value out of range (HelloAck heartbeat interval or liveness 0 or absurd, Hello role unspecified).
    case controlValueOutOfRange = "control_value_out_of_range"

    // MARK: Receiver-side (decided by the role, not by the message alone)
    /// The learner's bounded queue of waiting rollouts was full; the oldest were dropped.
    case bufferFull = "buffer_full"
    /// A CURVE client key that is not bound to the role the envelope claims (ZAP `User-Id` check).
    case keyRoleMismatch = "key_role_mismatch"

    /// `wire/dropped/<reason>`.
    package var metricKey: String { "wire/dropped/" + rawValue }
    package static let totalMetricKey = "wire/dropped"

    package var description: String { rawValue }

    /// The same reason for a framing drop decided by `WireDecoder`.
    package init(_ wire: WireDropReason) {
        switch wire {
        case .oversized: self = .oversized
        case .malformed: self = .malformed
        case .wrongProtocolVersion: self = .wrongProtocolVersion
        case .unknownRunID: self = .unknownRunID
        case .missingPayload: self = .missingPayload
        case .invalidField: self = .invalidField
        }
    }
}

/// The outcome of validating one message.
package enum Validation: Equatable, Sendable {
    case valid
    case invalid(DropReason, detail: String)

    package static func invalid(_ r: DropReason) -> Validation { .invalid(r, detail: "") }

    package var isValid: Bool { if case .valid = self { true } else { false } }
    package var reason: DropReason? { if case .invalid(let r, _) = self { r } else { nil } }
}

/// Drops per reason. A value type owned by one thread; merge counters of several sockets/threads with `merge`.
package struct DropCounter: Equatable, Sendable, Codable {
    package private(set) var counts: [DropReason: Int] = [:]

    package init() {}

    package var total: Int { counts.values.reduce(0, +) }

    package subscript(reason: DropReason) -> Int { counts[reason, default: 0] }

    /// Counts one drop and returns the running count for that reason.
    @discardableResult
    package mutating func count(_ reason: DropReason, by n: Int = 1) -> Int {
        let c = counts[reason, default: 0] &+ n
        counts[reason] = c
        return c
    }

    /// Counts the outcome if it is a drop; returns whether the message is valid.
    @discardableResult
    package mutating func record(_ v: Validation) -> Bool {
        guard case .invalid(let r, _) = v else { return true }
        count(r)
        return false
    }

    /// Adds the framing drops a `WireDecoder` counted.
    package mutating func merge(_ decoderDrops: [WireDropReason: Int]) {
        for (r, n) in decoderDrops { count(DropReason(r), by: n) }
    }

    package mutating func merge(_ other: DropCounter) {
        for (r, n) in other.counts { count(r, by: n) }
    }

    package func merged(_ other: DropCounter) -> DropCounter { var c = self; c.merge(other); return c }

    /// `wire/dropped/<reason>` for every reason seen (non-zero) and `wire/dropped_total`, for a Metrics message.
    package var metrics: [String: Double] {
        var m: [String: Double] = [DropReason.totalMetricKey: Double(total)]
        for (r, n) in counts where n > 0 { m[r.metricKey] = Double(n) }
        return m
    }

    /// Reads back the counts from a metrics map (e.g. the last metrics of each role in `bonfire status`); unknown
    /// keys and non-finite or negative values are ignored.
    package init(metrics: [String: Double]) {
        for r in DropReason.allCases {
            if let v = metrics[r.metricKey], v.isFinite, v >= 0, let n = Int(exactly: v.rounded()) { counts[r] = n }
        }
    }

    /// "malformed 3, token_out_of_vocabulary 2" (largest first), or "none".
    package var summary: String {
        let s = counts.filter { $0.value > 0 }.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.rawValue < $1.key.rawValue }
        return s.isEmpty ? "none" : s.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
    }
}

/// Rate-limited drop logging: at most one line per reason per `period`, naming the peer, the detail and the running
/// count (lines suppressed in between are still counted). Pure: the caller passes the time and prints the line.
///
///     if let line = dropLog.note(reason, peer: "actor-3", detail: d, now: .now) { roleLog(line) }
package struct DropLog: Sendable {
    package var period: Duration
    package private(set) var counter = DropCounter()
    private var lastLogged: [DropReason: ContinuousClock.Instant] = [:]
    private var suppressed: [DropReason: Int] = [:]

    package init(period: Duration = .seconds(10)) {
        precondition(period >= .zero, "DropLog period must be ≥ 0, got \(period)")
        self.period = period
    }

    /// Counts the drop; returns a log line if none was returned for this reason within `period`.
    package mutating func note(_ reason: DropReason, peer: String, detail: String = "",
                               now: ContinuousClock.Instant = .now) -> String? {
        let total = counter.count(reason)
        if let last = lastLogged[reason], now - last < period {
            suppressed[reason, default: 0] += 1
            return nil
        }
        lastLogged[reason] = now
        let hidden = suppressed.removeValue(forKey: reason) ?? 0
        var line = "wire: dropped message from \(DropLog.clean(peer, 64)) (\(reason.rawValue), \(total) so far"
        if hidden > 0 { line += ", \(hidden) not logged since the last line" }
        line += ")"
        if !detail.isEmpty { line += ": " + DropLog.clean(detail, 200) }
        return line
    }

    /// Notes an invalid outcome (returns nil for `.valid`).
    /// Counts drops without a log line (e.g. a batch of buffer evictions already reported by one line).
    package mutating func countSilently(_ reason: DropReason, by n: Int) { counter.count(reason, by: n) }

    package mutating func note(_ v: Validation, peer: String, now: ContinuousClock.Instant = .now) -> String? {
        guard case .invalid(let r, let d) = v else { return nil }
        return note(r, peer: peer, detail: d, now: now)
    }

    /// Peer-supplied text, shortened and with control characters replaced, so a hostile string cannot forge lines.
    static func clean(_ s: String, _ max: Int) -> String {
        var out = ""
        for (i, u) in s.unicodeScalars.enumerated() {
            if i >= max { out += "…"; break }
            out.unicodeScalars.append(u.value < 0x20 || u.value == 0x7F ? "?" : u)
        }
        return out
    }
}
