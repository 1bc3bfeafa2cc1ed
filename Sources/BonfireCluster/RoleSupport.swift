// What every role shares: identity and envelope sequencing, timestamped log lines, the stop flag set by
// SIGINT/SIGTERM, the model built from the run config, and the parameter-layout hash checked on every broadcast.
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM; every role loop polls it and stops gracefully (learner: final checkpoint).
nonisolated(unsafe) private var stopSignal: Int32 = 0
/// The supervisor that started this role (`BONFIRE_SUPERVISOR_PID`), 0 = none.
nonisolated(unsafe) private var supervisorPID: pid_t = 0

package enum StopFlag {
    /// Installs handlers for SIGINT and SIGTERM that only set the flag (async-signal-safe). A role started by a
    /// supervisor also stops (as on SIGHUP) when that supervisor is gone, whatever killed it: no orphans.
    package static func install() {
        signal(SIGINT) { s in stopSignal = s }
        signal(SIGTERM) { s in stopSignal = s }
        signal(SIGPIPE, SIG_IGN)
        if let s = ProcessInfo.processInfo.environment["BONFIRE_SUPERVISOR_PID"], let p = pid_t(s), p > 1 {
            supervisorPID = p
        }
    }
    package static var isSet: Bool {
        if stopSignal == 0, supervisorPID > 0, getppid() != supervisorPID {
            stopSignal = SIGHUP
            roleLog("the supervisor (pid \(supervisorPID)) is gone; stopping")
        }
        return stopSignal != 0
    }
    package static var signalNumber: Int32 { stopSignal }
    package static func request() { stopSignal = SIGTERM }
    package static func reset() { stopSignal = 0 }
}

/// A role's identity on the wire plus its envelope sequence counter.
package struct RoleIdentity: Sendable {
    package let runID: String
    package let role: WireRole
    package let id: UInt32
    package private(set) var sequence: UInt64 = 0

    package init(runID: String, role: WireRole, id: UInt32) {
        self.runID = runID; self.role = role; self.id = id
    }

    package var name: String {
        switch role {
        case .actor: "actor-\(id)"
        case .learner: "learner"
        case .coordinator: "coordinator"
        default: "tool-\(id)"
        }
    }

    package mutating func envelope(_ payload: WirePayload) -> WireEnvelope {
        sequence += 1
        return WireEnvelope(runID: runID, senderRole: role, senderID: id, sequence: sequence, payload: payload)
    }
}

/// Peer names used by the coordinator's liveness tracker.
package func peerName(role: WireRole, id: UInt32) -> String {
    switch role {
    case .actor: "actor-\(id)"
    case .learner: "learner"
    case .coordinator: "coordinator"
    default: "tool-\(id)"
    }
}

/// One log line: `HH:MM:SS.mmm message`, flushed at once (roles run under `bonfire local`'s line prefixer).
package func roleLog(_ message: String) {
    var tv = timeval()
    gettimeofday(&tv, nil)
    var t = time_t(tv.tv_sec)
    var tmv = tm()
    localtime_r(&t, &tmv)
    let stamp = String(format: "%02d:%02d:%02d.%03d", tmv.tm_hour, tmv.tm_min, tmv.tm_sec, Int(tv.tv_usec / 1000))
    // write(2), not FileHandle: a closed stdout (a parent killed with SIGKILL) must not trap the role. Through
    // TerminalLine so a progress line on the same terminal stays one line below the log.
    TerminalLine.log("\(stamp) \(message)\n")
}

package func unixTimeMs() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

extension RunConfig {
    /// The policy architecture of this run.
    package var gptConfig: GPTConfig {
        GPTConfig(vocabSize: model.vocabSize, contextLength: model.contextLength, layers: model.layers,
                  heads: model.heads, dim: model.dim)
    }

    /// Sampling settings actors use for BoN groups.
    package var samplingConfig: SamplingConfig {
        SamplingConfig(temperature: Float(sampling.temperature), topK: sampling.topK, topP: Float(sampling.topP),
                       maxNewTokens: sampling.maxNewTokens)
    }
}

/// FNV-1a over the layout's names and shapes: actors reject parameters whose layout differs from their model's.
package func layoutHash(_ layout: ParameterLayout) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    func eat(_ s: String) { for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 } }
    for e in layout.entries { eat(e.name); eat(":"); eat(e.shape.map(String.init).joined(separator: "x")); eat(";") }
    return h
}

/// Milliseconds → Duration.
package func ms(_ x: Int) -> Duration { .milliseconds(x) }

// MARK: ports on this machine (bonfire local, tests)

/// True when nothing listens on 127.0.0.1:port (we can bind it).
package func portIsFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var one: Int32 = 1  // as ZeroMQ binds: SO_REUSEADDR, so TIME_WAIT leftovers of a finished run do not count
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// `count` distinct ports the kernel hands out for 127.0.0.1 right now (all held open until all are chosen).
package func freePorts(_ count: Int) -> [Int] {
    var fds: [Int32] = []
    defer { fds.forEach { close($0) } }
    return (0..<count).map { _ in
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        fds.append(fd)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
