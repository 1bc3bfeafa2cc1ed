import Foundation
import XCTest
import BonfireTasks
#if canImport(Glibc)
import Glibc
#endif

/// The sandbox as an attacker would use it: each test runs a real python3 child with short limits.
final class PythonSandboxTests: XCTestCase {
    static let limits = SandboxLimits(timeLimit: 2, memoryBytes: 256 << 20, maxProcesses: 16, maxFileBytes: 1 << 20)
    static let shared: Result<PythonSandbox, Error> = Result { try PythonSandbox(limits: limits) }

    func sandbox() throws -> PythonSandbox { try Self.shared.get() }

    func testCorrectProgramPassesAndEarlyExitDoesNot() throws {
        let sb = try sandbox()
        let ok = sb.run(program: "def f(x):\n    return x + 1\nassert f(1) == 2\nprint('hello')\n")
        XCTAssertTrue(ok.passed, "\(ok)")
        XCTAssertNil(ok.failure)
        XCTAssertTrue(ok.stdout.hasPrefix("hello"))
        let early = sb.run(program: "import os\nos._exit(0)\nassert False\n")
        XCTAssertFalse(early.passed)
        XCTAssertEqual(early.failure, .exception, "\(early)")
        let fake = sb.run(program: "print('BONFIRE-OK-123')\nimport sys\nsys.exit(0)\n")
        XCTAssertEqual(fake.failure, .exception, "\(fake)")
    }

    func testFailureReasonsAreRecorded() throws {
        let sb = try sandbox()
        let syntax = sb.run(program: "def f(:\n  pass\n")
        XCTAssertEqual(syntax.failure, .syntax, "\(syntax)")
        XCTAssertTrue(syntax.detail.contains("SyntaxError"), syntax.detail)
        let nul = sb.run(program: "x = 1\u{0}\n")
        XCTAssertEqual(nul.failure, .syntax, "\(nul)")
        let wrong = sb.run(program: "assert 1 + 1 == 3, 'arithmetic'\n")
        XCTAssertEqual(wrong.failure, .wrongAnswer, "\(wrong)")
        XCTAssertTrue(wrong.detail.contains("arithmetic"), wrong.detail)
        let exc = sb.run(program: "1 // 0\n")
        XCTAssertEqual(exc.failure, .exception, "\(exc)")
        XCTAssertTrue(exc.detail.contains("ZeroDivisionError"), exc.detail)
        let rec = sb.run(program: "def f(n): return f(n + 1)\nf(0)\n")
        XCTAssertEqual(rec.failure, .exception, "\(rec)")
        let exit = sb.run(program: "import sys\nsys.exit(3)\n")
        XCTAssertEqual(exit.failure, .exception, "\(exit)")
    }

    func testInfiniteLoopTimesOutAndEveryProcessIsKilled() throws {
        let sb = try sandbox()
        let marker = "bonfire-sleeper-\(UInt64.random(in: 0...UInt64.max))"
        let program = """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "\(marker)"])
        while True:
            pass
        """
        let start = Date()
        let r = sb.run(program: program)
        XCTAssertEqual(r.failure, .timeout, "\(r)")
        XCTAssertLessThan(Date().timeIntervalSince(start), Self.limits.timeLimit + 3)
        // The child it started must be gone too (process group kill + PID namespace).
        var alive = true
        for _ in 0..<50 where alive {
            alive = Self.processes(containing: marker) > 0
            if alive { usleep(20_000) }
        }
        XCTAssertFalse(alive, "a process started by the sandboxed program survived the timeout")
    }

    static func processes(containing marker: String) -> Int {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        var n = 0
        for p in pids where p.allSatisfy(\.isNumber) {
            if let d = FileManager.default.contents(atPath: "/proc/\(p)/cmdline"),
               String(decoding: d, as: UTF8.self).contains(marker) { n += 1 }
        }
        return n
    }

    func testMemoryBombHitsTheMemoryLimit() throws {
        let sb = try sandbox()
        let big = sb.run(program: "x = bytearray(1 << 40)\n")
        XCTAssertEqual(big.failure, .memory, "\(big)")
        let grow = sb.run(program: "xs = []\nwhile True:\n    xs.append(' ' * (1 << 20))\n")
        XCTAssertEqual(grow.failure, .memory, "\(grow)")
    }

    func testNetworkConnectFails() throws {
        let sb = try sandbox()
        guard sb.isolation == .namespaces else {
            throw XCTSkip("no network namespace (not root or no unshare): the sandbox documents that network is open")
        }
        // A real listener on the host's loopback: reachable from the host, not from the sandbox.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                bind(fd, p, len) == 0 && listen(fd, 4) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        XCTAssertTrue(bound)
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let r = sb.run(program: """
        import socket
        s = socket.create_connection(("127.0.0.1", \(port)), timeout=1)
        s.sendall(b"escaped")
        """)
        XCTAssertFalse(r.passed)
        XCTAssertEqual(r.failure, .exception, "\(r)")
        XCTAssertTrue(r.detail.contains("Error"), r.detail)
    }

    func testWritesAreContainedAndTheTemporaryDirectoryIsRemoved() throws {
        let sb = try sandbox()
        guard getuid() == 0 else { throw XCTSkip("containment of writes relies on dropping to uid nobody (root only)") }
        let protected = NSTemporaryDirectory() + "/bonfire-protected-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: protected, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: protected) }
        let r = sb.run(program: """
        import os
        print(os.getcwd())
        with open("inside.txt", "w") as f:
            f.write("fine")
        with open(\(String(reflecting: protected + "/escape.txt")), "w") as f:
            f.write("escaped")
        """)
        XCTAssertEqual(r.failure, .exception, "\(r)")
        XCTAssertTrue(r.detail.contains("PermissionError"), r.detail)
        XCTAssertFalse(FileManager.default.fileExists(atPath: protected + "/escape.txt"))
        let cwd = r.stdout.split(separator: "\n").first.map(String.init) ?? ""
        XCTAssertTrue(cwd.contains("bonfire-sandbox-"), cwd)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cwd), "the temporary directory must be removed")
        let big = sb.run(program: "with open('big', 'wb') as f:\n    f.write(b'x' * (4 << 20))\n")
        XCTAssertFalse(big.passed)
        XCTAssertEqual(big.failure, .outputLimit, "\(big)")
    }

    func testForkBombIsBounded() throws {
        let sb = try sandbox()
        guard getuid() == 0, sb.isolation == .namespaces else {
            throw XCTSkip("RLIMIT_NPROC only bounds a fork bomb once the sandbox drops root; not run without it")
        }
        let start = Date()
        let r = sb.run(program: "import os\nwhile True:\n    os.fork()\n")
        XCTAssertFalse(r.passed)
        XCTAssertLessThan(Date().timeIntervalSince(start), Self.limits.timeLimit + 3)
    }

    func testMissingPythonIsAClearError() {
        XCTAssertThrowsError(try PythonSandbox(python: "/nonexistent/python3")) { e in
            XCTAssertTrue("\(e)".contains("no usable Python 3"), "\(e)")
        }
        XCTAssertThrowsError(try PythonSandbox(python: "/bin/false")) { e in
            XCTAssertTrue("\(e)".contains("no usable Python 3"), "\(e)")
        }
        XCTAssertThrowsError(try PythonSandbox(limits: SandboxLimits(timeLimit: -1)))
        XCTAssertThrowsError(try PythonSandbox(limits: SandboxLimits(timeLimit: .nan)))
        XCTAssertThrowsError(try PythonSandbox(limits: SandboxLimits(memoryBytes: 1)))
    }
}
