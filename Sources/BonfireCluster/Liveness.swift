// Peer liveness as a pure state machine (zguide "Paranoid Pirate"): the coordinator registers peers on hello,
// refreshes them on every heartbeat (or any message), and `tick(now:)` declares dead every peer silent for the
// liveness window = heartbeatInterval × livenessCount. A peer that registers again after being declared dead
// produces `.rejoined`. No sockets, no clocks: the caller passes `now` (milliseconds, monotonic) so tests can
// drive time by hand. `monotonicMillis()` gives the real clock.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

/// Milliseconds of CLOCK_MONOTONIC: the time base of the pure state machines (`now:` parameters).
package func monotonicMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// The role a registered peer plays.
package enum PeerRole: String, Sendable, Codable, CaseIterable {
    case coordinator, learner, actor
}

/// What the liveness tracker tells the caller to log or act on.
package enum LivenessEvent: Equatable, Sendable {
    /// First registration of this peer id.
    case joined(peer: String, role: PeerRole)
    /// Registration of a peer previously declared dead (or that left): a restarted role.
    case rejoined(peer: String, role: PeerRole, downForMs: Int64)
    /// Registration while the old incarnation is still considered alive (a restart faster than the window).
    case restarted(peer: String, role: PeerRole)
    /// Silent for at least the liveness window.
    case dead(peer: String, role: PeerRole, silentForMs: Int64)
    /// Said goodbye (graceful shutdown).
    case left(peer: String, role: PeerRole)
    /// A heartbeat from an unknown or dead peer: ask it to register again (send it a hello request).
    case mustRegister(peer: String)
}

package struct LivenessTracker: Sendable {
    package enum State: Equatable, Sendable { case alive, dead, left }

    package struct Peer: Equatable, Sendable {
        package var id: String
        package var role: PeerRole
        package var state: State
        /// Last registration time (ms).
        package var registeredAt: Int64
        /// Last heartbeat or registration (ms).
        package var lastSeen: Int64
        /// When it was declared dead or left (ms); nil while alive.
        package var downSince: Int64?
        /// Registrations so far (1 + restarts).
        package var registrations: Int
        /// Times declared dead.
        package var deaths: Int
    }

    /// Heartbeat period (ms).
    package let heartbeatIntervalMs: Int64
    /// Missed intervals before a peer is dead.
    package let livenessCount: Int
    /// A peer silent for at least this long is dead: heartbeatIntervalMs × livenessCount.
    package var windowMs: Int64 { heartbeatIntervalMs * Int64(livenessCount) }

    package private(set) var peers: [String: Peer] = [:]

    package init(heartbeatIntervalMs: Int, livenessCount: Int) {
        precondition(heartbeatIntervalMs > 0 && livenessCount > 0,
                     "LivenessTracker: interval \(heartbeatIntervalMs) ms and count \(livenessCount) must be > 0")
        self.heartbeatIntervalMs = Int64(heartbeatIntervalMs)
        self.livenessCount = livenessCount
    }

    package init(_ config: RunConfig.LivenessSection) {
        self.init(heartbeatIntervalMs: config.heartbeatIntervalMs, livenessCount: config.livenessCount)
    }

    /// A hello from `id`. Returns what happened (joined, rejoined after death, restarted while alive).
    @discardableResult
    package mutating func register(_ id: String, role: PeerRole, now: Int64) -> LivenessEvent {
        guard var p = peers[id] else {
            peers[id] = Peer(id: id, role: role, state: .alive, registeredAt: now, lastSeen: now, downSince: nil,
                             registrations: 1, deaths: 0)
            return .joined(peer: id, role: role)
        }
        let event: LivenessEvent
        switch p.state {
        case .alive: event = .restarted(peer: id, role: role)
        case .dead, .left: event = .rejoined(peer: id, role: role, downForMs: now - (p.downSince ?? p.lastSeen))
        }
        p.role = role
        p.state = .alive
        p.registeredAt = now
        p.lastSeen = now
        p.downSince = nil
        p.registrations += 1
        peers[id] = p
        return event
    }

    /// A heartbeat (or any message) from `id`. nil when the peer is alive and refreshed; `.mustRegister` when the
    /// peer is unknown, dead or gone (it must say hello again before its messages count).
    package mutating func heartbeat(_ id: String, now: Int64) -> LivenessEvent? {
        guard var p = peers[id], p.state == .alive else { return .mustRegister(peer: id) }
        p.lastSeen = max(p.lastSeen, now)
        peers[id] = p
        return nil
    }

    /// A goodbye from `id` (graceful stop): not an error, not a death.
    @discardableResult
    package mutating func leave(_ id: String, now: Int64) -> LivenessEvent? {
        guard var p = peers[id], p.state == .alive else { return nil }
        p.state = .left
        p.downSince = now
        peers[id] = p
        return .left(peer: id, role: p.role)
    }

    /// Declares dead every alive peer silent for ≥ windowMs; events sorted by peer id.
    package mutating func tick(now: Int64) -> [LivenessEvent] {
        var events: [LivenessEvent] = []
        for id in peers.keys.sorted() {
            var p = peers[id]!
            let silent = now - p.lastSeen
            if p.state == .alive && silent >= windowMs {
                p.state = .dead
                p.downSince = now
                p.deaths += 1
                peers[id] = p
                events.append(.dead(peer: id, role: p.role, silentForMs: silent))
            }
        }
        return events
    }

    /// Ids of alive peers (optionally of one role), sorted.
    package func livePeers(role: PeerRole? = nil) -> [String] {
        peers.values.filter { $0.state == .alive && (role == nil || $0.role == role) }.map(\.id).sorted()
    }

    /// Removes a peer entirely (the coordinator's bounded peer table evicts long-dead peers).
    package mutating func forget(_ id: String) { peers[id] = nil }

    package func isAlive(_ id: String) -> Bool { peers[id]?.state == .alive }

    package func peer(_ id: String) -> Peer? { peers[id] }
}
