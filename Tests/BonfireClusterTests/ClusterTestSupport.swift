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

/// Runs `bonfire <arguments>` to the end (OPENBLAS_NUM_THREADS=1); returns its exit status and output.
func runBonfire(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: try bonfireExecutablePath())
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["OPENBLAS_NUM_THREADS"] = "1"
    p.environment = env
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, out)
}
