// Helpers shared by the Monitoring*Tests: temp directories, running external tools (python3, tensorboard,
// promtool, prometheus, tmux, chromium) with a deadline, and a raw-socket HTTP client (so tests can also send
// hostile bytes).
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

enum MonitoringTestTools {
    static func tempDir(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("bonfire-mon-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try? FileManager.default.removeItem(at: url)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Absolute path of `tool` on PATH, or nil.
    static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Fails the test (not skips) naming the package to install when `tool` is missing.
    static func require(_ tool: String, install: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        if let p = which(tool) { return p }
        XCTFail("\(tool) not found on PATH; install it (\(install)) — .ci/run installs it via Scripts/install-deps.sh",
                file: file, line: line)
        throw XCTSkip("unreachable: failed above")
    }

    struct ToolResult { var status: Int32; var out: String; var err: String; var timedOut: Bool }

    /// Runs `exe args` to completion (killed after `timeout` s), collecting stdout and stderr. Uses posix_spawn and
    /// waitpid directly: tools that daemonize (tmux) confuse Foundation.Process's exit monitoring.
    static func run(_ exe: String, _ args: [String], timeout: Double = 60, env: [String: String]? = nil) throws -> ToolResult {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-tool-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let outPath = base.path + ".out", errPath = base.path + ".err"
        defer { unlink(outPath); unlink(errPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let environment = ProcessInfo.processInfo.environment.merging(env ?? [:]) { $1 }.map { "\($0)=\($1)" }
        let argv: [UnsafeMutablePointer<CChar>?] = ([exe] + args).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, argv, envp)
        guard rc == 0 else { throw NSError(domain: "posix_spawn", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: "\(exe): \(String(cString: strerror(rc)))"]) }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var timedOut = false
        while true {
            let w = waitpid(pid, &status, WNOHANG)
            if w == pid { break }
            if w < 0 && errno != EINTR { break }
            if Date() > deadline && !timedOut { timedOut = true; kill(pid, SIGKILL) }
            usleep(10_000)
        }
        let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let outData = FileManager.default.contents(atPath: outPath) ?? Data()
        let errData = FileManager.default.contents(atPath: errPath) ?? Data()
        return ToolResult(status: code, out: String(decoding: outData, as: UTF8.self),
                          err: String(decoding: errData, as: UTF8.self), timedOut: timedOut)
    }

    /// A long-running background process (servers) with its output in a file; `stop()` terminates and reaps it.
    final class Background {
        let process = Process()
        let logURL: URL
        init(_ exe: String, _ args: [String], log: URL, env: [String: String]? = nil) throws {
            logURL = log
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let h = try FileHandle(forWritingTo: log)
            process.executableURL = URL(fileURLWithPath: exe)
            process.arguments = args
            if let env { process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 } }
            process.standardOutput = h; process.standardError = h
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
        var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }
        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        deinit { stop() }
    }

    /// Polls `cond` every 100 ms for up to `seconds`; true when it held.
    static func waitUntil(_ seconds: Double, _ cond: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline { if cond() { return true }; usleep(100_000) }
        return cond()
    }

    // MARK: raw HTTP

    /// Connects to 127.0.0.1:port; -1 on failure. Receive timeout `timeout` seconds.
    static func connect(port: Int, timeout: Double = 5) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if ok != 0 { close(fd); return -1 }
        return fd
    }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return false }
            off += n
        }
        return true
    }

    /// Reads until EOF or timeout.
    static func readAll(_ fd: Int32, limit: Int = 16 << 20) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// Sends `raw` and returns the whole response (the servers here close after one response).
    static func exchange(port: Int, _ raw: [UInt8], timeout: Double = 5) -> String? {
        let fd = connect(port: port, timeout: timeout)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        _ = sendAll(fd, raw)
        return String(decoding: readAll(fd), as: UTF8.self)
    }

    /// GET path → (status code, body); nil when the connection failed.
    static func get(port: Int, _ path: String, timeout: Double = 5) -> (status: Int, body: String)? {
        guard let resp = exchange(port: port, Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8),
                                  timeout: timeout),
              let headEnd = resp.range(of: "\r\n\r\n") else { return nil }
        let head = resp[..<headEnd.lowerBound]
        let parts = head.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let code = Int(parts[1]) else { return nil }
        var body = String(resp[headEnd.upperBound...])
        if head.lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return (code, body)
    }

    static func dechunk(_ s: String) -> String {
        var bytes = Array(s.utf8)[...]
        var out: [UInt8] = []
        while let crlf = bytes.firstRange(of: [13, 10]) {
            let sizeText = String(decoding: bytes[..<crlf.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size > 0 else { break }
            let start = crlf.upperBound
            guard bytes.distance(from: start, to: bytes.endIndex) >= size else { break }
            out += bytes[start..<bytes.index(start, offsetBy: size)]
            bytes = bytes[bytes.index(start, offsetBy: min(size + 2, bytes.distance(from: start, to: bytes.endIndex)))...]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension MonitoringTestTools {
    /// The built `bonfire` executable (build it first: swift build -c release --product bonfire).
    static func bonfireExecutable(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        if let path = ProcessInfo.processInfo.environment["BONFIRE_EXECUTABLE"] { return path }
        let roots = [URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath(), Bundle.main.bundleURL]
        for root in roots {
            var dir = root.deletingLastPathComponent()
            for _ in 0..<4 {
                let candidate = dir.appendingPathComponent("bonfire").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
                dir = dir.deletingLastPathComponent()
            }
        }
        XCTFail("bonfire executable not found next to the test bundle; build it first: swift build -c release --product bonfire",
                file: file, line: line)
        throw XCTSkip("unreachable: failed above")
    }
}
