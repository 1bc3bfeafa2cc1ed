// A thin Swift wrapper over libzmq: context, sockets (PUSH/PULL/PUB/SUB/ROUTER/DEALER/PAIR), options, multipart
// send/receive of byte frames, receive with a deadline (zmq_poll), non-blocking send for high-water-mark
// backpressure, and envelope send/receive that packs straight into / decodes straight from the ZeroMQ message.
//
// Error handling: every libzmq call goes through `zmqCall`, which retries EINTR, reports EAGAIN as "would block"
// (a `false`/`nil` result: peer slow, HWM reached, deadline passed), turns ETERM into a `ZMQError` with
// `isShutdown == true` (the context is shutting down: expected at the end of a run, log at info) and everything else
// into a `ZMQError` carrying the call's name, errno and zmq_strerror text.
//
// Threading: a `ZMQContext` is thread-safe (libzmq guarantees it) and can be shared. A `ZMQSocket` is NOT: each
// socket is owned by exactly one thread (or one task) at a time, which is why it is a non-Sendable class — the
// compiler keeps it inside the region that created it. Create the socket on the thread that uses it.
import CZeroMQ
import Foundation

/// A failed libzmq call.
package struct ZMQError: Error, CustomStringConvertible, Sendable {
    /// The libzmq function (and endpoint/option when useful), e.g. "zmq_bind(tcp://127.0.0.1:5555)".
    package var call: String
    package var code: Int32
    package var message: String

    /// The context was terminated or shut down (ETERM): the normal end of a run, not a failure.
    package var isShutdown: Bool { code == ETERM }

    package var description: String {
        isShutdown ? "\(call): ZeroMQ context shut down (this is normal at the end of a run)"
                   : "\(call) failed: \(message) (errno \(code))"
    }
}

enum ZMQStatus { case ok(Int32), wouldBlock }

/// Runs one libzmq call that returns an int (-1 on error). Retries EINTR; EAGAIN → `.wouldBlock`; anything else throws.
@inline(__always)
func zmqCall(_ name: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> ZMQStatus {
    while true {
        let rc = body()
        if rc >= 0 { return .ok(rc) }
        let e = czmq_errno()
        if e == EINTR { continue }
        if e == EAGAIN { return .wouldBlock }
        throw ZMQError(call: name(), code: e, message: String(cString: zmq_strerror(e)))
    }
}

/// The same for calls that return a pointer (NULL on error).
func zmqCall(_ name: @autoclosure () -> String, _ body: () -> UnsafeMutableRawPointer?) throws(ZMQError) -> UnsafeMutableRawPointer {
    while true {
        if let p = body() { return p }
        let e = czmq_errno()
        if e == EINTR { continue }
        throw ZMQError(call: name(), code: e, message: String(cString: zmq_strerror(e)))
    }
}

/// Milliseconds for libzmq options and zmq_poll; rounds up so a tiny positive timeout is not "don't wait".
func milliseconds(_ d: Duration) -> Int {
    let (s, atto) = d.components
    if s < 0 || (s == 0 && atto <= 0) { return 0 }
    let ms = s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000
    return Int(min(ms, Int64(Int32.max)))
}

/// A libzmq context. Thread-safe by libzmq's contract, hence `@unchecked Sendable`; share one per process.
package final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    /// `ioThreadCPUs`: run the context's I/O threads only on these CPUs (ZMQ_THREAD_AFFINITY_CPU_ADD; empty = the
    /// OS decides). libzmq starts its threads with the first socket, so this is an init parameter. Each CPU must be
    /// one the calling thread may run on (libzmq aborts the process when the kernel refuses the affinity later), so
    /// any other throws here (EINVAL), before the context exists.
    package init(ioThreads: Int32 = 1, ioThreadCPUs: [Int] = []) throws(ZMQError) {
        if !ioThreadCPUs.isEmpty {
            let allowed = ThreadAffinity.current()
            for cpu in ioThreadCPUs where !allowed.contains(cpu) {
                throw ZMQError(call: "zmq_ctx_set(ZMQ_THREAD_AFFINITY_CPU_ADD, \(cpu))", code: EINVAL,
                               message: "CPU \(cpu) is not one this process may run on (allowed: \(allowed)); "
                                   + "pass CPUs from that list or none")
            }
        }
        handle = try zmqCall("zmq_ctx_new", { zmq_ctx_new() })
        if ioThreads != 1 {
            _ = try zmqCall("zmq_ctx_set(ZMQ_IO_THREADS)", { zmq_ctx_set(handle, ZMQ_IO_THREADS, ioThreads) })
        }
        for cpu in ioThreadCPUs {
            _ = try zmqCall("zmq_ctx_set(ZMQ_THREAD_AFFINITY_CPU_ADD, \(cpu))", {
                zmq_ctx_set(handle, ZMQ_THREAD_AFFINITY_CPU_ADD, Int32(clamping: cpu))
            })
        }
    }

    /// Makes every blocking call on this context's sockets fail with a shutdown error (ETERM); used on SIGINT/SIGTERM.
    package func shutdown() { _ = zmq_ctx_shutdown(handle) }

    deinit {
        // Sockets hold the context strongly, so all are closed here; linger (set per socket) bounds this wait.
        while zmq_ctx_term(handle) != 0 && czmq_errno() == EINTR {}
    }

    /// libzmq's version, e.g. "4.3.4".
    package static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}

package enum ZMQSocketType: Sendable {
    case push, pull, pub, sub, router, dealer, pair
    /// REQ/REP: only the ZAP handler (ZAP.swift) uses REP.
    case req, rep

    var raw: Int32 {
        switch self {
        case .push: ZMQ_PUSH
        case .pull: ZMQ_PULL
        case .pub: ZMQ_PUB
        case .sub: ZMQ_SUB
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pair: ZMQ_PAIR
        case .req: ZMQ_REQ
        case .rep: ZMQ_REP
        }
    }
}

/// Socket options (durations are sent to libzmq in whole milliseconds; `nil` means "infinite" where libzmq allows -1).
package enum ZMQOption: Sendable {
    /// Max queued outgoing messages per peer before sends would block (ZMQ_SNDHWM; 0 = unlimited).
    case sendHighWaterMark(Int32)
    /// Max queued incoming messages per peer (ZMQ_RCVHWM).
    case receiveHighWaterMark(Int32)
    /// How long close waits to flush unsent messages (ZMQ_LINGER; nil = forever, avoid).
    case linger(Duration?)
    /// Blocking send gives up after this (ZMQ_SNDTIMEO); then send returns false.
    case sendTimeout(Duration?)
    /// Blocking receive gives up after this (ZMQ_RCVTIMEO); then receive returns nil.
    case receiveTimeout(Duration?)
    /// SUB: accept messages starting with this prefix (empty = everything).
    case subscribe([UInt8])
    case unsubscribe([UInt8])
    /// ROUTER peers see this identity for the socket (ZMQ_ROUTING_ID).
    case routingID([UInt8])
    /// Keep only the latest message (ZMQ_CONFLATE; single-part messages only).
    case conflate(Bool)
    /// Queue only to completed connections (ZMQ_IMMEDIATE).
    case immediate(Bool)
    /// First reconnect delay (ZMQ_RECONNECT_IVL) and the cap of its exponential backoff (ZMQ_RECONNECT_IVL_MAX).
    case reconnectInterval(Duration)
    case reconnectIntervalMax(Duration)
    /// ZMTP heartbeats: ping interval, time to wait for the pong, and the TTL asked of the peer.
    case heartbeatInterval(Duration)
    case heartbeatTimeout(Duration)
    case heartbeatTTL(Duration)
    /// ROUTER: fail (EHOSTUNREACH) instead of silently dropping messages to unknown peers.
    case routerMandatory(Bool)
    /// Disconnect peers that send bigger messages (ZMQ_MAXMSGSIZE; nil = no limit).
    case maxMessageSize(Int64?)
}

/// One ZeroMQ socket, owned by one thread (see the file header). Closed on `close()` or deinit.
package final class ZMQSocket {
    package let type: ZMQSocketType
    private let context: ZMQContext
    private var handle: UnsafeMutableRawPointer?
    /// Read the ZAP "User-Id" of each received message (set by `configureCurveServer`; see Curve.swift).
    var readsUserId = false
    /// The ZAP user id (a CURVE client's bound role) of the last message received, when `readsUserId`.
    package private(set) var lastReceivedUserId: String?

    /// `linger` bounds how long close (and context teardown) waits for unsent messages.
    package init(_ context: ZMQContext, _ type: ZMQSocketType, linger: Duration = .seconds(1)) throws(ZMQError) {
        self.context = context
        self.type = type
        handle = try zmqCall("zmq_socket", { zmq_socket(context.handle, type.raw) })
        try set(.linger(linger))
    }

    deinit { close() }

    package func close() {
        if let h = handle { _ = zmq_close(h); handle = nil }
    }

    private var h: UnsafeMutableRawPointer {
        guard let handle else { preconditionFailure("ZMQSocket(\(type)) used after close()") }
        return handle
    }

    /// For socket options set from other files of this module (Curve.swift).
    var rawHandle: UnsafeMutableRawPointer { h }
    var owningContext: ZMQContext { context }

    package func bind(_ endpoint: String) throws(ZMQError) {
        _ = try zmqCall("zmq_bind(\(endpoint))", { zmq_bind(h, endpoint) })
    }

    package func connect(_ endpoint: String) throws(ZMQError) {
        _ = try zmqCall("zmq_connect(\(endpoint))", { zmq_connect(h, endpoint) })
    }

    package func disconnect(_ endpoint: String) throws(ZMQError) {
        _ = try zmqCall("zmq_disconnect(\(endpoint))", { zmq_disconnect(h, endpoint) })
    }

    package func unbind(_ endpoint: String) throws(ZMQError) {
        _ = try zmqCall("zmq_unbind(\(endpoint))", { zmq_unbind(h, endpoint) })
    }

    /// The endpoint of the last bind/connect, with the port filled in after binding `tcp://127.0.0.1:*`.
    package func lastEndpoint() throws(ZMQError) -> String {
        var buf = [CChar](repeating: 0, count: 1024)
        var len = buf.count
        _ = try zmqCall("zmq_getsockopt(ZMQ_LAST_ENDPOINT)", { zmq_getsockopt(h, ZMQ_LAST_ENDPOINT, &buf, &len) })
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    package func set(_ option: ZMQOption) throws(ZMQError) {
        func int(_ name: String, _ opt: Int32, _ v: Int32) throws(ZMQError) {
            var v = v
            _ = try zmqCall("zmq_setsockopt(\(name))", { zmq_setsockopt(h, opt, &v, MemoryLayout<Int32>.size) })
        }
        func bytes(_ name: String, _ opt: Int32, _ v: [UInt8]) throws(ZMQError) {
            _ = try zmqCall("zmq_setsockopt(\(name))", {
                v.withUnsafeBytes { zmq_setsockopt(h, opt, $0.baseAddress, $0.count) }
            })
        }
        func ms(_ d: Duration?) -> Int32 { d.map { Int32(milliseconds($0)) } ?? -1 }
        switch option {
        case .sendHighWaterMark(let n): try int("ZMQ_SNDHWM", ZMQ_SNDHWM, n)
        case .receiveHighWaterMark(let n): try int("ZMQ_RCVHWM", ZMQ_RCVHWM, n)
        case .linger(let d): try int("ZMQ_LINGER", ZMQ_LINGER, ms(d))
        case .sendTimeout(let d): try int("ZMQ_SNDTIMEO", ZMQ_SNDTIMEO, ms(d))
        case .receiveTimeout(let d): try int("ZMQ_RCVTIMEO", ZMQ_RCVTIMEO, ms(d))
        case .subscribe(let p): try bytes("ZMQ_SUBSCRIBE", ZMQ_SUBSCRIBE, p)
        case .unsubscribe(let p): try bytes("ZMQ_UNSUBSCRIBE", ZMQ_UNSUBSCRIBE, p)
        case .routingID(let id): try bytes("ZMQ_ROUTING_ID", ZMQ_ROUTING_ID, id)
        case .conflate(let b): try int("ZMQ_CONFLATE", ZMQ_CONFLATE, b ? 1 : 0)
        case .immediate(let b): try int("ZMQ_IMMEDIATE", ZMQ_IMMEDIATE, b ? 1 : 0)
        case .reconnectInterval(let d): try int("ZMQ_RECONNECT_IVL", ZMQ_RECONNECT_IVL, ms(d))
        case .reconnectIntervalMax(let d): try int("ZMQ_RECONNECT_IVL_MAX", ZMQ_RECONNECT_IVL_MAX, ms(d))
        case .heartbeatInterval(let d): try int("ZMQ_HEARTBEAT_IVL", ZMQ_HEARTBEAT_IVL, ms(d))
        case .heartbeatTimeout(let d): try int("ZMQ_HEARTBEAT_TIMEOUT", ZMQ_HEARTBEAT_TIMEOUT, ms(d))
        case .heartbeatTTL(let d): try int("ZMQ_HEARTBEAT_TTL", ZMQ_HEARTBEAT_TTL, ms(d))
        case .routerMandatory(let b): try int("ZMQ_ROUTER_MANDATORY", ZMQ_ROUTER_MANDATORY, b ? 1 : 0)
        case .maxMessageSize(let n):
            var v: Int64 = n ?? -1
            _ = try zmqCall("zmq_setsockopt(ZMQ_MAXMSGSIZE)", {
                zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &v, MemoryLayout<Int64>.size)
            })
        }
    }

    /// Sets ZMQ_MAXMSGSIZE from `limits` on a receiving socket: libzmq disconnects a peer that sends a bigger frame
    /// before buffering it (WireDecoder would drop it anyway, but only after it was received in full). Call before
    /// bind/connect; see `WireLimits(parameterCount:)` for the default.
    package func limitIncoming(to limits: WireLimits) throws(ZMQError) {
        try set(.maxMessageSize(Int64(clamping: limits.maxMessageBytes)))
    }

    // MARK: - Waiting

    /// Waits until the socket can receive (`ZMQ_POLLIN`) or send (`ZMQ_POLLOUT`) or the deadline passes.
    private func wait(for events: Int32, until deadline: ContinuousClock.Instant) throws(ZMQError) -> Bool {
        while true {
            let left = deadline - ContinuousClock.now
            var item = zmq_pollitem_t(socket: h, fd: 0, events: Int16(events), revents: 0)
            let status = try zmqCall("zmq_poll", { zmq_poll(&item, 1, milliseconds(left)) })
            if case .ok(let n) = status, n > 0 { return true }
            if ContinuousClock.now >= deadline { return false }
        }
    }

    /// Indices of `sockets` that have a message to receive, waiting up to `timeout` (nil = forever).
    package static func pollReadable(_ sockets: [ZMQSocket], timeout: Duration?) throws(ZMQError) -> [Int] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.h, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let ms = timeout.map { milliseconds($0) } ?? -1
        _ = try zmqCall("zmq_poll", { zmq_poll(&items, Int32(items.count), ms) })
        return items.indices.filter { items[$0].revents & Int16(ZMQ_POLLIN) != 0 }
    }

    // MARK: - Sending

    /// Sends one message whose frames are produced by `sendPart(index, flags)` (which must send frame `index` with
    /// the given flags and report its status). Timeout: nil = block (honours ZMQ_SNDTIMEO), .zero = never wait.
    /// Only the first frame can would-block: libzmq delivers multipart messages atomically.
    private func sendMessage(parts: Int, timeout: Duration?,
                             _ sendPart: (Int, Int32) throws(ZMQError) -> ZMQStatus) throws(ZMQError) -> Bool {
        precondition(parts > 0, "a ZeroMQ message needs at least one frame")
        let more = parts > 1 ? ZMQ_SNDMORE : 0
        if let timeout {
            let deadline = ContinuousClock.now + timeout
            while true {
                if case .ok = try sendPart(0, more | ZMQ_DONTWAIT) { break }
                if timeout <= .zero { return false }
                guard try wait(for: ZMQ_POLLOUT, until: deadline) else { return false }
            }
        } else {
            guard case .ok = try sendPart(0, more) else { return false }
        }
        for i in 1..<parts {
            let flags = i < parts - 1 ? ZMQ_SNDMORE : 0
            guard case .ok = try sendPart(i, flags) else {
                throw ZMQError(call: "zmq_send(frame \(i) of \(parts))", code: EAGAIN,
                               message: "later frame of a multipart message would block")
            }
        }
        return true
    }

    /// Sends `frames` as one multipart message. Returns false if it would block (HWM reached, no peer, SNDTIMEO or
    /// `timeout` expired); the caller counts that as backpressure. Timeout: nil = block, .zero = non-blocking.
    package func send(_ frames: [[UInt8]], timeout: Duration? = nil) throws(ZMQError) -> Bool {
        try sendMessage(parts: frames.count, timeout: timeout) { (i, flags) throws(ZMQError) -> ZMQStatus in
            try frames[i].withUnsafeBytes { raw in
                Result { () throws(ZMQError) -> ZMQStatus in
                    try zmqCall("zmq_send", { zmq_send(h, raw.baseAddress, raw.count, flags) })
                }
            }.get()
        }
    }

    package func send(_ frame: [UInt8], timeout: Duration? = nil) throws(ZMQError) -> Bool {
        try send([frame], timeout: timeout)
    }

    /// Non-blocking send: false when the message would block (backpressure).
    package func trySend(_ frames: [[UInt8]]) throws(ZMQError) -> Bool { try send(frames, timeout: .zero) }

    /// Sends `prefix` frames (e.g. a ROUTER routing id) then `envelope`, encoded straight into the ZeroMQ message
    /// buffer (no intermediate array): by `FastCodec` for parameters and BoN groups, by protobuf-c otherwise.
    package func send(_ envelope: WireEnvelope, prefix: [[UInt8]] = [], timeout: Duration? = nil) throws(ZMQError) -> Bool {
        if let size = FastCodec.encodedSize(envelope) {
            return try send(size: size, prefix: prefix, timeout: timeout) { FastCodec.encode(envelope, into: $0) }
        }
        return try envelope.withCTree { (tree) -> Result<Bool, ZMQError> in
            Result { () throws(ZMQError) -> Bool in
                try send(size: packedSize(tree), prefix: prefix, timeout: timeout) { packMessage(tree, into: $0) }
            }
        }.get()
    }

    /// Sends `prefix` frames then one frame of `size` bytes that `fill` writes straight into the ZeroMQ message
    /// (allocated once, on the first attempt; a would-block retry resends the same message).
    private func send(size: Int, prefix: [[UInt8]], timeout: Duration?,
                      fill: (UnsafeMutableRawBufferPointer) -> Void) throws(ZMQError) -> Bool {
        var msg = zmq_msg_t()
        var ready = false
        defer { if ready { zmq_msg_close(&msg) } }
        return try sendMessage(parts: prefix.count + 1, timeout: timeout) { (i, flags) throws(ZMQError) -> ZMQStatus in
            if i < prefix.count {
                return try prefix[i].withUnsafeBytes { raw in
                    Result { () throws(ZMQError) -> ZMQStatus in
                        try zmqCall("zmq_send", { zmq_send(h, raw.baseAddress, raw.count, flags) })
                    }
                }.get()
            }
            if !ready {
                _ = try zmqCall("zmq_msg_init_size(\(size))", { zmq_msg_init_size(&msg, size) })
                ready = true
                fill(UnsafeMutableRawBufferPointer(start: zmq_msg_data(&msg), count: size))
            }
            let status = try zmqCall("zmq_msg_send", { zmq_msg_send(&msg, h, flags) })
            if case .ok = status { ready = false }  // libzmq owns (and emptied) the message now
            return status
        }
    }

    // MARK: - Receiving

    /// Receives one multipart message, handing each frame's bytes to `frame(index, bytes, isLast)` while they are
    /// valid. Returns false on timeout. Timeout: nil = block (honours ZMQ_RCVTIMEO), .zero = poll once.
    private func receiveMessage(timeout: Duration?,
                                _ frame: (Int, UnsafeRawBufferPointer, Bool) -> Void) throws(ZMQError) -> Bool {
        var msg = zmq_msg_t()
        _ = zmq_msg_init(&msg)
        defer { zmq_msg_close(&msg) }
        if let timeout {
            let deadline = ContinuousClock.now + timeout
            while true {
                if case .ok = try zmqCall("zmq_msg_recv", { zmq_msg_recv(&msg, h, ZMQ_DONTWAIT) }) { break }
                if timeout <= .zero { return false }
                guard try wait(for: ZMQ_POLLIN, until: deadline) else { return false }
            }
        } else {
            guard case .ok = try zmqCall("zmq_msg_recv", { zmq_msg_recv(&msg, h, 0) }) else { return false }
        }
        if readsUserId { lastReceivedUserId = nil }
        var index = 0
        while true {
            // (a ROUTER's routing-id frame is made locally and has no metadata: take the first frame that has it)
            if readsUserId && lastReceivedUserId == nil {
                lastReceivedUserId = zmq_msg_gets(&msg, "User-Id").map { String(cString: $0) }
            }
            let more = zmq_msg_more(&msg) != 0
            frame(index, UnsafeRawBufferPointer(start: zmq_msg_data(&msg), count: zmq_msg_size(&msg)), !more)
            if !more { return true }
            index += 1
            guard case .ok = try zmqCall("zmq_msg_recv", { zmq_msg_recv(&msg, h, 0) }) else {
                throw ZMQError(call: "zmq_msg_recv(frame \(index))", code: EAGAIN,
                               message: "later frame of a multipart message was not ready")
            }
        }
    }

    /// Receives one multipart message; nil when `timeout` (or ZMQ_RCVTIMEO) passes first.
    package func receive(timeout: Duration? = nil) throws(ZMQError) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        let got = try receiveMessage(timeout: timeout) { _, raw, _ in frames.append(Array(raw)) }
        return got ? frames : nil
    }

    /// Receives one multipart message and returns its total size in bytes without copying it out (draining, and
    /// the raw-libzmq baseline of `bonfire-bench wire`). nil on timeout.
    package func receiveDiscarding(timeout: Duration? = nil) throws(ZMQError) -> Int? {
        var total = 0
        let got = try receiveMessage(timeout: timeout) { _, raw, _ in total += raw.count }
        return got ? total : nil
    }

    /// Receives one message whose LAST frame is an envelope, decoding it in place through `decoder` (which counts
    /// drops). Earlier frames (e.g. the ROUTER routing id) come back in `prefix`. nil on timeout.
    package func receiveEnvelope(_ decoder: inout WireDecoder, timeout: Duration? = nil) throws(ZMQError) -> ZMQReceived? {
        var prefix: [[UInt8]] = []
        var result: Result<WireEnvelope, WireError>?
        let got = try receiveMessage(timeout: timeout) { _, raw, isLast in
            if isLast { result = decoder.accept(raw) } else { prefix.append(Array(raw)) }
        }
        guard got, let result else { return nil }
        var received = ZMQReceived(prefix: prefix, envelope: result)
        if readsUserId { received.authenticatedUserId = lastReceivedUserId }
        return received
    }
}

/// A received message: leading frames and the decoded (or rejected) envelope in the last frame.
package struct ZMQReceived: Sendable {
    package var prefix: [[UInt8]]
    package var envelope: Result<WireEnvelope, WireError>
    /// The role the sender authenticated as (ZAP user id of its CURVE key, e.g. "actor"); nil without CURVE.
    /// Check it against the envelope's sender role with `isAuthenticated(as:)` (Curve.swift).
    package var authenticatedUserId: String? = nil
}
