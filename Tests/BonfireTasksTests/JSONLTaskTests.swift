import Foundation
import XCTest
import BonfireTasks

final class JSONLTaskTests: XCTestCase {
    /// Data/samples, found from this file's path (the samples ship with the repository, not as test resources).
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Data/samples")
    static let limits = SandboxLimits(timeLimit: 3, memoryBytes: 256 << 20)

    func write(_ text: String, _ name: String = "t.jsonl") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-jsonl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url.path
    }

    func expectError(_ text: String, contains needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(text)
        XCTAssertThrowsError(try JSONLTask(path: path), file: file, line: line) { e in
            for n in needles {
                XCTAssertTrue("\(e)".contains(n), "\(e) does not mention \(n)", file: file, line: line)
            }
        }
    }

    func testSampleMathFileLoadsAndEveryReferenceScoresOne() throws {
        let task = try JSONLTask(path: Self.samples.appendingPathComponent("gsm8k-style.jsonl").path)
        XCTAssertEqual(task.kind, .math)
        XCTAssertEqual(task.problems.count, 8)
        XCTAssertEqual(task.problems.map(\.answer), ["34", "45", "1,000", "5/3", "-7", "\\frac{11}{12}", "4.5", "210"])
        XCTAssertEqual(task.problems[5].level, 2)
        for split in Split.allCases {
            for i in 0..<task.count(split: split) {
                let item = task.item(split: split, index: i)
                XCTAssertEqual(task.reward(item: item, response: item.reference), .correct, "\(item.id): \(item.reference)")
            }
        }
        let item = task.items(split: .train, range: 0..<task.count(split: .train)).first { $0.answer == "1,000" }!
        XCTAssertEqual(task.reward(item: item, response: "so the price is \\boxed{1000}").reward, 1)
        XCTAssertEqual(task.reward(item: item, response: "#### $1,000.00").reward, 1)
        XCTAssertEqual(task.reward(item: item, response: "#### 999").reason, "wrong answer: got 999")
        XCTAssertTrue(task.reward(item: item, response: "1000").reason!.hasPrefix("malformed"))
        XCTAssertEqual(task.answerKey(item: item, response: "#### 1,000"), "1000")
        XCTAssertNil(task.answerKey(item: item, response: "no marker"))
    }

    func testSampleCodeFileCanonicalSolutionsPassAndWrongOnesRecordTheirReason() throws {
        let task = try JSONLTask(path: Self.samples.appendingPathComponent("humaneval-style.jsonl").path,
                                 limits: Self.limits)
        XCTAssertEqual(task.kind, .code)
        XCTAssertEqual(task.problems.count, 5)
        var seen = Set<String>()
        for split in Split.allCases {
            for i in 0..<task.count(split: split) {
                let item = task.item(split: split, index: i)
                guard seen.insert(item.prompt).inserted else { continue }
                XCTAssertEqual(task.reward(item: item, response: item.reference), .correct, item.id)
            }
        }
        XCTAssertEqual(seen.count, 5)
        let item = task.item(split: .train, index: 0)
        let check = try JSONDecoder().decode(CodeCheck.self, from: Data(item.answer.utf8))
        let cases: [(String, String)] = [
            ("    return None\n", "wrongAnswer"),
            ("    return (\n", "syntax"),
            ("    raise ValueError('nope')\n", "exception: ValueError"),
            ("    while True: pass\n", "timeout"),
            ("    x = bytearray(1 << 40)\n", "memory"),
        ]
        for (response, reason) in cases {
            let o = task.reward(item: item, response: response)
            XCTAssertEqual(o.reward, 0, response)
            XCTAssertTrue(o.reason?.hasPrefix(reason) == true, "\(response): \(o.reason ?? "nil")")
        }
        // A whole function in a fenced block (chat style) replaces the stub.
        let full = "```python\n" + "def \(check.entryPoint)(*a, **k):\n    raise RuntimeError('x')\n```\n"
        XCTAssertTrue(task.reward(item: item, response: full).reason!.contains("RuntimeError"))
        XCTAssertEqual(task.sandboxErrors, 0)
    }

    func testSplitsComeFromASeededContentHashNotLineOrder() throws {
        let lines = (0..<200).map { #"{"prompt": "What is \#($0) + 1?", "answer": "\#($0 + 1)"}"# }
        let a = try JSONLTask(path: try write(lines.joined(separator: "\n")), seed: 7)
        let b = try JSONLTask(path: try write(lines.reversed().joined(separator: "\n")), seed: 7)
        let c = try JSONLTask(path: try write(lines.joined(separator: "\n")), seed: 8)
        func splits(_ t: JSONLTask) -> [String: Split] {
            Dictionary(uniqueKeysWithValues: t.problems.map { ($0.prompt, $0.split) })
        }
        XCTAssertEqual(splits(a), splits(b))
        XCTAssertNotEqual(splits(a), splits(c), "the seed changes the split")
        let counts = Split.allCases.map { a.count(split: $0) }
        XCTAssertEqual(counts.reduce(0, +), 200)
        XCTAssertTrue((130...190).contains(counts[0]), "\(counts)")
        XCTAssertTrue(a.emptySplits.isEmpty)
        // Items wrap around a split; ids stay task/split/index.
        let n = a.count(split: .test)
        XCTAssertEqual(a.item(split: .test, index: n).prompt, a.item(split: .test, index: 0).prompt)
        XCTAssertEqual(a.item(split: .test, index: n).id, "jsonl/test/\(n)")
        // An explicit split field wins, and small files fall back for empty splits.
        let explicit = try JSONLTask(path: try write(#"{"prompt": "p", "answer": "1", "split": "test"}"#))
        XCTAssertEqual(explicit.problems[0].split, .test)
        XCTAssertEqual(Set(explicit.emptySplits), [.train, .validation])
        XCTAssertEqual(explicit.item(split: .train, index: 3).prompt, "p")
    }

    func testMalformedFilesNameTheFileAndLine() throws {
        let good = #"{"prompt": "1+1?", "answer": "2"}"#
        try expectError("", contains: ["no problems"])
        try expectError("\n  \n\n", contains: ["no problems"])
        try expectError(good + "\n" + good + "\n{not json\n", contains: ["t.jsonl:3", "not valid JSON"])
        try expectError("[1, 2]\n", contains: [":1", "expected a JSON object"])
        try expectError("\"just a string\"\n", contains: [":1", "expected a JSON object"])
        try expectError(#"{"answer": "2"}"#, contains: [":1", "missing field 'prompt'"])
        try expectError(#"{"prompt": "x"}"#, contains: [":1", "no answer"])
        try expectError(#"{"prompt": 5, "answer": "2"}"#, contains: ["'prompt' must be a string"])
        try expectError(#"{"prompt": "x", "answer": true}"#, contains: ["'answer' must be a string or a number"])
        try expectError(#"{"prompt": "x", "answer": ["2"]}"#, contains: ["'answer'"])
        try expectError(#"{"prompt": "x", "answer": "2", "level": 1e300}"#, contains: ["'level'"])
        try expectError(#"{"prompt": "x", "answer": "2", "level": -3}"#, contains: ["'level'", "-3"])
        try expectError(#"{"prompt": "x", "answer": "2", "split": "dev"}"#, contains: ["'split'"])
        try expectError(good + "\n" + #"{"task_id": "a", "prompt": "p", "canonical_solution": "s", "test": "t", "entry_point": "f"}"#,
                        contains: [":2", "one kind per file"])
        try expectError(#"{"task_id": "a", "prompt": "p", "test": "t", "entry_point": "f"}"#,
                        contains: [":1", "missing field 'canonical_solution'"])
        try expectError(#"{"task_id": "a", "prompt": "p", "canonical_solution": "s", "test": "t", "entry_point": "f(); import os"}"#,
                        contains: ["'entry_point' must be a Python identifier"])
        try expectError(#"{"id": "q", "prompt": "a", "answer": "1"}"# + "\n" + #"{"id": "q", "prompt": "b", "answer": "2"}"#,
                        contains: [":2", "duplicate task_id", "line 1"])
        try expectError(good + "\n" + "{\"prompt\": \"" + String(repeating: "x", count: (1 << 20) + 10) + "\", \"answer\": \"1\"}",
                        contains: [":2", "over the"])
        let path = try write("")
        try Data([0x7B, 0xFF, 0xFE, 0x7D, 0x0A]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try JSONLTask(path: path)) { XCTAssertTrue("\($0)".contains("UTF-8"), "\($0)") }
        XCTAssertThrowsError(try JSONLTask(path: "/nonexistent/file.jsonl")) {
            XCTAssertTrue("\($0)".contains("cannot read"), "\($0)")
        }
    }

    func testCodeFileWithoutPythonIsAClearErrorNotASilentZero() throws {
        let path = Self.samples.appendingPathComponent("humaneval-style.jsonl").path
        XCTAssertThrowsError(try JSONLTask(path: path, python: "/nonexistent/python3")) { e in
            XCTAssertTrue("\(e)".contains("need Python 3"), "\(e)")
        }
    }

    func testHostileResponsesNeverTrap() throws {
        let task = try JSONLTask(path: Self.samples.appendingPathComponent("gsm8k-style.jsonl").path)
        let item = task.item(split: .train, index: 0)
        for r in ["", "####", "\\boxed{", String(repeating: "#### 1\n", count: 10_000), "\u{0}", "\\boxed{\\boxed{\\boxed{3}}}"] {
            _ = task.reward(item: item, response: r)
            _ = task.answerKey(item: item, response: r)
        }
    }
}
