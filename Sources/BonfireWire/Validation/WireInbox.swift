// One receiving socket's admission step: framing result (from `ZMQSocket.receiveEnvelope`) → replay check →
// meaning check (`ValidationContext.validate`) → accept, or drop counted by reason with a rate-limited log line.
// Owned by the thread that owns the socket; its `drops` go into the role's metrics (`drops.metrics`).
//
//     var inbox = WireInbox()                      // one per receiving socket; checkSequences: true on the coordinator
//     while let got = try pull.receiveEnvelope(&decoder, timeout: .zero) {
//         guard let env = inbox.admit(got.envelope, context: ctx, log: { roleLog($0) }) else { continue }
//         use(env)                                                  // meaning already checked
//     }
//     metrics.merge(inbox.drops.metrics) { $1 }

package struct WireInbox: Sendable {
    package private(set) var log: DropLog
    package private(set) var sequences: SequenceTable
    /// Check per-sender sequence numbers (replays). Only turn it on where the sender's Hello arrives through this
    /// same inbox (the coordinator's ROUTER): a restarted process counts from 1 again and the envelope carries no
    /// incarnation, so an inbox that never sees the Hello (the learner's PULL) would drop a restarted actor's
    /// rollouts as replays until its counter passes the old one. Elsewhere call `senderRestarted` when the
    /// coordinator/liveness reports a restart, or leave it off. (Each socket's inbox sees an increasing subsequence
    /// of one sender's counter, which passes.)
    package var checkSequences: Bool
    package private(set) var accepted = 0

    package init(logPeriod: Duration = .seconds(10), checkSequences: Bool = false, maxPeers: Int = 4096) {
        log = DropLog(period: logPeriod)
        sequences = SequenceTable(capacity: maxPeers)
        self.checkSequences = checkSequences
    }

    /// Forget a sender's last sequence number (it restarted and counts from 1 again).
    package mutating func senderRestarted(role: WireRole, id: UInt32) { sequences.forget(peer: "\(role)-\(id)") }

    /// Every drop this inbox saw (framing and meaning), per reason.
    package var drops: DropCounter { log.counter }

    /// A drop decided after admission (the receiver's own queue, its CURVE handler, or a job-specific check of an
    /// admitted message): counted under `reason`, logged rate-limited like every other drop.
    package mutating func reject(_ reason: DropReason, count n: Int = 1, peer: String, detail: String = "",
                                 now: ContinuousClock.Instant = .now, log emit: (String) -> Void = { _ in }) {
        guard n > 0 else { return }
        if let line = log.note(reason, peer: peer, detail: detail, now: now) { emit(line) }
        if n > 1 { log.countSilently(reason, by: n - 1) }
    }

    /// Returns the envelope if it is well-formed and valid in `context`; otherwise counts the drop and passes a log
    /// line (at most one per reason per period) to `log`. `peer` names the sender for framing failures (e.g. the
    /// ROUTER identity); decoded envelopes are named "<role>-<id>".
    package mutating func admit(_ frame: Result<WireEnvelope, WireError>, context: ValidationContext, peer: String? = nil,
                                now: ContinuousClock.Instant = .now, log emit: (String) -> Void = { _ in }) -> WireEnvelope? {
        let env: WireEnvelope
        switch frame {
        case .failure(let e):
            if let line = log.note(DropReason(e.reason), peer: peer ?? "unknown peer", detail: e.detail, now: now) { emit(line) }
            return nil
        case .success(let e): env = e
        }
        let name = peer ?? "\(env.senderRole)-\(env.senderID)"
        var verdict = context.validate(env)
        if verdict.isValid, checkSequences {
            var isHello = false
            if case .hello = env.payload { isHello = true }
            verdict = sequences.check(peer: "\(env.senderRole)-\(env.senderID)", sequence: env.sequence, restart: isHello)
        }
        if case .invalid(let r, let d) = verdict {
            if let line = log.note(r, peer: name, detail: d, now: now) { emit(line) }
            return nil
        }
        accepted += 1
        return env
    }
}
