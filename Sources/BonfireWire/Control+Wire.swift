// Control-plane messages: registration (Hello/HelloAck), liveness (Heartbeat) and Shutdown, as Swift values with
// `init(wire:)` / `encoded()` (one protobuf message each, see Proto/bonfire.proto).
import CBonfireProto

/// Which kind of process sent a message (proto `Role`).
package enum WireRole: UInt32, Sendable, CaseIterable, Equatable {
    case unspecified = 0, coordinator = 1, learner = 2, actor = 3, tool = 4

    var c: Bonfire__V1__Role { Bonfire__V1__Role(rawValue: rawValue) }

    init(c: Bonfire__V1__Role, field: String) throws(WireError) {
        guard let r = WireRole(rawValue: UInt32(truncatingIfNeeded: c.rawValue)) else {
            throw WireError(.invalidField, "\(field): unknown role \(c.rawValue)")
        }
        self = r
    }
}

/// Registration: the first message a role sends to the coordinator, and again after a restart.
package struct WireHello: Equatable, Sendable {
    package var role: WireRole
    package var id: UInt32
    package var host: String
    package var pid: UInt32
    package var capabilities: [String]

    package init(role: WireRole, id: UInt32, host: String, pid: UInt32, capabilities: [String] = []) {
        self.role = role; self.id = id; self.host = host; self.pid = pid; self.capabilities = capabilities
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "Hello", unpack: bonfire__v1__hello__unpack, convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__Hello>) throws(WireError) {
        let m = c.pointee
        self.init(role: try WireRole(c: m.role, field: "Hello.role"), id: m.id, host: swiftString(m.host),
                  pid: m.pid, capabilities: swiftStrings(m.n_capabilities, m.capabilities))
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__Hello> {
        let p = a.make(Bonfire__V1__Hello.self, bonfire__v1__hello__init)
        p.pointee.role = role.c
        p.pointee.id = id
        p.pointee.host = a.string(host)
        p.pointee.pid = pid
        (p.pointee.n_capabilities, p.pointee.capabilities) = a.strings(capabilities)
        return p
    }
}

/// The coordinator's answer to a Hello.
package struct WireHelloAck: Equatable, Sendable {
    package var accepted: Bool
    package var reason: String
    package var currentVersion: UInt64
    package var heartbeatIntervalMs: UInt32
    package var liveness: UInt32

    package init(accepted: Bool, reason: String = "", currentVersion: UInt64, heartbeatIntervalMs: UInt32,
                 liveness: UInt32) {
        self.accepted = accepted; self.reason = reason; self.currentVersion = currentVersion
        self.heartbeatIntervalMs = heartbeatIntervalMs; self.liveness = liveness
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "HelloAck", unpack: bonfire__v1__hello_ack__unpack, convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__HelloAck>) throws(WireError) {
        let m = c.pointee
        self.init(accepted: m.accepted != 0, reason: swiftString(m.reason), currentVersion: m.current_version,
                  heartbeatIntervalMs: m.heartbeat_interval_ms, liveness: m.liveness)
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__HelloAck> {
        let p = a.make(Bonfire__V1__HelloAck.self, bonfire__v1__hello_ack__init)
        p.pointee.accepted = accepted ? 1 : 0
        p.pointee.reason = a.string(reason)
        p.pointee.current_version = currentVersion
        p.pointee.heartbeat_interval_ms = heartbeatIntervalMs
        p.pointee.liveness = liveness
        return p
    }
}

/// Liveness ping; also tells the receiver which policy version the sender holds.
package struct WireHeartbeat: Equatable, Sendable {
    package var policyVersion: UInt64
    package var unixTimeMs: UInt64
    package var state: String

    package init(policyVersion: UInt64, unixTimeMs: UInt64, state: String = "") {
        self.policyVersion = policyVersion; self.unixTimeMs = unixTimeMs; self.state = state
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "Heartbeat", unpack: bonfire__v1__heartbeat__unpack, convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__Heartbeat>) throws(WireError) {
        let m = c.pointee
        self.init(policyVersion: m.policy_version, unixTimeMs: m.unix_time_ms, state: swiftString(m.state))
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__Heartbeat> {
        let p = a.make(Bonfire__V1__Heartbeat.self, bonfire__v1__heartbeat__init)
        p.pointee.policy_version = policyVersion
        p.pointee.unix_time_ms = unixTimeMs
        p.pointee.state = a.string(state)
        return p
    }
}

/// Asks the receiver to stop gracefully.
package struct WireShutdown: Equatable, Sendable {
    package var reason: String

    package init(reason: String) { self.reason = reason }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "Shutdown", unpack: bonfire__v1__shutdown__unpack, convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__Shutdown>) throws(WireError) {
        self.init(reason: swiftString(c.pointee.reason))
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__Shutdown> {
        let p = a.make(Bonfire__V1__Shutdown.self, bonfire__v1__shutdown__init)
        p.pointee.reason = a.string(reason)
        return p
    }
}
