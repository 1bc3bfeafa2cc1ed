// Shared by the cluster tests: the `bonfire` executable next to the test bundle, temporary run directories,
// metrics.jsonl records, and running `bonfire` as a child process.
import BonfireCluster
import Foundation
import XCTest

/// The `bonfire` executable in the same build products folder as this test bundle (or $BONFIRE_EXECUTABLE).
func bonfireExecutablePath() throws -> String {
    if let path = ProcessInfo.processInfo.environment["BONFIRE_EXECUTABLE"] { return path }
    // On Linux the test process is the .xctest executable itself, in the build products folder.
    let roots = [URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath(), Bundle.main.bundleURL]
    for root in roots {
        var dir = root.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("bonfire").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
    }
    XCTFail("bonfire executable not found next to the test bundle; build it first: swift build -c release --product bonfire")
    throw XCTSkip("unreachable")
}

/// A fresh temporary run directory (not created).
func temporaryRunDir(_ name: String) -> URL {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("bonfire-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try? FileManager.default.removeItem(at: url)
    return url
}

/// Every parseable line of <runDir>/metrics.jsonl.
func metricsRecords(_ runDir: URL) -> [MetricsRecord] {
    let text = (try? String(contentsOf: runDir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? ""
    return text.split(separator: "\n").compactMap { MetricsRecord(jsonLine: $0) }
}

/// `bonfire <arguments>` as a process (not started), OPENBLAS_NUM_THREADS=1, stdout and stderr into one pipe.
func bonfireProcess(_ arguments: [String]) throws -> (process: Process, output: Pipe) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try bonfireExecutablePath())
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["OPENBLAS_NUM_THREADS"] = "1"
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    return (p, pipe)
}

/// Runs `bonfire <arguments>` to the end; returns its exit status and output.
func runBonfire(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let (p, pipe) = try bonfireProcess(arguments)
    try p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, out)
}

/// Lines of a running child's output, collected from another thread.
final class CollectedLines: @unchecked Sendable {
    let lock = NSLock()
    var lines: [String] = []
    func add(_ s: String) { lock.lock(); lines.append(s); lock.unlock() }
    func contains(_ s: String) -> Bool { lock.lock(); defer { lock.unlock() }; return lines.contains { $0.contains(s) } }
    var text: String { lock.lock(); defer { lock.unlock() }; return lines.joined(separator: "\n") }
    func count(_ s: String) -> Int { lock.lock(); defer { lock.unlock() }; return lines.filter { $0.contains(s) }.count }
}

/// Starts `bonfire <arguments>` in the background (OPENBLAS_NUM_THREADS=1), its output lines into `into`.
func startBonfire(_ arguments: [String], into collected: CollectedLines) throws -> Process {
    let (p, pipe) = try bonfireProcess(arguments)
    let partial = CollectedLines()
    pipe.fileHandleForReading.readabilityHandler = { h in
        let d = h.availableData
        guard !d.isEmpty else { h.readabilityHandler = nil; return }
        partial.lock.lock()
        var text = (partial.lines.popLast() ?? "") + String(decoding: d, as: UTF8.self)
        var complete: [Substring] = []
        while let nl = text.firstIndex(of: "\n") { complete.append(text[..<nl]); text = String(text[text.index(after: nl)...]) }
        partial.lines = [text]
        partial.lock.unlock()
        complete.forEach { collected.add(String($0)) }
    }
    try p.run()
    return p
}

/// Pids of processes whose command line contains `pattern` (pgrep -f).
func pids(matching pattern: String) -> [Int32] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
    p.arguments = ["-f", "--", pattern]
    let pipe = Pipe()
    p.standardOutput = pipe
    try? p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return out.split(separator: "\n").compactMap { Int32($0) }.filter { $0 != getpid() }
}

/// Waits up to `seconds` for `cond`; fails the test with the collected output when it never holds.
@discardableResult
func waitFor(_ seconds: Double, _ what: String, _ collected: CollectedLines, poll: useconds_t = 100_000,
             file: StaticString = #filePath, line: UInt = #line, _ cond: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline { if cond() { return true }; usleep(poll) }
    XCTFail("timed out after \(seconds) s waiting for: \(what)\n--- log ---\n\(collected.text.suffix(6000))", file: file, line: line)
    return false
}
