// Scripts/reproduce.sh on bad input and on a rerun (issue 13): an unknown method or task, a missing checkpoint, an
// unwritable results directory and a (simulated) full disk stop before any work with a message that says what to do;
// a rerun skips finished steps and never overwrites a finished result; an interrupted step is moved aside, not deleted.
// The script runs for real (bash); `bonfire` is replaced by a stub that fails if it is ever called, so nothing trains.
import Foundation
import XCTest

final class ReproduceScriptTests: XCTestCase {
    var tmp: URL!
    var stub: String!

    override func setUpWithError() throws {
        tmp = temporaryRunDir("reproduce")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        stub = tmp.appendingPathComponent("bonfire-stub").path
        try "#!/bin/sh\necho \"stub bonfire called: $*\" >&2\nexit 99\n".write(toFile: stub, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: stub)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/reproduce.sh").path
    }

    func reproduce(_ args: [String], env extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script] + args
        var env = ProcessInfo.processInfo.environment
        env["BONFIRE"] = stub
        for (k, v) in extra { env[k] = v }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    func expectStops(_ args: [String], env: [String: String] = [:], saying parts: [String], line: UInt = #line) throws {
        let (status, out) = try reproduce(args, env: env)
        XCTAssertEqual(status, 2, "exit status; output:\n\(out)", line: line)
        for p in parts { XCTAssertTrue(out.contains(p), "output should mention '\(p)':\n\(out)", line: line) }
        XCTAssertFalse(out.contains("stub bonfire called"), "work started despite bad input:\n\(out)", line: line)
    }

    func testBadInputStopsBeforeAnyWorkWithAMessageSayingWhatToDo() throws {
        let out = tmp.appendingPathComponent("out").path
        try expectStops(["--quick", "--out", out, "--methods", "sft bon-bogus"],
                        saying: ["unknown method 'bon-bogus'", "choose from: sft bon-sft rl-v"])
        try expectStops(["--quick", "--out", out, "--tasks", "chess"], saying: ["unknown task 'chess'", "math code"])
        try expectStops(["--quick", "--out", out, "--seeds", "1 x"], saying: ["seed 'x'"])
        try expectStops(["--quick", "--out", out, "--start-math", tmp.appendingPathComponent("missing.safetensors").path],
                        saying: ["missing.safetensors does not exist", "omit --start-math to train the SFT start"])
        try expectStops(["--quick", "--out", out, "--frobnicate"], saying: ["unknown argument '--frobnicate'"])
        try expectStops(["--quick", "--out", out, "--eval-every", "-5"], saying: ["--eval-every '-5'", "0 = off"])
        try expectStops(["--quick", "--out", out, "--eval-every", "ten"], saying: ["--eval-every 'ten'"])
        // A results directory that cannot be created (a path under a regular file).
        let file = tmp.appendingPathComponent("a-file").path
        FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        try expectStops(["--quick", "--out", file + "/results"], saying: ["cannot create the results directory", "--out DIR"])
        // A full disk (the free-space threshold set above any real disk).
        try expectStops(["--quick", "--out", out], env: ["REPRODUCE_MIN_FREE_MB": "1000000000"],
                        saying: ["MB free on the disk", "free some space", "finished steps are kept"])
        // A missing bonfire executable.
        try expectStops(["--quick", "--out", out], env: ["BONFIRE": tmp.appendingPathComponent("nope").path],
                        saying: ["no bonfire executable", "swift build -c release --product bonfire"])
    }

    /// A results directory in which every step of (math, sft, seed 1) is finished.
    func finishedResults() throws -> (out: URL, result: URL, content: String) {
        let out = tmp.appendingPathComponent("done")
        let fm = FileManager.default
        func done(_ rel: String) throws {
            let d = out.appendingPathComponent(rel)
            try fm.createDirectory(at: d, withIntermediateDirectories: true)
            try "commit test\n".write(to: d.appendingPathComponent("DONE"), atomically: true, encoding: .utf8)
        }
        try done("sft-start/math")
        try done("sft-start/math-validation")
        try fm.createDirectory(at: out.appendingPathComponent("sft-start/math/checkpoints"), withIntermediateDirectories: true)
        fm.createFile(atPath: out.appendingPathComponent("sft-start/math/checkpoints/v000600.safetensors").path, contents: Data())
        try done("verifier/math")
        let eval = """
        {"task":"math","split":"test","verifier":"learned","samples":32,"nList":[1,4,16,32],"temperatures":[1.0],
         "numPrompts":4,"seconds":1,"samplesPerSecond":1,"rows":[
          {"n":1,"temperature":1.0,"passAtN":0.25,"passAtNStdErr":0.1,"boN":0.25,"boNStdErr":0.1,"meanReward":0.25,"numPrompts":4},
          {"n":4,"temperature":1.0,"passAtN":0.5,"passAtNStdErr":0.1,"boN":0.4,"boNStdErr":0.1,"meanReward":0.25,"numPrompts":4},
          {"n":16,"temperature":1.0,"passAtN":0.7,"passAtNStdErr":0.1,"boN":0.5,"boNStdErr":0.1,"meanReward":0.25,"numPrompts":4},
          {"n":32,"temperature":1.0,"passAtN":0.8,"passAtNStdErr":0.1,"boN":0.5,"boNStdErr":0.1,"meanReward":0.25,"numPrompts":4}]}
        """
        for rel in ["runs/math/start/s1", "runs/math/sft/s1"] {
            try done(rel)
            let e = out.appendingPathComponent(rel + "/eval-final")
            try fm.createDirectory(at: e, withIntermediateDirectories: true)
            try eval.write(to: e.appendingPathComponent("eval.json"), atomically: true, encoding: .utf8)
        }
        return (out, out.appendingPathComponent("runs/math/sft/s1/eval-final/eval.json"), eval)
    }

    func testARerunSkipsFinishedStepsAndNeverOverwritesAResult() throws {
        let (out, result, content) = try finishedResults()
        let (status, text) = try reproduce(["--quick", "--out", out.path, "--tasks", "math", "--methods", "sft", "--seeds", "1"])
        XCTAssertEqual(status, 0, text)
        XCTAssertFalse(text.contains("stub bonfire called"), "a finished step was run again:\n\(text)")
        XCTAssertTrue(text.contains("skip (finished): runs/math/sft/s1"), text)
        XCTAssertEqual(try String(contentsOf: result, encoding: .utf8), content, "a finished result was overwritten")
    }

    func testAnInterruptedRunIsMovedAsideAndAFailedStepSaysHowToResume() throws {
        let (out, _, _) = try finishedResults()
        // rl-s seed 1 was interrupted: its directory exists without DONE.
        let partial = out.appendingPathComponent("runs/math/rl-s/s1")
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        try "half".write(to: partial.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        let (status, text) = try reproduce(["--quick", "--out", out.path, "--tasks", "math", "--methods", "sft rl-s", "--seeds", "1"])
        XCTAssertEqual(status, 2, text)
        XCTAssertTrue(text.contains("moved the unfinished runs/math/rl-s/s1 aside"), text)
        XCTAssertTrue(text.contains("step runs/math/rl-s/s1 failed"), text)
        XCTAssertTrue(text.contains("rerun the same command: finished steps are skipped"), text)
        let siblings = try FileManager.default.contentsOfDirectory(atPath: partial.deletingLastPathComponent().path)
        XCTAssertTrue(siblings.contains { $0.hasPrefix("s1.interrupted.") }, "the interrupted run was deleted: \(siblings)")
    }
}
