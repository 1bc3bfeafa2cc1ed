// ZeroMQ CURVE (CurveZMQ, RFC 26): key pairs, key files, and the socket options of CURVE servers and clients.
//
// Who holds what (`bonfire keys --dir D` writes all of it):
//   D/server.key            server key pair: the coordinator and the learner bind as CURVE servers with it
//   D/server.pub            the server's public key only: what an actor host needs besides its own key
//   D/coordinator.key       client key pairs, one per role; the ZAP handler binds each public key to its role
//   D/learner.key
//   D/actor.key             (every actor uses the actor key: more actors can join without new keys)
//   D/allowed-clients       "<role> <public key>" lines: the allow list of the ZAP handler (ZAP.swift)
// Every file is written with mode 0600 (directory 0700) through a temporary file and rename, and a key file that
// group or others can read is refused (as ssh does). Key files are `name = value` lines; secret keys are never
// printed (`CurveKeyPair.description` redacts them).
//
// Sockets: a server sets ZMQ_CURVE_SERVER + its secret key and needs a running `ZAPAuthenticator` on its context
// (without one libzmq would accept ANY client key); a client sets ZMQ_CURVE_SERVERKEY + its own key pair. Both before
// bind/connect. A client without keys, or with the wrong server key, fails the handshake and exchanges no message.
import CZeroMQ
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A problem with CURVE keys or key files; the message says what to do next.
package struct CurveError: Error, CustomStringConvertible, LocalizedError, Equatable {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
    package var errorDescription: String? { message }
}

/// Z85 encoding of 32-byte CURVE keys (ZeroMQ RFC 32) and availability of CURVE in this libzmq.
package enum Curve {
    /// Bytes in a CURVE key; characters in its Z85 text.
    package static let keyBytes = 32
    package static let z85Length = 40

    /// True when libzmq was built with CURVE (libsodium); Debian's libzmq5 is.
    package static var isAvailable: Bool { zmq_has("curve") == 1 }

    /// The 32 bytes of a 40-character Z85 key; nil for anything else (wrong length, characters outside Z85).
    package static func decode(_ z85: String) -> [UInt8]? {
        let chars = Array(z85.utf8)
        guard chars.count == z85Length, chars.allSatisfy({ z85Alphabet.contains($0) }) else { return nil }
        var out = [UInt8](repeating: 0, count: keyBytes)
        let ok = (chars + [0]).withUnsafeBufferPointer { src in
            src.withMemoryRebound(to: CChar.self) { zmq_z85_decode(&out, $0.baseAddress!) != nil }
        }
        return ok ? out : nil
    }

    /// The Z85 text of a 32-byte key.
    package static func encode(_ key: [UInt8]) -> String {
        precondition(key.count == keyBytes, "Curve.encode: a CURVE key has \(keyBytes) bytes, got \(key.count)")
        var text = [CChar](repeating: 0, count: z85Length + 1)
        _ = zmq_z85_encode(&text, key, key.count)
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// True for a well-formed 40-character Z85 key.
    package static func isValidKey(_ z85: String) -> Bool { decode(z85) != nil }

    private static let z85Alphabet = Set(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)
}

/// One CURVE key pair, both halves as Z85 text. `description` never shows the secret key.
package struct CurveKeyPair: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    package let publicKey: String
    package let secretKey: String

    /// A pair from its two halves; throws unless both are valid keys and the public key belongs to the secret one.
    package init(publicKey: String, secretKey: String) throws(CurveError) {
        guard Curve.isValidKey(publicKey) else {
            throw CurveError("not a CURVE public key (need \(Curve.z85Length) Z85 characters, got \(publicKey.utf8.count))")
        }
        guard Curve.isValidKey(secretKey) else {
            throw CurveError("not a CURVE secret key (need \(Curve.z85Length) Z85 characters)")
        }
        var derived = [CChar](repeating: 0, count: Curve.z85Length + 1)
        guard zmq_curve_public(&derived, secretKey) == 0,
              derived.withUnsafeBufferPointer({ String(cString: $0.baseAddress!) }) == publicKey else {
            throw CurveError("the public key does not belong to the secret key (a damaged or mixed-up key file?)")
        }
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// A fresh key pair from libzmq (libsodium's randomness).
    package static func generate() throws(CurveError) -> CurveKeyPair {
        guard Curve.isAvailable else {
            throw CurveError("this libzmq was built without CURVE (libsodium); install Debian's libzmq5/libzmq3-dev")
        }
        var pub = [CChar](repeating: 0, count: Curve.z85Length + 1)
        var sec = [CChar](repeating: 0, count: Curve.z85Length + 1)
        guard zmq_curve_keypair(&pub, &sec) == 0 else {
            throw CurveError("zmq_curve_keypair failed: \(String(cString: zmq_strerror(czmq_errno())))")
        }
        let p = pub.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        let s = sec.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        for i in sec.indices { sec[i] = 0 }
        return try CurveKeyPair(publicKey: p, secretKey: s)
    }

    package var description: String { "CurveKeyPair(public: \(publicKey), secret: <redacted>)" }
    package var debugDescription: String { description }
}

/// The role a CURVE client key is bound to; its raw value is the ZAP user id that received messages carry.
package enum CurveClientRole: String, Sendable, CaseIterable, Equatable {
    case coordinator, learner, actor

    package init?(_ role: WireRole) {
        switch role {
        case .coordinator: self = .coordinator
        case .learner: self = .learner
        case .actor: self = .actor
        case .unspecified, .tool: return nil
        }
    }

    package var wireRole: WireRole {
        switch self {
        case .coordinator: .coordinator
        case .learner: .learner
        case .actor: .actor
        }
    }
}

/// Which client public keys a CURVE server accepts, and the role each one is bound to.
package struct CurveAllowList: Sendable, Equatable {
    package private(set) var roles: [String: CurveClientRole] = [:]  // Z85 public key → role

    package init() {}

    /// Adds `publicKey` for `role`; a key can be bound to one role only.
    package mutating func allow(_ publicKey: String, as role: CurveClientRole) throws(CurveError) {
        guard Curve.isValidKey(publicKey) else { throw CurveError("allow list: not a CURVE public key") }
        if let bound = roles[publicKey], bound != role {
            throw CurveError("allow list: key \(publicKey.prefix(8))… is bound to \(bound.rawValue) and cannot also be \(role.rawValue)")
        }
        roles[publicKey] = role
    }

    package func role(of publicKey: String) -> CurveClientRole? { roles[publicKey] }
    package var count: Int { roles.count }
}

/// Everything one role needs for CURVE, loaded from a key directory (`bonfire keys --dir D`).
package struct CurveCredentials: Sendable {
    /// The servers' public key (clients pin it).
    package var serverPublicKey: String
    /// The server key pair: coordinator and learner, which bind; nil for actors.
    package var server: CurveKeyPair?
    /// This role's own client key pair (for the sockets it connects).
    package var client: CurveKeyPair
    /// Allowed client keys and their roles: coordinator and learner; nil for actors.
    package var allow: CurveAllowList?

    /// Loads what `role` needs from `dir`: actors read server.pub and actor.key only, so an actor host never needs
    /// the server's secret key.
    package static func load(dir: URL, role: CurveClientRole) throws(CurveError) -> CurveCredentials {
        let keys = CurveKeyDirectory(dir)
        let client = try keys.clientKeyPair(role)
        if role == .actor {
            return CurveCredentials(serverPublicKey: try keys.serverPublicKey(), server: nil, client: client, allow: nil)
        }
        let server = try keys.serverKeyPair()
        return CurveCredentials(serverPublicKey: server.publicKey, server: server, client: client,
                                allow: try keys.allowList())
    }
}

/// The key files of one Bonfire deployment (see the file header).
package struct CurveKeyDirectory: Sendable {
    package let url: URL
    package init(_ url: URL) { self.url = url }

    package static let serverKeyFile = "server.key"
    package static let serverPublicFile = "server.pub"
    package static let allowFile = "allowed-clients"
    package static func clientKeyFile(_ role: CurveClientRole) -> String { "\(role.rawValue).key" }

    /// Writes a fresh server key pair, one client key pair per role and the allow list. Refuses to replace
    /// existing keys unless `overwrite` (running roles would lose each other). Returns the file names written.
    @discardableResult
    package static func generate(at dir: URL, overwrite: Bool = false) throws(CurveError) -> [String] {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: dir.path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw CurveError("\(dir.path) exists and is not a directory") }
        } else {
            do { try fm.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
            catch { throw CurveError("cannot create key directory \(dir.path): \(error.localizedDescription)") }
        }
        let names = [serverKeyFile, serverPublicFile, allowFile] + CurveClientRole.allCases.map(clientKeyFile)
        if !overwrite, let existing = names.first(where: { fm.fileExists(atPath: dir.appendingPathComponent($0).path) }) {
            throw CurveError("\(dir.appendingPathComponent(existing).path) already exists; keys of a running deployment " +
                             "are not replaced (use another --dir, or --force to replace every key)")
        }
        let server = try CurveKeyPair.generate()
        var allow = "# Bonfire CURVE allow list: <role> <client public key>; the ZAP handler accepts only these keys\n"
        var files: [(String, String)] = []
        for role in CurveClientRole.allCases {
            let pair = try CurveKeyPair.generate()
            files.append((clientKeyFile(role), keyFileText(role: role.rawValue, pair)))
            allow += "\(role.rawValue) \(pair.publicKey)\n"
        }
        files.append((serverKeyFile, keyFileText(role: "server", server)))
        files.append((serverPublicFile, "# Bonfire CURVE server public key (clients pin it)\npublic-key = \(server.publicKey)\n"))
        files.append((allowFile, allow))
        for (name, text) in files { try writePrivate(dir.appendingPathComponent(name), text) }
        return files.map(\.0)
    }

    package func serverKeyPair() throws(CurveError) -> CurveKeyPair {
        try readPair(Self.serverKeyFile, role: "server")
    }

    /// server.pub, or the public half of server.key when server.pub is missing.
    package func serverPublicKey() throws(CurveError) -> String {
        let pub = url.appendingPathComponent(Self.serverPublicFile)
        if FileManager.default.fileExists(atPath: pub.path) {
            let fields = try readFields(Self.serverPublicFile, secret: false)
            guard let key = fields["public-key"], Curve.isValidKey(key) else {
                throw CurveError("\(pub.path): no valid 'public-key = <40 Z85 characters>' line; regenerate with bonfire keys")
            }
            return key
        }
        return try serverKeyPair().publicKey
    }

    package func clientKeyPair(_ role: CurveClientRole) throws(CurveError) -> CurveKeyPair {
        try readPair(Self.clientKeyFile(role), role: role.rawValue)
    }

    package func allowList() throws(CurveError) -> CurveAllowList {
        let file = url.appendingPathComponent(Self.allowFile)
        let text = try Self.readSmallFile(file, secret: false)
        var list = CurveAllowList()
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // '#' starts a comment only at the start of a line or of a field: Z85 keys may contain '#'.
            var parts = raw.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if let c = parts.firstIndex(where: { $0.hasPrefix("#") }) { parts = Array(parts[..<c]) }
            if parts.isEmpty { continue }
            guard parts.count == 2, let role = CurveClientRole(rawValue: String(parts[0])) else {
                throw CurveError("\(file.path):\(n + 1): expected '<coordinator|learner|actor> <public key>'")
            }
            do { try list.allow(String(parts[1]), as: role) } catch { throw CurveError("\(file.path):\(n + 1): \(error.message)") }
        }
        guard list.count > 0 else { throw CurveError("\(file.path) allows no client key; regenerate with bonfire keys") }
        return list
    }

    // MARK: files

    private func readPair(_ name: String, role: String) throws(CurveError) -> CurveKeyPair {
        let fields = try readFields(name, secret: true)
        let path = url.appendingPathComponent(name).path
        guard let pub = fields["public-key"], let sec = fields["secret-key"] else {
            throw CurveError("\(path): needs 'public-key = …' and 'secret-key = …' lines; regenerate with bonfire keys --dir \(url.path)")
        }
        if let r = fields["role"], r != role {
            throw CurveError("\(path) holds the \(r) key, not the \(role) key (files renamed?)")
        }
        do { return try CurveKeyPair(publicKey: pub, secretKey: sec) } catch {
            throw CurveError("\(path): \(error.message)")
        }
    }

    private func readFields(_ name: String, secret: Bool) throws(CurveError) -> [String: String] {
        let text = try Self.readSmallFile(url.appendingPathComponent(name), secret: secret)
        var fields: [String: String] = [:]
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[line[..<eq].trimmingCharacters(in: .whitespaces)] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    /// Reads a key file of at most 64 KiB; a secret one must not be readable by group or others.
    static func readSmallFile(_ file: URL, secret: Bool) throws(CurveError) -> String {
        var st = stat()
        guard stat(file.path, &st) == 0 else {
            throw CurveError("key file \(file.path) is missing (\(String(cString: strerror(errno)))); " +
                             "create keys with: bonfire keys --dir \(file.deletingLastPathComponent().path)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CurveError("key file \(file.path) is not a regular file") }
        if secret && (st.st_mode & 0o077) != 0 {
            throw CurveError("key file \(file.path) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); " +
                             "run: chmod 600 \(file.path)")
        }
        guard st.st_size <= 65536 else { throw CurveError("key file \(file.path) is too big (\(st.st_size) bytes) to be a key file") }
        guard let data = FileManager.default.contents(atPath: file.path), let text = String(data: data, encoding: .utf8) else {
            throw CurveError("key file \(file.path) cannot be read as UTF-8 text")
        }
        return text
    }

    private static func keyFileText(role: String, _ pair: CurveKeyPair) -> String {
        "# Bonfire CURVE key pair (ZeroMQ Z85). SECRET: keep mode 0600, never share or log it.\n" +
        "role = \(role)\npublic-key = \(pair.publicKey)\nsecret-key = \(pair.secretKey)\n"
    }

    /// Creates `<file>.tmp-<pid>` with mode 0600 (O_EXCL), writes, fsyncs, renames over `file`.
    static func writePrivate(_ file: URL, _ text: String) throws(CurveError) {
        let tmp = file.path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CurveError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let msg = String(cString: strerror(errno))
                close(fd); unlink(tmp)
                throw CurveError("cannot write \(tmp): \(msg)")
            }
            written += n
        }
        _ = fchmod(fd, 0o600)  // whatever the umask
        _ = fsync(fd)
        close(fd)
        guard rename(tmp, file.path) == 0 else {
            let msg = String(cString: strerror(errno))
            unlink(tmp)
            throw CurveError("cannot rename \(tmp) to \(file.path): \(msg)")
        }
    }
}

// MARK: - Sockets

extension ZMQSocket {
    /// Makes this socket a CURVE server with `keys` (before bind). Every client must complete the CURVE handshake
    /// and pass `authenticator`'s allow list; received messages then carry the client's role as
    /// `authenticatedUserId` / `lastReceivedUserId`. Handshake failures on this socket (e.g. clients without keys)
    /// are counted by the authenticator.
    package func configureCurveServer(keys: CurveKeyPair, authenticator: ZAPAuthenticator) throws(ZMQError) {
        precondition(authenticator.context === owningContext,
                     "configureCurveServer: the ZAPAuthenticator must run on this socket's ZMQContext")
        precondition(authenticator.isRunning, "configureCurveServer: the ZAPAuthenticator was stopped")
        try setInt("ZMQ_CURVE_SERVER", ZMQ_CURVE_SERVER, 1)
        try setKey("ZMQ_CURVE_SECRETKEY", ZMQ_CURVE_SECRETKEY, keys.secretKey)
        try setBytes("ZMQ_ZAP_DOMAIN", ZMQ_ZAP_DOMAIN, Array(authenticator.domain.utf8))
        readsUserId = true
        try authenticator.watch(self)
    }

    /// Makes this socket a CURVE client (before connect): it talks only to the server holding `serverPublicKey`'s
    /// secret, and proves it holds `keys` (whose public key the server's allow list binds to a role).
    package func configureCurveClient(serverPublicKey: String, keys: CurveKeyPair) throws(ZMQError) {
        try setKey("ZMQ_CURVE_SERVERKEY", ZMQ_CURVE_SERVERKEY, serverPublicKey)
        try setKey("ZMQ_CURVE_PUBLICKEY", ZMQ_CURVE_PUBLICKEY, keys.publicKey)
        try setKey("ZMQ_CURVE_SECRETKEY", ZMQ_CURVE_SECRETKEY, keys.secretKey)
    }

    /// Server or client from `credentials`: binds are servers, connects are clients.
    package func configureCurve(_ credentials: CurveCredentials, asServerWith authenticator: ZAPAuthenticator?) throws(ZMQError) {
        if let authenticator {
            guard let server = credentials.server else {
                preconditionFailure("configureCurve: a binding socket needs the server key pair (actors have none)")
            }
            try configureCurveServer(keys: server, authenticator: authenticator)
        } else {
            try configureCurveClient(serverPublicKey: credentials.serverPublicKey, keys: credentials.client)
        }
    }

    /// The CURVE mechanism is on (ZMQ_MECHANISM == ZMQ_CURVE).
    package var usesCurve: Bool {
        var v: Int32 = 0
        var len = MemoryLayout<Int32>.size
        return zmq_getsockopt(rawHandle, ZMQ_MECHANISM, &v, &len) == 0 && v == ZMQ_CURVE
    }

    private func setInt(_ name: String, _ opt: Int32, _ v: Int32) throws(ZMQError) {
        var v = v
        let h = rawHandle
        _ = try zmqCall("zmq_setsockopt(\(name))", { zmq_setsockopt(h, opt, &v, MemoryLayout<Int32>.size) })
    }

    private func setBytes(_ name: String, _ opt: Int32, _ v: [UInt8]) throws(ZMQError) {
        let h = rawHandle
        _ = try zmqCall("zmq_setsockopt(\(name))", { v.withUnsafeBytes { zmq_setsockopt(h, opt, $0.baseAddress, $0.count) } })
    }

    /// Keys go to libzmq as their 32 raw bytes; a malformed key is a programmer error (CurveKeyPair validates).
    private func setKey(_ name: String, _ opt: Int32, _ z85: String) throws(ZMQError) {
        guard var raw = Curve.decode(z85) else {
            preconditionFailure("\(name): not a 40-character Z85 CURVE key (\(z85.utf8.count) characters)")
        }
        defer { for i in raw.indices { raw[i] = 0 } }
        try setBytes(name, opt, raw)
    }
}

extension ZMQReceived {
    /// With CURVE: true when the sender's authenticated role (its key's binding) is the role its envelope claims.
    /// An actor key sending an envelope that says "learner" is rejected here. Without CURVE on the receiving socket
    /// (`authenticatedUserId == nil`) this returns `!requireCurve`.
    package func isAuthenticated(as claimed: WireRole, requireCurve: Bool) -> Bool {
        guard let user = authenticatedUserId else { return !requireCurve }
        guard let role = CurveClientRole(claimed) else { return false }
        return user == role.rawValue
    }

    /// The same for the envelope in this message (false for an undecodable one).
    package func senderIsAuthenticated(requireCurve: Bool) -> Bool {
        guard case .success(let env) = envelope else { return false }
        return isAuthenticated(as: env.senderRole, requireCurve: requireCurve)
    }
}
