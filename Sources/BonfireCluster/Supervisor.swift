// Supervisor: runs the roles of a job as child OS processes and leaves none behind (what `bonfire local` uses).
//
// - Each child is started with posix_spawn in its own process group, stdin from /dev/null, stdout+stderr into
//   one pipe; every line it prints is written to our output as "[name] line" (and raw to logs/<name>.log when a
//   log directory is given).
// - SIGINT/SIGTERM sent to us (Ctrl-C) are forwarded once to every child's process group; a second one sends
//   SIGKILL at once. Children get `gracePeriod` seconds to stop, then SIGKILL. The same happens when a required
//   child fails, and when every required child has exited (the job is over, optional children are stopped).
// - Each exit is reported with the child's name and status; run() returns 0 when all required children exited
//   0, 1 when one failed, 128+signal when we were interrupted and nothing failed.
// - Optional (required: false) children may fail without stopping the job (a dead actor; the run continues).
// - A child with a `RestartPolicy` that fails (outside shutdown) is started again after a backoff that doubles per
//   consecutive failure up to a cap, with `BONFIRE_INCARNATION` = its restart count and the policy's extra
//   arguments (the learner: --resume); its failure does not stop the job — unless it keeps failing at start-up
//   (`maxStartupFailures` runs in a row shorter than `healthyAfterSeconds`: a config error or a missing file fails
//   the same way every time), which ends the job as a required child's failure does, instead of restarting forever.
// - kill(name:signal:), restart(name:) and requestShutdown(signal:) may be called from other threads while run()
//   blocks: the fault tests SIGKILL an actor and restart it.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

package struct ChildSpec: Sendable, Equatable {
    /// Tag of its log lines, e.g. "coordinator", "learner", "actor-0".
    package var name: String
    /// Path (or a name looked up in PATH).
    package var executable: String
    package var arguments: [String]
    /// A required child's failure stops the job and makes run() return non-zero.
    package var required: Bool
    /// Extra environment variables (added to ours).
    package var environment: [String: String]
    /// This child's successful exit ends the job: the others are stopped (SIGTERM, then SIGKILL after the grace
    /// period) and their stopping counts as success. `bonfire local` marks the coordinator, which exits 0 when the
    /// run is finished; an actor that has not registered yet would otherwise wait for a coordinator that is gone.
    package var endsJob: Bool

    /// Started again when it fails (nil: never).
    package var restart: RestartPolicy?

    package init(name: String, executable: String, arguments: [String] = [], required: Bool = true,
                 environment: [String: String] = [:], endsJob: Bool = false, restart: RestartPolicy? = nil) {
        self.name = name; self.executable = executable; self.arguments = arguments
        self.required = required; self.environment = environment; self.endsJob = endsJob; self.restart = restart
    }
}

/// When and how a failed child is started again.
package struct RestartPolicy: Sendable, Equatable {
    /// First delay; doubles per consecutive failure. Default 500 ms.
    package var initialDelayMs = 500
    /// Delay cap. Default 10 s.
    package var maxDelayMs = 10_000
    /// Arguments appended on a restart (the learner: ["--resume"]).
    package var extraArguments: [String] = []
    /// A run shorter than this that ends in a failure is a start-up failure. Default 30 s.
    package var healthyAfterSeconds = 30.0
    /// Start-up failures in a row after which the child is not started again (≥ 1). Default 5.
    package var maxStartupFailures = 5

    package init(initialDelayMs: Int = 500, maxDelayMs: Int = 10_000, extraArguments: [String] = [],
                 healthyAfterSeconds: Double = 30, maxStartupFailures: Int = 5) {
        precondition(maxStartupFailures >= 1, "RestartPolicy: maxStartupFailures must be ≥ 1, got \(maxStartupFailures)")
        self.initialDelayMs = initialDelayMs; self.maxDelayMs = maxDelayMs; self.extraArguments = extraArguments
        self.healthyAfterSeconds = healthyAfterSeconds; self.maxStartupFailures = maxStartupFailures
    }

    /// Delay before restart number `failures` (1 = first restart).
    package func delayMs(afterFailures failures: Int) -> Int {
        var d = initialDelayMs
        for _ in 1..<max(1, failures) { d = min(maxDelayMs, d * 2) }
        return min(maxDelayMs, d)
    }

    /// What follows the failure `exit` of a child that ran `ranSeconds`, after `failures` consecutive failures and
    /// `startupFailures` start-up failures in a row before it. A run that got past start-up starts both counts
    /// afresh (the backoff of a role that fails once an hour stays at its first delay). Only the child's own ends
    /// count as start-up failures — a non-zero status or a crash signal (a trap, an abort, a bad access); a
    /// SIGKILL, SIGTERM, SIGINT or SIGHUP comes from outside (an operator, the OOM killer, a chaos test) and leaves
    /// the count as it was.
    package func afterFailure(_ exit: ChildExit, ranSeconds: Double, failures: Int,
                              startupFailures: Int) -> RestartDecision {
        let healthy = ranSeconds >= healthyAfterSeconds
        let f = healthy ? 1 : failures + 1
        let sf = healthy ? 0 : (exit.isFromOutside ? startupFailures : startupFailures + 1)
        if sf >= maxStartupFailures { return RestartDecision(failures: f, startupFailures: sf, delayMs: nil) }
        return RestartDecision(failures: f, startupFailures: sf, delayMs: delayMs(afterFailures: f))
    }
}

/// `RestartPolicy.afterFailure`: the child's new counts, and the delay before starting it again (nil: give up).
package struct RestartDecision: Equatable, Sendable {
    package var failures: Int
    package var startupFailures: Int
    package var delayMs: Int?
    package init(failures: Int, startupFailures: Int, delayMs: Int?) {
        self.failures = failures; self.startupFailures = startupFailures; self.delayMs = delayMs
    }
}

/// How a child ended.
package enum ChildExit: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)
    /// posix_spawn failed (errno).
    case couldNotStart(Int32)

    package var isSuccess: Bool { self == .exited(0) }
    /// Ended by a signal another process sends to stop it (SIGKILL, SIGTERM, SIGINT, SIGHUP), not by itself.
    package var isFromOutside: Bool {
        if case .signalled(let s) = self { return [SIGKILL, SIGTERM, SIGINT, SIGHUP].contains(s) }
        return false
    }

    package var description: String {
        switch self {
        case .exited(let c): return "exited with status \(c)"
        case .signalled(let s): return "killed by signal \(s) (\(signalName(s)))"
        case .couldNotStart(let e): return "could not start: \(String(cString: strerror(e)))"
        }
    }
}

package func signalName(_ s: Int32) -> String {
    switch s {
    case SIGINT: return "SIGINT"
    case SIGTERM: return "SIGTERM"
    case SIGKILL: return "SIGKILL"
    case SIGHUP: return "SIGHUP"
    case SIGSEGV: return "SIGSEGV"
    case SIGABRT: return "SIGABRT"
    case SIGILL: return "SIGILL"
    case SIGBUS: return "SIGBUS"
    case SIGFPE: return "SIGFPE"
    case SIGPIPE: return "SIGPIPE"
    case SIGTRAP: return "SIGTRAP"
    case SIGQUIT: return "SIGQUIT"
    default: return "signal \(s)"
    }
}

// Signal handler state: one supervisor at a time owns SIGINT/SIGTERM.
nonisolated(unsafe) private var supervisorWakeFD: Int32 = -1
nonisolated(unsafe) private var supervisorPendingSignal: sig_atomic_t = 0

private func supervisorSignalHandler(_ sig: Int32) {
    supervisorPendingSignal = sig
    var b = UInt8(truncatingIfNeeded: sig)
    _ = write(supervisorWakeFD, &b, 1)
}

package final class Supervisor: @unchecked Sendable {
    package let specs: [ChildSpec]
    /// Seconds children get to stop after SIGTERM/SIGINT before SIGKILL.
    package let gracePeriod: Double
    package let handleSignals: Bool
    private let output: @Sendable (String) -> Void
    private let logDirectory: URL?

    private struct Child {
        var spec: ChildSpec
        var pid: pid_t = 0          // 0: not running
        var fd: Int32 = -1          // read end of its output pipe
        var partial: [UInt8] = []
        var logFD: Int32 = -1
        /// Restarts so far (BONFIRE_INCARNATION) and consecutive failures (the backoff).
        var incarnation = 0
        var failures = 0
        /// Failures in a row that came before the child ran `RestartPolicy.healthyAfterSeconds`.
        var startupFailures = 0
        /// When the running child was started (monotonic seconds).
        var startedAt = 0.0
        /// When a scheduled restart is due (monotonic seconds), nil = none.
        var restartAt: Double? = nil
    }

    private let lock = NSLock()
    // Shared with other threads (under lock).
    private var pids: [String: pid_t] = [:]
    private var history: [String: [ChildExit]] = [:]
    private var pendingRestarts: [String] = []
    private var pendingShutdown: Int32? = nil
    private var running = false
    // Wake pipe: other threads and the signal handler write one byte to interrupt poll().
    private var wake: [Int32] = [-1, -1]

    /// - Parameters:
    ///   - output: receives each prefixed line (without newline); default writes it to stdout.
    ///   - logDirectory: when set, each child's raw lines are appended to <dir>/<name>.log.
    package init(children: [ChildSpec], gracePeriod: Double = 10, handleSignals: Bool = true,
                 logDirectory: URL? = nil, output: (@Sendable (String) -> Void)? = nil) {
        precondition(Set(children.map(\.name)).count == children.count,
                     "Supervisor: child names must be unique, got \(children.map(\.name))")
        self.specs = children
        self.gracePeriod = gracePeriod
        self.handleSignals = handleSignals
        self.logDirectory = logDirectory
        self.output = output ?? { line in
            let bytes = Array((line + "\n").utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
                if n < 0 { if errno == EINTR { continue }; return }
                off += n
            }
        }
    }

    // MARK: Control from other threads

    /// Sends `signal` to the child's process group; false when it is not running.
    @discardableResult
    package func kill(name: String, signal: Int32) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard let pid = pids[name], pid > 0 else { return false }
        return Self.signalGroup(pid, signal)
    }

    /// Starts the child again (SIGKILLs it first if it still runs). Ignored during shutdown.
    package func restart(name: String) {
        precondition(specs.contains { $0.name == name }, "Supervisor.restart: no child named \(name)")
        lock.lock(); pendingRestarts.append(name); lock.unlock()
        poke()
    }

    /// Same as receiving `signal` (SIGINT/SIGTERM): forward, wait gracePeriod, SIGKILL.
    package func requestShutdown(signal: Int32 = SIGTERM) {
        lock.lock(); pendingShutdown = signal; lock.unlock()
        poke()
    }

    /// Pid of a running child.
    package func pid(of name: String) -> pid_t? {
        lock.lock(); defer { lock.unlock() }
        return pids[name].flatMap { $0 > 0 ? $0 : nil }
    }

    /// Every exit of each child so far, in order.
    package func exits(of name: String) -> [ChildExit] {
        lock.lock(); defer { lock.unlock() }
        return history[name] ?? []
    }

    private func poke() {
        lock.lock(); let fd = wake[1]; lock.unlock()
        if fd >= 0 { var b: UInt8 = 0; _ = write(fd, &b, 1) }
    }

    private func say(_ s: String) { output("[supervisor] " + s) }

    private static func signalGroup(_ pid: pid_t, _ sig: Int32) -> Bool {
        if Glibc.kill(-pid, sig) == 0 { return true }
        return Glibc.kill(pid, sig) == 0
    }

    /// pipe(2) with FD_CLOEXEC on both ends (pipe2 is not visible from Swift's Glibc module).
    private static func makePipe(_ fds: inout [Int32], nonBlocking: Bool) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            if nonBlocking { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        }
        return true
    }

    private static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    // MARK: Run

    /// Starts every child and blocks until all have exited. Returns the exit code for our process.
    package func run() -> Int32 {
        lock.lock()
        precondition(!running, "Supervisor.run: already running")
        running = true
        var p: [Int32] = [-1, -1]
        guard Self.makePipe(&p, nonBlocking: true) else {
            lock.unlock()
            say("cannot create a pipe: \(String(cString: strerror(errno)))")
            return 1
        }
        wake = p
        lock.unlock()

        var oldInt = sigaction(), oldTerm = sigaction(), oldPipe = sigaction()
        if handleSignals {
            supervisorWakeFD = p[1]
            supervisorPendingSignal = 0
            var sa = sigaction()
            sa.__sigaction_handler.sa_handler = supervisorSignalHandler
            sigemptyset(&sa.sa_mask)
            sa.sa_flags = SA_RESTART
            sigaction(SIGINT, &sa, &oldInt)
            sigaction(SIGTERM, &sa, &oldTerm)
            var ign = sigaction()
            ign.__sigaction_handler.sa_handler = SIG_IGN
            sigaction(SIGPIPE, &ign, &oldPipe)
        }
        defer {
            if handleSignals {
                sigaction(SIGINT, &oldInt, nil)
                sigaction(SIGTERM, &oldTerm, nil)
                sigaction(SIGPIPE, &oldPipe, nil)
                supervisorWakeFD = -1
            }
            lock.lock()
            close(wake[0]); close(wake[1]); wake = [-1, -1]
            running = false
            lock.unlock()
        }

        var children = specs.map { Child(spec: $0) }
        var failedRequired: [String] = []
        for i in children.indices where !spawn(&children[i]) && children[i].spec.required {
            failedRequired.append(children[i].spec.name)
        }

        var shutdownDeadline: Double? = nil
        var killedAll = false
        var sentSignal: Int32 = SIGTERM
        var interruptedBy: Int32? = nil

        func beginShutdown(_ sig: Int32, reason: String) {
            guard shutdownDeadline == nil else { return }
            sentSignal = sig
            shutdownDeadline = Self.now() + gracePeriod
            let live = children.filter { $0.pid > 0 }.map(\.spec.name)
            if !live.isEmpty {
                say("\(reason); sending \(signalName(sig)) to \(live.joined(separator: ", "))")
            }
            for c in children where c.pid > 0 { _ = Self.signalGroup(c.pid, sig) }
        }

        if !failedRequired.isEmpty { beginShutdown(SIGTERM, reason: "required role \(failedRequired[0]) did not start") }

        while true {
            // Poll the wake pipe and every open output pipe.
            var pfds = [pollfd(fd: p[0], events: Int16(POLLIN), revents: 0)]
            var owners: [Int] = []
            for (i, c) in children.enumerated() where c.fd >= 0 {
                pfds.append(pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0))
                owners.append(i)
            }
            _ = poll(&pfds, nfds_t(pfds.count), 50)

            // Wake pipe: drain.
            var sink = [UInt8](repeating: 0, count: 64)
            while read(p[0], &sink, sink.count) > 0 {}

            // Signals and requests.
            var requested: Int32? = nil
            if handleSignals && supervisorPendingSignal != 0 {
                requested = Int32(supervisorPendingSignal)
                supervisorPendingSignal = 0
                interruptedBy = requested
            }
            lock.lock()
            if let s = pendingShutdown { requested = requested ?? s; pendingShutdown = nil }
            let restarts = pendingRestarts
            pendingRestarts = []
            lock.unlock()
            if let sig = requested {
                if shutdownDeadline == nil {
                    beginShutdown(sig, reason: "received \(signalName(sig))")
                } else if !killedAll {
                    say("second \(signalName(sig)): sending SIGKILL")
                    for c in children where c.pid > 0 { _ = Self.signalGroup(c.pid, SIGKILL) }
                    killedAll = true
                }
            }

            // Output.
            for (k, pfd) in pfds.dropFirst().enumerated() where pfd.revents != 0 {
                drain(&children[owners[k]])
            }

            // Reap.
            for i in children.indices where children[i].pid > 0 {
                var status: Int32 = 0
                let r = waitpid(children[i].pid, &status, WNOHANG)
                guard r == children[i].pid else { continue }
                let exit: ChildExit = (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
                reaped(&children[i], exit)
                let c = children[i]
                // Expected ends during shutdown: status 0, our signal, or the 128+signal convention.
                let expected = exit.isSuccess || (shutdownDeadline != nil && (exit == .signalled(sentSignal)
                    || exit == .signalled(SIGKILL) || exit == .exited(128 + sentSignal)))
                if expected {
                    say("\(c.spec.name) \(exit)")
                    if exit.isSuccess, c.spec.endsJob {
                        beginShutdown(SIGTERM, reason: "\(c.spec.name) finished the job")
                    }
                } else if let policy = c.spec.restart, shutdownDeadline == nil {
                    let ran = Self.now() - c.startedAt
                    let d = policy.afterFailure(exit, ranSeconds: ran, failures: c.failures,
                                                startupFailures: c.startupFailures)
                    children[i].failures = d.failures
                    children[i].startupFailures = d.startupFailures
                    if let delay = d.delayMs {
                        children[i].restartAt = Self.now() + Double(delay) / 1000
                        say("\(c.spec.name) FAILED: \(exit); restarting it in \(delay) ms (failure \(d.failures))")
                    } else {
                        say("\(c.spec.name) FAILED: \(exit); \(d.startupFailures) times in a row within "
                            + String(format: "%.0f", policy.healthyAfterSeconds) + " s of starting, so not restarting it "
                            + "(it fails the same way each time: see its error above — a config value or a missing file?)")
                        failedRequired.append(c.spec.name)
                        beginShutdown(SIGTERM, reason: "\(c.spec.name) keeps failing at start-up")
                    }
                } else if c.spec.required {
                    say("\(c.spec.name) FAILED: \(exit) (required role)")
                    failedRequired.append(c.spec.name)
                    beginShutdown(SIGTERM, reason: "required role \(c.spec.name) failed")
                } else {
                    say("\(c.spec.name) failed: \(exit); the job continues without it")
                }
            }
            // Every required child done → stop the optional ones.
            if shutdownDeadline == nil, specs.contains(where: \.required),
               !children.contains(where: { $0.spec.required && $0.pid > 0 }),
               !children.contains(where: { $0.restartAt != nil }), restarts.isEmpty {
                beginShutdown(SIGTERM, reason: "all required roles have exited")
            }

            // Scheduled restarts of failed children (restart policy).
            for i in children.indices {
                guard let at = children[i].restartAt, Self.now() >= at else { continue }
                children[i].restartAt = nil
                guard shutdownDeadline == nil else { continue }
                children[i].incarnation += 1
                say("restarting \(children[i].spec.name) (incarnation \(children[i].incarnation))")
                _ = spawn(&children[i])
            }

            // Restarts (not during shutdown).
            for name in restarts {
                guard let i = children.firstIndex(where: { $0.spec.name == name }) else { continue }
                guard shutdownDeadline == nil else {
                    say("not restarting \(name): shutting down"); continue
                }
                if children[i].pid > 0 {
                    _ = Self.signalGroup(children[i].pid, SIGKILL)
                    var status: Int32 = 0
                    while waitpid(children[i].pid, &status, 0) < 0 && errno == EINTR {}
                    reaped(&children[i], .signalled(SIGKILL))
                }
                say("restarting \(name)")
                if !spawn(&children[i]) && children[i].spec.required {
                    failedRequired.append(name)
                    beginShutdown(SIGTERM, reason: "required role \(name) did not restart")
                }
            }

            // Grace period over → SIGKILL.
            if let deadline = shutdownDeadline, !killedAll, Self.now() >= deadline {
                let live = children.filter { $0.pid > 0 }
                if !live.isEmpty {
                    say("\(live.map(\.spec.name).joined(separator: ", ")) still running after "
                        + "\(gracePeriod) s; sending SIGKILL")
                    for c in live { _ = Self.signalGroup(c.pid, SIGKILL) }
                }
                killedAll = true
            }

            if !children.contains(where: { $0.pid > 0 }) {
                lock.lock()
                let more = (!pendingRestarts.isEmpty || children.contains { $0.restartAt != nil }) && shutdownDeadline == nil
                lock.unlock()
                if !more { break }
            }
        }

        for i in children.indices {
            if children[i].fd >= 0 { drain(&children[i]); closeOutput(&children[i]) }
            if children[i].logFD >= 0 { close(children[i].logFD); children[i].logFD = -1 }
        }
        if !failedRequired.isEmpty {
            say("failed: \(failedRequired.joined(separator: ", "))")
            return 1
        }
        if let sig = interruptedBy { return 128 + sig }
        return 0
    }

    // MARK: Children

    /// Starts the child; false (reported and recorded as `.couldNotStart`) when it could not be started.
    @discardableResult
    private func spawn(_ c: inout Child) -> Bool {
        var fds: [Int32] = [-1, -1]
        guard Self.makePipe(&fds, nonBlocking: false) else {
            record(c.spec.name, .couldNotStart(errno), pid: 0)
            say("cannot start \(c.spec.name): pipe: \(String(cString: strerror(errno)))")
            return false
        }
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1)
        posix_spawn_file_actions_adddup2(&fa, fds[1], 2)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setpgroup(&attr, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attr, &mask)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        var env = ProcessInfo.processInfo.environment
        for (k, v) in c.spec.environment { env[k] = v }
        env["BONFIRE_INCARNATION"] = String(c.incarnation)
        env["BONFIRE_SUPERVISOR_PID"] = String(getpid())
        let extra = c.incarnation > 0 ? (c.spec.restart?.extraArguments ?? []) : []
        let argv: [UnsafeMutablePointer<CChar>?] = ([c.spec.executable] + c.spec.arguments + extra).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }

        var pid: pid_t = 0
        let rc = c.spec.executable.contains("/")
            ? posix_spawn(&pid, c.spec.executable, &fa, &attr, argv, envp)
            : posix_spawnp(&pid, c.spec.executable, &fa, &attr, argv, envp)
        close(fds[1])
        if rc != 0 {
            close(fds[0])
            record(c.spec.name, .couldNotStart(rc), pid: 0)
            say("cannot start \(c.spec.name) (\(c.spec.executable)): \(String(cString: strerror(rc)))")
            return false
        }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        c.pid = pid
        c.startedAt = Self.now()
        c.fd = fds[0]
        c.partial = []
        if c.logFD < 0, let dir = logDirectory {
            try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            c.logFD = open(dir.appendingPathComponent(c.spec.name + ".log").path,
                           O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        }
        lock.lock(); pids[c.spec.name] = pid; lock.unlock()
        return true
    }

    private func record(_ name: String, _ exit: ChildExit, pid: pid_t) {
        lock.lock()
        history[name, default: []].append(exit)
        pids[name] = pid
        lock.unlock()
    }

    private func reaped(_ c: inout Child, _ exit: ChildExit) {
        // Whatever the child wrote before exiting is in the pipe now; grandchildren may keep it open, so do not
        // wait for EOF. Then kill leftovers of its process group.
        drain(&c)
        closeOutput(&c)
        _ = Glibc.kill(-c.pid, SIGKILL)
        c.pid = 0
        record(c.spec.name, exit, pid: 0)
    }

    /// Reads everything available and emits complete lines.
    private func drain(_ c: inout Child) {
        guard c.fd >= 0 else { return }
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(c.fd, &buf, buf.count)
            if n > 0 {
                c.partial.append(contentsOf: buf[0..<n])
                emitLines(&c, final: false)
                continue
            }
            if n == 0 { closeOutput(&c) }              // EOF
            else if errno == EINTR { continue }
            return
        }
    }

    private func closeOutput(_ c: inout Child) {
        emitLines(&c, final: true)
        if c.fd >= 0 { close(c.fd); c.fd = -1 }
    }

    private func emitLines(_ c: inout Child, final: Bool) {
        while let nl = c.partial.firstIndex(of: UInt8(ascii: "\n")) {
            emit(c, Array(c.partial[..<nl]))
            c.partial.removeSubrange(...nl)
        }
        if final && !c.partial.isEmpty {
            emit(c, c.partial)
            c.partial = []
        }
    }

    private func emit(_ c: Child, _ bytes: [UInt8]) {
        let line = String(decoding: bytes, as: UTF8.self)
        output("[\(c.spec.name)] " + line)
        if c.logFD >= 0 {
            let raw = Array((line + "\n").utf8)
            _ = raw.withUnsafeBytes { write(c.logFD, $0.baseAddress, $0.count) }
        }
    }
}
