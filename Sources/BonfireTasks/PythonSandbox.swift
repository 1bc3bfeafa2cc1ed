// Runs an untrusted Python program (a HumanEval-style completion plus its unit tests) in a sandboxed subprocess and
// says whether the tests passed, and if not why.
//
// Each run:
//   - makes a fresh temporary directory (mode 0700; owned by `nobody` when we run as root), writes `program.py` and a
//     one-time random nonce there, and removes the whole directory afterwards, whatever happened;
//   - spawns, in a new process group, `unshare --net --pid --fork --kill-child` (when available: we are root and the
//     probe run at init worked) → no network interfaces but a down loopback, and every process the program starts
//     dies with it; without unshare the program runs with the host network (reported by `isolation`);
//   - the child is `python3 -I -c WRAPPER`: the wrapper reads the program and the nonce (deleting the nonce file),
//     sets hard rlimits (address space = memory limit, CPU seconds = time limit + 1, file size, 64 open files, no
//     core), drops to uid/gid 65534 (nobody) when root, limits the number of processes (RLIMIT_NPROC, effective once
//     not root: bounds fork bombs), chdirs into the temporary directory, compiles (syntax errors → exit 3) and
//     executes the program (AssertionError → 4, MemoryError → 5, file too large → 7, any other exception including
//     SystemExit → 6), flushes its output, then prints the nonce: a program that exits early with status 0 (`os._exit(0)`) does not pass;
//   - waits at most `timeLimit` seconds of wall time, then SIGKILLs the whole process group (and the PID namespace
//     dies with its first process); stdout/stderr go to files in the directory, read back truncated.
// Containment limits (documented, not hidden): files outside the temporary directory are protected by the `nobody`
// uid (world-writable places like /tmp stay writable); without root there is no uid drop, no network namespace,
// and RLIMIT_NPROC counts all of the user's processes. The verdict is not tamper-proof against a program that
// introspects the wrapper (its frames hold the nonce); the sandbox contains effects, it is not an adversarial grader.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

package enum SandboxFailure: String, Codable, Sendable, Equatable {
    case syntax          // the program does not compile
    case exception       // an uncaught exception other than AssertionError/MemoryError, a crash, or an early exit
    case timeout         // wall-clock or CPU limit
    case wrongAnswer     // an AssertionError: a unit test failed
    case memory          // MemoryError under the address-space limit
    case outputLimit     // the file-size limit (SIGXFSZ)
    case sandboxError    // the sandbox itself failed (spawn, temp dir): not the program's fault
}

package struct SandboxResult: Sendable, Equatable {
    package var passed: Bool
    package var failure: SandboxFailure?
    /// A short reason ("AssertionError: …", "timeout after 2.0 s"); empty when passed.
    package var detail: String
    package var seconds: Double
    package var stdout: String
    package var stderr: String
}

package struct SandboxLimits: Sendable, Equatable {
    /// Wall-clock seconds for the whole run (Python start-up included). Default 5.
    package var timeLimit: Double = 5
    /// Address-space limit in bytes. Default 512 MiB.
    package var memoryBytes: Int = 512 << 20
    /// Maximum processes of the sandbox uid (RLIMIT_NPROC). Default 16.
    package var maxProcesses: Int = 16
    /// Largest file the program may write, bytes. Default 16 MiB.
    package var maxFileBytes: Int = 16 << 20
    /// stdout/stderr kept per run, bytes. Default 16 KiB.
    package var maxCapturedBytes: Int = 16 << 10
    package init(timeLimit: Double = 5, memoryBytes: Int = 512 << 20, maxProcesses: Int = 16,
                 maxFileBytes: Int = 16 << 20, maxCapturedBytes: Int = 16 << 10) {
        self.timeLimit = timeLimit; self.memoryBytes = memoryBytes; self.maxProcesses = maxProcesses
        self.maxFileBytes = maxFileBytes; self.maxCapturedBytes = maxCapturedBytes
    }
}

package struct SandboxError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

package struct PythonSandbox: Sendable {
    package enum Isolation: String, Sendable { case namespaces, none }

    package let python: String
    package let limits: SandboxLimits
    package let isolation: Isolation
    private let unshare: String?

    /// Finds a Python 3 interpreter (the given path, else /usr/bin/python3, /usr/local/bin/python3, then python3 on
    /// PATH resolved to its real executable) and checks with a probe run that the sandbox works. Throws a clear
    /// error when there is no usable Python: the code checker never silently scores R = 0.
    package init(python explicitPython: String? = nil, limits: SandboxLimits = SandboxLimits()) throws {
        guard limits.timeLimit > 0, limits.timeLimit.isFinite, limits.memoryBytes >= 64 << 20,
              limits.maxProcesses >= 1, limits.maxFileBytes >= 4096, limits.maxCapturedBytes >= 0 else {
            throw SandboxError(message: "python sandbox: invalid limits \(limits) (time > 0, memory ≥ 64 MiB, "
                               + "processes ≥ 1, file size ≥ 4096)")
        }
        self.limits = limits
        var candidates: [String] = []
        if let explicitPython { candidates = [explicitPython] } else {
            candidates = ["/usr/bin/python3", "/usr/local/bin/python3"]
            if let onPath = PythonSandbox.which("python3") {
                candidates.append(PythonSandbox.realExecutable(onPath) ?? onPath)
            }
        }
        let unshareTool = getuid() == 0 ? PythonSandbox.which("unshare") : nil
        var problems: [String] = []
        var probeLimits = limits
        probeLimits.timeLimit = max(limits.timeLimit, 10)
        probeLimits.memoryBytes = max(limits.memoryBytes, 256 << 20)
        let tools: [String?] = unshareTool == nil ? [nil] : [unshareTool, nil]
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            for tool in tools {
                let probe = PythonSandbox(python: candidate, limits: probeLimits, unshare: tool)
                let r = probe.run(program: "import math, json, collections, itertools, re\nassert math.gcd(4, 6) == 2\n")
                if r.passed {
                    self.python = candidate
                    self.unshare = tool
                    self.isolation = tool == nil ? .none : .namespaces
                    return
                }
                problems.append("\(candidate)\(tool == nil ? "" : " (with unshare)"): \(r.failure?.rawValue ?? "?") "
                                + "\(r.detail) \(r.stderr.suffix(200))")
            }
        }
        throw SandboxError(message: "python sandbox: no usable Python 3 interpreter for the code checker "
            + (problems.isEmpty ? "(none of \(candidates) exists; install python3, e.g. apt-get install python3, or "
               + "pass its path)" : "(\(problems.joined(separator: "; ")))"))
    }

    private init(python: String, limits: SandboxLimits, unshare: String?) {
        self.python = python; self.limits = limits; self.unshare = unshare
        self.isolation = unshare == nil ? .none : .namespaces
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// `python3 -c 'import sys; print(sys.executable)'` (pyenv shims are shell scripts needing the user's env).
    static func realExecutable(_ python: String) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", "import sys; print(sys.executable)"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        do { try p.run() } catch { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let s = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return p.terminationStatus == 0 && !s.isEmpty ? s : nil
    }

    static let wrapper = """
    import os, sys, resource as R
    def _bonfire_exit(code, message=None):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        if message is not None:
            try:
                os.write(2, ("\\nBONFIRE " + message[:300] + "\\n").encode("utf-8", "replace"))
            except BaseException:
                pass
        os._exit(code)
    def _bonfire_main():
        d, mem, cpu, fsize, nproc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
        os.chdir(d)
        with open("nonce") as f:
            nonce = f.read().strip()
        os.unlink("nonce")
        with open("program.py", encoding="utf-8", errors="replace") as f:
            src = f.read()
        R.setrlimit(R.RLIMIT_AS, (mem, mem))
        R.setrlimit(R.RLIMIT_CPU, (cpu, cpu + 1))
        R.setrlimit(R.RLIMIT_FSIZE, (fsize, fsize))
        R.setrlimit(R.RLIMIT_NOFILE, (64, 64))
        R.setrlimit(R.RLIMIT_CORE, (0, 0))
        if os.getuid() == 0:
            os.setgroups([]); os.setgid(65534); os.setuid(65534)
        R.setrlimit(R.RLIMIT_NPROC, (nproc, nproc))
        os.environ.clear(); os.environ.update({"HOME": d, "TMPDIR": d, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
        try:
            code = compile(src, "program.py", "exec")
        except BaseException as e:
            _bonfire_exit(3, "%s: %s" % (type(e).__name__, e))
        g = {"__name__": "__main__", "__builtins__": __builtins__}
        try:
            exec(code, g)
        except MemoryError:
            _bonfire_exit(5)
        except AssertionError as e:
            _bonfire_exit(4, "AssertionError: %s" % (e,))
        except OSError as e:
            _bonfire_exit(7 if e.errno == 27 else 6, "%s: %s" % (type(e).__name__, e))
        except BaseException as e:
            try:
                m = "%s: %s" % (type(e).__name__, e)
            except BaseException:
                m = "exception"
            _bonfire_exit(6, m)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os.write(1, ("\\n" + nonce + "\\n").encode())
        os._exit(0)
    _bonfire_main()
    """

    /// Runs `program`; never throws, never traps: sandbox problems come back as `.sandboxError`.
    package func run(program: String) -> SandboxResult {
        let start = Date()
        func fail(_ f: SandboxFailure, _ detail: String, out: String = "", err: String = "") -> SandboxResult {
            SandboxResult(passed: false, failure: f, detail: detail, seconds: Date().timeIntervalSince(start),
                          stdout: out, stderr: err)
        }
        var template = Array((NSTemporaryDirectory() + "/bonfire-sandbox-XXXXXX").utf8CString)
        guard let dirPtr = mkdtemp(&template) else { return fail(.sandboxError, "mkdtemp failed: errno \(errno)") }
        let dir = String(cString: dirPtr)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var nonceBytes = [UInt8](repeating: 0, count: 16)
        for i in nonceBytes.indices { nonceBytes[i] = UInt8.random(in: 0...255) }
        let nonce = "BONFIRE-OK-" + nonceBytes.map { String($0, radix: 16) }.joined()
        do {
            try Data(program.utf8).write(to: URL(fileURLWithPath: dir + "/program.py"))
            try Data(nonce.utf8).write(to: URL(fileURLWithPath: dir + "/nonce"))
        } catch { return fail(.sandboxError, "cannot write to \(dir): \(error)") }
        chmod(dir + "/nonce", 0o600)
        if getuid() == 0 { _ = chown(dir, 65534, 65534) }
        let outPath = dir + "/stdout", errPath = dir + "/stderr"
        let cpu = Int(limits.timeLimit.rounded(.up)) + 1
        var args: [String] = []
        if let unshare { args = [unshare, "--net", "--pid", "--fork", "--kill-child"] }
        args += [python, "-I", "-c", PythonSandbox.wrapper, dir, String(limits.memoryBytes), String(cpu),
                 String(limits.maxFileBytes), String(limits.maxProcesses)]
        let env = ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1", "PYTHONHASHSEED=0"]

        var pid: pid_t = 0
        var attr = posix_spawnattr_t()
        var actions = posix_spawn_file_actions_t()
        posix_spawnattr_init(&attr)
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawnattr_destroy(&attr); posix_spawn_file_actions_destroy(&actions) }
        posix_spawnattr_setpgroup(&attr, 0)
        var defaults = sigset_t(); sigfillset(&defaults)
        var mask = sigset_t(); sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setsigmask(&attr, &mask)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let cArgs = args.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
        let rc = posix_spawn(&pid, args[0], &actions, &attr, cArgs, cEnv)
        guard rc == 0 else { return fail(.sandboxError, "posix_spawn \(args[0]) failed: \(String(cString: strerror(rc)))") }

        // Wait with a wall-clock deadline; on timeout kill the whole process group.
        var status: Int32 = 0
        var timedOut = false
        let deadline = start.addingTimeInterval(limits.timeLimit)
        while true {
            let w = waitpid(pid, &status, WNOHANG)
            if w == pid { break }
            if w < 0 && errno != EINTR { break }
            if Date() >= deadline {
                timedOut = true
                kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            usleep(2000)
        }
        kill(-pid, SIGKILL)   // stragglers left in the group (the PID namespace is already gone with its init)
        let out = readCapped(outPath), err = readCapped(errPath) + readTail(errPath)
        let seconds = Date().timeIntervalSince(start)
        func result(_ f: SandboxFailure?, _ detail: String) -> SandboxResult {
            SandboxResult(passed: f == nil, failure: f, detail: detail, seconds: seconds, stdout: out, stderr: err)
        }
        if timedOut { return result(.timeout, String(format: "timeout after %.1f s (killed)", limits.timeLimit)) }
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        let signal = status & 0x7f
        let reason = err.split(separator: "\n").last(where: { $0.hasPrefix("BONFIRE ") }).map { String($0.dropFirst(8)) }
        if exited {
            switch code {
            case 0:
                if (out + readTail(outPath)).split(separator: "\n").last.map(String.init) == nonce { return result(nil, "") }
                return result(.exception, "exited with status 0 before the tests finished")
            case 3: return result(.syntax, reason ?? "syntax error")
            case 4: return result(.wrongAnswer, reason ?? "AssertionError")
            case 5: return result(.memory, "MemoryError (limit \(limits.memoryBytes >> 20) MiB)")
            case 7: return result(.outputLimit, reason ?? "file size limit")
            case 6:
                if let reason, reason.hasPrefix("MemoryError") { return result(.memory, reason) }
                return result(.exception, reason ?? "exception")
            default:
                if code == 128 + SIGXCPU || code == 128 + SIGKILL { return result(.timeout, "CPU time limit") }
                if code == 128 + SIGXFSZ { return result(.outputLimit, "file size limit") }
                if code >= 128 { return result(.exception, "killed by signal \(code - 128)") }
                return result(.exception, "exited with status \(code) before the tests finished")
            }
        }
        switch signal {
        case SIGXCPU, SIGKILL: return result(.timeout, "CPU time limit (signal \(signal))")
        case SIGXFSZ: return result(.outputLimit, "file size limit")
        default: return result(.exception, "killed by signal \(signal)")
        }
    }

    /// The last 512 bytes of a file (where the wrapper writes the nonce and the failure line).
    private func readTail(_ path: String) -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? h.close() }
        guard let end = try? h.seekToEnd(), end > UInt64(limits.maxCapturedBytes) else { return "" }
        try? h.seek(toOffset: end - min(end, 512))
        return String(decoding: (try? h.readToEnd()) ?? Data(), as: UTF8.self)
    }

    private func readCapped(_ path: String) -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? h.close() }
        let data: Data? = (try? h.read(upToCount: limits.maxCapturedBytes)) ?? nil
        return String(decoding: data ?? Data(), as: UTF8.self)
    }
}
