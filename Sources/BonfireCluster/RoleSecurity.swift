// `security.*` applied to one role's sockets: with `security.mode = curve` the role loads its keys from
// `security.keysDir`, binding roles (coordinator, learner) start the ZAP handler on their context, server sockets are
// CURVE servers, client sockets pin the server key, and every received envelope must come from a key bound to the
// role the envelope claims. With `none` everything is a no-op and `accepts` passes everything.
//
//   let security = try RoleSecurity.start(config: config, role: .learner, context: context)
//   defer { security.stop() }
//   try security.server(pull); try pull.bind(...)          // every socket that binds, before bind
//   try security.client(control); try control.connect(...)  // every socket that connects, before connect
//   if let got = try pull.receiveEnvelope(&decoder, ...), !security.accepts(got) { count it; continue }
import BonfireWire
import Foundation

package final class RoleSecurity {
    package let mode: RunConfig.SecurityMode
    package let role: CurveClientRole
    package let credentials: CurveCredentials?
    /// The ZAP handler (binding roles with CURVE only): counters of refused peers.
    package let authenticator: ZAPAuthenticator?
    /// Envelopes whose authenticated role differs from the claimed one (impostors with a valid key).
    package private(set) var rejectedRole = 0

    private init(mode: RunConfig.SecurityMode, role: CurveClientRole, credentials: CurveCredentials?,
                 authenticator: ZAPAuthenticator?) {
        self.mode = mode; self.role = role; self.credentials = credentials; self.authenticator = authenticator
    }

    /// Loads keys and, for a role that binds (coordinator, learner), starts the ZAP handler on `context`.
    /// Throws `ClusterError` with what to do when keys are missing or unreadable.
    package static func start(config: RunConfig, role: CurveClientRole, context: ZMQContext,
                              log: @escaping @Sendable (String) -> Void = { roleLog($0) }) throws -> RoleSecurity {
        guard config.security.mode == .curve else {
            return RoleSecurity(mode: .none, role: role, credentials: nil, authenticator: nil)
        }
        guard Curve.isAvailable else {
            throw ClusterError("security.mode = curve, but this libzmq has no CURVE (built without libsodium); install Debian's libzmq5")
        }
        let credentials: CurveCredentials
        do { credentials = try CurveCredentials.load(dir: URL(fileURLWithPath: config.security.keysDir), role: role) }
        catch { throw ClusterError("\(role.rawValue): \(error.message)") }
        var auth: ZAPAuthenticator?
        if role != .actor, let allow = credentials.allow {
            do { auth = try ZAPAuthenticator.start(context: context, allow: allow, log: log) }
            catch { throw ClusterError("\(role.rawValue): cannot start the ZAP handler: \(error)") }
        }
        log("\(role.rawValue): CURVE on (server key \(credentials.serverPublicKey.prefix(8))…, keys in \(config.security.keysDir))")
        return RoleSecurity(mode: .curve, role: role, credentials: credentials, authenticator: auth)
    }

    /// A socket that binds: CURVE server behind the ZAP handler. Call before bind.
    package func server(_ socket: ZMQSocket) throws {
        guard mode == .curve, let credentials else { return }
        guard let authenticator, let keys = credentials.server else {
            preconditionFailure("RoleSecurity.server: the \(role.rawValue) role does not bind (no server key / ZAP handler)")
        }
        try socket.configureCurveServer(keys: keys, authenticator: authenticator)
    }

    /// A socket that connects: CURVE client with this role's key, pinning the server key. Call before connect.
    package func client(_ socket: ZMQSocket) throws {
        guard mode == .curve, let credentials else { return }
        try socket.configureCurveClient(serverPublicKey: credentials.serverPublicKey, keys: credentials.client)
    }

    /// True when the message may be processed: always without CURVE; with CURVE only if its sender's key is bound
    /// to the role its envelope claims (counted in `rejectedRole` otherwise). Messages from a CURVE server to a
    /// client carry no user id (the client pinned the server key), so use this on server sockets.
    package func accepts(_ received: ZMQReceived) -> Bool {
        guard mode == .curve else { return true }
        if received.senderIsAuthenticated(requireCurve: true) { return true }
        if case .success = received.envelope { rejectedRole += 1 }
        return false
    }

    /// Refused peers so far (ZAP and handshake failures), for metrics/logs; 0 without a ZAP handler.
    package var rejectedPeers: Int { authenticator?.counters.rejected ?? 0 }

    package func stop() { authenticator?.stop() }
}
