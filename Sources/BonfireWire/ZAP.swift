// The ZAP handler (ZeroMQ RFC 27, ZAP/1.0) that decides which CURVE clients a server socket accepts.
//
// libzmq asks `inproc://zeromq.zap.01` of the socket's context about every CURVE handshake on a server socket: the
// request carries the peer's address and its 32-byte public key; we answer 200 with the key's bound role as the user
// id (libzmq then stamps that "User-Id" on every message from the peer, see `ZMQReceived.authenticatedUserId`) or
// 400 for keys not on the allow list. Without a handler libzmq would accept any key, so `configureCurveServer`
// requires a running `ZAPAuthenticator` on the same context.
//
// It also watches the server sockets (zmq_socket_monitor) for handshakes that fail before ZAP is asked: a client
// without keys (NULL mechanism against a CURVE server), with the wrong server key, or sending garbage. Every
// rejection is counted (`counters`) and logged, at most one line per `logInterval` with a count of the ones not
// shown. Public keys are shown by their first 8 characters; secret keys never reach this file.
//
//   let auth = try ZAPAuthenticator.start(context: ctx, allow: credentials.allow!, log: { roleLog($0) })
//   let pull = try ZMQSocket(ctx, .pull)
//   try pull.configureCurveServer(keys: credentials.server!, authenticator: auth)   // before bind
//   try pull.bind(endpoint)
//   ... auth.counters.rejected ...
//   auth.stop()   // or context.shutdown(): the handler thread ends by itself
import CZeroMQ
import Foundation

/// What the ZAP handler has decided so far.
package struct ZAPCounters: Sendable, Equatable {
    /// Handshakes accepted, by bound role ("actor", "learner", "coordinator").
    package var acceptedByRole: [String: Int] = [:]
    /// CURVE clients whose public key is not on the allow list.
    package var rejectedUnknownKey = 0
    /// ZAP requests for a mechanism other than CURVE (a server socket configured without CURVE but with a domain).
    package var rejectedMechanism = 0
    /// ZAP requests that do not follow ZAP/1.0.
    package var malformedRequests = 0
    /// Handshakes that failed before ZAP was asked, seen by the socket monitors: peers without keys, with the wrong
    /// server key, or speaking something else.
    package var handshakeFailures = 0
    /// Peer address of the latest rejection (ZAP's address field, or the socket endpoint for handshake failures).
    package var lastRejectedAddress: String?

    package init() {}

    package var accepted: Int { acceptedByRole.values.reduce(0, +) }
    /// Every refused attempt.
    package var rejected: Int { rejectedUnknownKey + rejectedMechanism + malformedRequests + handshakeFailures }
}

/// The ZAP handler of one `ZMQContext`: a thread serving `inproc://zeromq.zap.01` (see the file header).
package final class ZAPAuthenticator: @unchecked Sendable {
    /// The ZAP endpoint libzmq asks (fixed by RFC 27).
    package static let endpoint = "inproc://zeromq.zap.01"

    package let context: ZMQContext
    /// ZMQ_ZAP_DOMAIN set on the server sockets (any non-empty text; we accept only this domain).
    package let domain: String
    /// At most one rejection line per this interval; the rest are counted and reported with the next line.
    package let logInterval: Duration

    private let allow: CurveAllowList
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var state = ZAPCounters()
    private var stopping = false
    private var running = false
    private var pendingMonitors: [(endpoint: String, ready: DispatchSemaphore)] = []
    private var lastLog: ContinuousClock.Instant?
    private var suppressed = 0
    private let finished = DispatchSemaphore(value: 0)

    private init(context: ZMQContext, allow: CurveAllowList, domain: String, logInterval: Duration,
                 log: @escaping @Sendable (String) -> Void) {
        self.context = context; self.allow = allow; self.domain = domain; self.logInterval = logInterval; self.log = log
    }

    /// Starts the handler thread and returns once it serves the ZAP endpoint (so server sockets configured after
    /// this are covered from their first handshake). Throws if this context already has a ZAP handler.
    package static func start(context: ZMQContext, allow: CurveAllowList, domain: String = "bonfire",
                              logInterval: Duration = .seconds(1),
                              log: @escaping @Sendable (String) -> Void = { line in
                                  FileHandle.standardError.write(Data((line + "\n").utf8))
                              }) throws(ZMQError) -> ZAPAuthenticator {
        precondition(!domain.isEmpty, "ZAPAuthenticator: the ZAP domain must not be empty")
        let auth = ZAPAuthenticator(context: context, allow: allow, domain: domain, logInterval: logInterval, log: log)
        let bound = DispatchSemaphore(value: 0)
        let result = Box<ZMQError?>(nil)
        let thread = Thread { auth.serve(bound: bound, result: result) }
        thread.name = "bonfire-zap"
        thread.start()
        bound.wait()
        if let error = result.value { throw error }
        return auth
    }

    /// Counters so far (thread-safe).
    package var counters: ZAPCounters { lock.withLock { state } }

    package var isRunning: Bool { lock.withLock { running && !stopping } }

    /// Stops the handler thread and waits for it. Server sockets of this context should be closed first (a handshake
    /// after this finds no handler). Safe to call more than once.
    package func stop() {
        let wait: Bool = lock.withLock {
            let was = running && !stopping
            stopping = true
            return was
        }
        if wait { finished.wait(); finished.signal() }
    }

    deinit { stop() }

    /// Starts counting handshake failures of `socket` (called by `configureCurveServer`, on the socket's thread).
    func watch(_ socket: ZMQSocket) throws(ZMQError) {
        let endpoint = "inproc://bonfire-zap-monitor-\(UUID().uuidString)"
        let events = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        let h = socket.rawHandle
        _ = try zmqCall("zmq_socket_monitor(\(endpoint))", { zmq_socket_monitor(h, endpoint, events) })
        let ready = DispatchSemaphore(value: 0)
        let queued: Bool = lock.withLock {
            guard running && !stopping else { return false }
            pendingMonitors.append((endpoint, ready))
            return true
        }
        // The handler thread connects within one poll period; wait so no early failure goes unseen.
        if queued { _ = ready.wait(timeout: .now() + 2) }
    }

    // MARK: - The handler thread

    private func serve(bound: DispatchSemaphore, result: Box<ZMQError?>) {
        defer {
            lock.withLock { running = false; for m in pendingMonitors { m.ready.signal() }; pendingMonitors = [] }
            finished.signal()
        }
        let rep: ZMQSocket
        do {
            rep = try ZMQSocket(context, .rep, linger: .zero)
            try rep.bind(Self.endpoint)
        } catch {
            result.value = ZMQError(call: error.call, code: error.code,
                                    message: error.message + (error.code == EADDRINUSE ? " (this context already has a ZAP handler)" : ""))
            bound.signal()
            return
        }
        lock.withLock { running = true }
        bound.signal()
        var monitors: [ZMQSocket] = []
        while !lock.withLock({ stopping }) {
            let pending: [(endpoint: String, ready: DispatchSemaphore)] = lock.withLock {
                defer { pendingMonitors = [] }
                return pendingMonitors
            }
            for m in pending {
                if let pair = try? ZMQSocket(context, .pair, linger: .zero), (try? pair.connect(m.endpoint)) != nil {
                    monitors.append(pair)
                }
                m.ready.signal()
            }
            do {
                let ready = try ZMQSocket.pollReadable([rep] + monitors, timeout: .milliseconds(50))
                for i in ready {
                    if i == 0 {
                        guard let request = try rep.receive(timeout: .zero) else { continue }
                        _ = try rep.send(reply(to: request), timeout: .seconds(1))
                    } else if let event = try monitors[i - 1].receive(timeout: .zero) {
                        handleMonitorEvent(event)
                    }
                }
            } catch {
                if !error.isShutdown { log("zap: handler stopped: \(error)") }
                break
            }
        }
        for m in monitors { m.close() }
        rep.close()
    }

    /// The ZAP/1.0 reply to one request: [version, request id, status code, status text, user id, metadata].
    package func reply(to frames: [[UInt8]]) -> [[UInt8]] {
        func text(_ s: String) -> [UInt8] { Array(s.utf8) }
        let requestID = frames.count > 1 ? frames[1] : []
        func answer(_ code: String, _ status: String, user: String = "") -> [[UInt8]] {
            [text("1.0"), requestID, text(code), text(status), text(user), []]
        }
        guard frames.count >= 6, frames[0] == text("1.0") else {
            reject("malformed ZAP request (\(frames.count) frames)", address: nil) { $0.malformedRequests += 1 }
            return answer("500", "malformed ZAP request")
        }
        let address = String(decoding: frames[3].prefix(256), as: UTF8.self)
        let mechanism = String(decoding: frames[5].prefix(32), as: UTF8.self)
        guard mechanism == "CURVE" else {
            reject("\(mechanism) client from \(address) (only CURVE is accepted)", address: address) { $0.rejectedMechanism += 1 }
            return answer("400", "CURVE required")
        }
        guard frames.count == 7, frames[6].count == Curve.keyBytes else {
            reject("malformed CURVE credentials from \(address)", address: address) { $0.malformedRequests += 1 }
            return answer("500", "malformed CURVE credentials")
        }
        let key = Curve.encode(frames[6])
        guard String(decoding: frames[2], as: UTF8.self) == domain, let role = allow.role(of: key) else {
            reject("CURVE client key \(key.prefix(8))… from \(address) (not on the allow list)", address: address) {
                $0.rejectedUnknownKey += 1
            }
            return answer("400", "unknown client key")
        }
        lock.withLock { state.acceptedByRole[role.rawValue, default: 0] += 1 }
        return answer("200", "OK", user: role.rawValue)
    }

    private func handleMonitorEvent(_ frames: [[UInt8]]) {
        guard let head = frames.first, head.count >= 6 else { return }
        let event = UInt16(head[0]) | UInt16(head[1]) << 8  // native (little-endian on every platform we run)
        let endpoint = frames.count > 1 ? String(decoding: frames[1].prefix(256), as: UTF8.self) : "?"
        guard Int32(event) & (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0 else { return }
        reject("failed CURVE handshake on \(endpoint) (a client without keys or with the wrong server key?)",
               address: endpoint) { $0.handshakeFailures += 1 }
    }

    /// Counts a rejection and logs it, rate-limited.
    private func reject(_ what: String, address: String?, _ count: (inout ZAPCounters) -> Void) {
        let (line, total): (String?, Int) = lock.withLock {
            count(&state)
            if let address { state.lastRejectedAddress = address }
            let now = ContinuousClock.now
            if let last = lastLog, now - last < logInterval {
                suppressed += 1
                return (nil, state.rejected)
            }
            lastLog = now
            let more = suppressed > 0 ? " (+\(suppressed) more not shown)" : ""
            suppressed = 0
            return ("zap: rejected \(what)\(more)", state.rejected)
        }
        if let line { log("\(line); \(total) rejected so far") }
    }
}

/// A mutable cell handed to the handler thread for its start-up result.
private final class Box<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
