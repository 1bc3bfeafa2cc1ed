// How learner and actors notice a lost coordinator (a pure state machine, tested without sockets): the coordinator
// sends every registered peer a heartbeat each interval; a peer that hears nothing from it for one liveness window
// says so once, keeps training (nothing it does needs the coordinator) and keeps saying hello until it answers;
// when it does, the peer says how long it was gone.

package struct CoordinatorWatch: Sendable, Equatable {
    package enum Event: Equatable, Sendable {
        /// Silent for `silentMs` (> the window): announce, keep training, re-register.
        case lost(silentMs: Int64)
        /// Heard again after `downMs`.
        case back(downMs: Int64)
    }

    package let windowMs: Int64
    package private(set) var lastContact: Int64
    package private(set) var lostSince: Int64?

    package init(windowMs: Int, now: Int64) {
        precondition(windowMs > 0, "CoordinatorWatch: window must be > 0 ms, got \(windowMs)")
        self.windowMs = Int64(windowMs); self.lastContact = now
    }

    package var isLost: Bool { lostSince != nil }

    /// Anything arrived from the coordinator.
    package mutating func contact(now: Int64) -> Event? {
        lastContact = now
        guard let since = lostSince else { return nil }
        lostSince = nil
        return .back(downMs: now - since)
    }

    /// Called periodically; reports the loss once.
    package mutating func tick(now: Int64) -> Event? {
        guard lostSince == nil, now - lastContact > windowMs else { return nil }
        lostSince = lastContact
        return .lost(silentMs: now - lastContact)
    }
}
