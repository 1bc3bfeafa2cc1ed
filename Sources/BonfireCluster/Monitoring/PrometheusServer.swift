// A tiny HTTP/1.1 server on POSIX sockets that serves `GET /metrics` (Prometheus text format) from the latest
// MonitoringSnapshot. One accept thread; each connection is handled on a short-lived thread (at most
// `maxConnections` at once; more are closed at once), answered once and closed (`Connection: close`).
//
//   let server = try PrometheusServer(port: config.monitoring.prometheusPort)   // binds now; throws if in use
//   server.start()
//   server.update(state.snapshot)          // whenever the snapshot changes (cheap: swaps a value under a lock)
//   server.stop()                          // closes the socket, joins the accept thread
//
// Hostile clients: a request head larger than `maxRequestBytes` → 431; anything that is not
// "<METHOD> <target> HTTP/1.x" → 400; a method other than GET/HEAD → 405; another path → 404; a client that does not
// finish its request head within `requestTimeout` (slowloris) is closed. None of these stop the server.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The latest snapshot, shared between the role that updates it and the server thread.
package final class SnapshotBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: MonitoringSnapshot
    package init(_ value: MonitoringSnapshot = MonitoringSnapshot()) { self.value = value }
    package func set(_ s: MonitoringSnapshot) { lock.lock(); value = s; lock.unlock() }
    package func get() -> MonitoringSnapshot { lock.lock(); defer { lock.unlock() }; return value }
}

package final class PrometheusServer: @unchecked Sendable {
    package let host: String
    /// The bound port (the kernel's choice when constructed with port 0 — tests only; config 0 means "off").
    package let port: Int
    package let box = SnapshotBox()
    package var maxRequestBytes = 8192
    package var requestTimeout: Double = 2.0
    package var maxConnections = 8

    private let listenFD: Int32
    private let lock = NSLock()
    private var thread: Thread?
    private var stopping = false
    private var active = 0
    private var counters: [String: Int] = [:]

    /// Binds and listens on host:port now, so a port in use fails at startup with a message naming the key.
    /// `configKey` is the config key users change (default `monitoring.prometheusPort`).
    package init(host: String = "127.0.0.1", port: Int, configKey: String = "monitoring.prometheusPort") throws {
        guard (0...65535).contains(port) else {
            throw MonitoringError("\(configKey) = \(port) is not a TCP port; use 1...65535, or 0 to turn the endpoint off")
        }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else {
            throw MonitoringError("monitoring.prometheusHost = \"\(host)\" is not an IPv4 address; use 127.0.0.1 (default) or 0.0.0.0")
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MonitoringError("socket() failed: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound != 0 {
            let e = errno
            close(fd)
            if e == EADDRINUSE {
                throw MonitoringError("Prometheus endpoint: port \(port) on \(host) is already in use. Stop whatever "
                                      + "listens there, or choose another port with --set \(configKey)=<port> (0 turns the endpoint off)")
            }
            throw MonitoringError("Prometheus endpoint: cannot bind \(host):\(port): \(String(cString: strerror(e))); "
                                  + "change \(configKey) or monitoring.prometheusHost")
        }
        guard listen(fd, 64) == 0 else {
            let e = errno; close(fd)
            throw MonitoringError("Prometheus endpoint: listen on \(host):\(port) failed: \(String(cString: strerror(e)))")
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.listenFD = fd
        self.host = host
        self.port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { stop() }

    /// Fails now, with the same message the coordinator would give, when the run's Prometheus endpoint cannot be
    /// served (port in use, bad port or host). Commands that start a coordinator call it first, so a busy port stops
    /// them before any role starts (a supervisor would otherwise restart the coordinator forever). Port 0 = off.
    package static func checkAvailable(_ config: MonitoringSection) throws {
        guard config.prometheusPort != 0 else { return }
        try PrometheusServer(host: config.prometheusHost, port: config.prometheusPort).stop()
    }

    package func update(_ snapshot: MonitoringSnapshot) { box.set(snapshot) }

    /// Requests answered, by outcome ("200", "404", "400", "405", "431", "timeout", "refused").
    package var outcomes: [String: Int] { lock.lock(); defer { lock.unlock() }; return counters }

    package func start() {
        lock.lock(); defer { lock.unlock() }
        guard thread == nil, !stopping else { return }
        let t = Thread { [self] in acceptLoop() }
        t.name = "bonfire-prometheus"
        thread = t
        t.start()
    }

    /// Stops accepting, closes the socket and waits (≤ 2 × requestTimeout) for the accept loop to end.
    package func stop() {
        lock.lock()
        if stopping { lock.unlock(); return }
        stopping = true
        let started = thread != nil
        lock.unlock()
        shutdown(listenFD, Int32(SHUT_RDWR))
        if started {
            let deadline = Date().addingTimeInterval(2 * requestTimeout + 1)
            while Date() < deadline {
                lock.lock(); let done = thread == nil; lock.unlock()
                if done { break }
                usleep(10_000)
            }
        }
        close(listenFD)
    }

    private func count(_ outcome: String) { lock.lock(); counters[outcome, default: 0] += 1; lock.unlock() }
    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    private func acceptLoop() {
        defer { lock.lock(); thread = nil; lock.unlock() }
        while !isStopping {
            var pfd = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, 200)
            if r < 0 { if errno == EINTR { continue }; return }
            if r == 0 { continue }
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == EAGAIN || errno == ECONNABORTED { continue }
                if isStopping { return }
                if errno == EMFILE || errno == ENFILE { usleep(50_000); continue }
                return
            }
            lock.lock()
            let admit = active < maxConnections && !stopping
            if admit { active += 1 }
            lock.unlock()
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            guard admit else { count("refused"); close(c); continue }
            let t = Thread { [self] in
                handle(c)
                close(c)
                lock.lock(); active -= 1; lock.unlock()
            }
            t.start()
        }
    }

    private func handle(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Date().addingTimeInterval(requestTimeout)
        var head: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        // Read until the blank line that ends the head, the size limit, or the deadline.
        while true {
            if let end = Self.headEnd(head) { head = Array(head[..<end]); break }
            if head.count > maxRequestBytes { respond(fd, 431, "request head larger than \(maxRequestBytes) bytes\n"); return }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { count("timeout"); return }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, Int32(max(1, min(left, 1)) * 1000))
            if r < 0 { if errno == EINTR { continue }; return }
            if r == 0 { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; return }
            if n == 0 {
                // Peer closed: answer what we have if it is a whole line, else drop.
                if head.isEmpty { return }
                if !head.contains(10) { respond(fd, 400, "incomplete request\n"); return }
                break
            }
            head += buf[0..<n]
        }
        let requestLine = String(decoding: head.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1."), !parts[0].isEmpty, !parts[1].isEmpty,
              parts[0].allSatisfy({ $0.isASCII && $0.isUppercase }) else {
            respond(fd, 400, "bad request line\n"); return
        }
        let method = parts[0]
        guard method == "GET" || method == "HEAD" else { respond(fd, 405, "only GET and HEAD\n", extra: "Allow: GET, HEAD\r\n"); return }
        let path = parts[1].split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        switch path {
        case "/metrics":
            let body = PrometheusText.render(box.get())
            respond(fd, 200, body, contentType: "text/plain; version=0.0.4; charset=utf-8", headOnly: method == "HEAD")
        case "/", "/healthz":
            respond(fd, 200, "bonfire monitoring: see /metrics\n", headOnly: method == "HEAD")
        default:
            respond(fd, 404, "not found; the metrics are at /metrics\n", headOnly: method == "HEAD")
        }
    }

    /// Index just past "\r\n\r\n" or "\n\n".
    static func headEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 2 else { return nil }
        for i in 1..<b.count where b[i] == 10 {
            if b[i - 1] == 10 { return i + 1 }
            if i >= 3, b[i - 1] == 13, b[i - 2] == 10 { return i + 1 }
        }
        return nil
    }

    private func respond(_ fd: Int32, _ code: Int, _ body: String, contentType: String = "text/plain; charset=utf-8",
                         extra: String = "", headOnly: Bool = false) {
        count(String(code))
        let reason = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                      431: "Request Header Fields Too Large"][code] ?? "Error"
        let bodyBytes = Array(body.utf8)
        let head = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(bodyBytes.count)\r\n"
            + "Connection: close\r\n\(extra)\r\n"
        let bytes = Array(head.utf8) + (headOnly ? [] : bodyBytes)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; return }
            if n == 0 { return }
            off += n
        }
        shutdown(fd, Int32(SHUT_WR))
        // Drain briefly so the client sees our response before a reset from unread request bytes.
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var scratch = [UInt8](repeating: 0, count: 4096)
        for _ in 0..<4 {
            guard poll(&pfd, 1, 50) > 0 else { break }
            let n = scratch.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n <= 0 { break }
        }
    }
}
