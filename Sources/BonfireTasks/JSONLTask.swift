// `jsonl`: problems read from a JSON Lines file, one problem per line (blank lines skipped), all of one kind.
//
// Maths lines (GSM8K / MATH / plain):
//   prompt    the first of "prompt", "question", "problem"
//   answer    "final_answer" or "answer" (a string or a number): when it holds a `#### x` line or a `\boxed{x}`, x is
//             extracted (GSM8K answers are whole solutions); else the field itself; without either field, the
//             `\boxed{…}` / `####` answer of "solution"
//   reference "solution" when present, else "answer" when it is a worked solution, else "#### <answer>"
//   R = 1 iff the response has a final answer (`\boxed{…}` or `####`, AnswerNormalizer.swift) equivalent to the
//   problem's after normalisation; reasons: "malformed: no final answer …", "wrong answer: got …".
// Code lines (HumanEval): "task_id", "prompt", "canonical_solution", "test", "entry_point" (all strings). The program
//   run is prompt + completion (or prompt, then the response, when the response defines `def <entry_point>(` itself;
//   a ```python fenced block is unwrapped), then the test code, then `check(<entry_point>)`, in PythonSandbox.swift.
//   R = 1 iff it exits normally; the reason records syntax / exception / timeout / wrongAnswer / memory /
//   outputLimit / sandboxError with a short detail. Outcomes are cached per (item, response), so the evaluator's
//   repeated reward calls run Python once.
// Optional on any line: "level" (an integer 1…100 or MATH's "Level 3"; anything else is level 1), "split" ("train",
// "validation", "test") overriding the hash split.
// Splits: a problem's split is fixed by a seeded content hash, FNV-1a 64 of "<seed>|<prompt>" mod 100 (0..<80 train,
// 80..<90 validation, 90..<100 test), so it does not depend on line order. Items of a split are its problems in file
// order; index i takes problem i mod count (training cycles through the file). A split with no problems (small
// files) falls back to all problems, listed in `emptySplits` so callers can warn.
// Malformed input (bad UTF-8 or JSON, a line that is not an object, missing or mistyped fields, a line over 1 MiB,
// mixed kinds, duplicate task_id, an empty file) throws a TaskError naming the file and line.

import BonfireMath
import BonfireModel
import Foundation

package enum JSONLKind: String, Codable, Sendable {
    case math, code
}

/// One problem as read from the file.
package struct JSONLProblem: Sendable, Equatable {
    package var line: Int
    package var id: String
    package var prompt: String
    /// Maths: the final answer (raw text; compared after normalisation). Code: empty.
    package var answer: String
    package var reference: String
    package var level: Int
    package var split: Split
    package var test: String
    package var entryPoint: String
}

/// What the code checker needs, stored in TaskItem.answer as JSON.
package struct CodeCheck: Codable, Sendable, Equatable {
    package var test: String
    package var entryPoint: String
}

package struct JSONLTask: VerifiableTask {
    package let name = "jsonl"
    package let seed: UInt64
    package let path: String
    package let kind: JSONLKind
    package let problems: [JSONLProblem]
    package let maxPromptLength: Int
    package let maxResponseLength: Int
    package let levels: [Int]
    /// Splits that had no problems and fall back to the whole file.
    package let emptySplits: [Split]
    /// The sandbox for code problems (nil for maths).
    package let sandbox: PythonSandbox?
    private let bySplit: [Split: [Int]]
    private let cache = OutcomeCache()

    package static let maxLineBytes = 1 << 20

    /// Reads and validates the file. For code problems a Python sandbox is set up (`python`, `limits`); no usable
    /// python3 is an error here, not a silent R = 0 later.
    package init(path: String, seed: UInt64 = 0, python: String? = nil, limits: SandboxLimits = SandboxLimits()) throws {
        let (kind, problems) = try JSONLTask.read(path: path, seed: seed)
        self.seed = seed
        self.path = path
        self.kind = kind
        self.problems = problems
        maxPromptLength = problems.map { $0.prompt.count }.max() ?? 1
        maxResponseLength = max(1, problems.map { $0.reference.count }.max() ?? 1)
        levels = Array(Set(problems.map { $0.level })).sorted()
        var by: [Split: [Int]] = [:]
        for (i, p) in problems.enumerated() { by[p.split, default: []].append(i) }
        var empty: [Split] = []
        for s in Split.allCases where by[s] == nil {
            empty.append(s)
            by[s] = Array(problems.indices)
        }
        bySplit = by
        emptySplits = empty
        if kind == .code {
            do { sandbox = try PythonSandbox(python: python, limits: limits) } catch {
                throw TaskError("\(path): code problems need Python 3 to run their tests: \(error)")
            }
        } else {
            sandbox = nil
        }
    }

    /// Problems in a split (after the empty-split fallback).
    package func count(split: Split) -> Int { bySplit[split]?.count ?? 0 }

    package func item(split: Split, index: Int) -> TaskItem {
        precondition(index >= 0, "JSONLTask.item: index must be ≥ 0, got \(index)")
        let list = bySplit[split] ?? Array(problems.indices)
        let p = problems[list[index % list.count]]
        let answer: String
        switch kind {
        case .math: answer = p.answer
        case .code:
            let data = (try? JSONEncoder().encode(CodeCheck(test: p.test, entryPoint: p.entryPoint))) ?? Data()
            answer = String(decoding: data, as: UTF8.self)
        }
        return TaskItem(id: "\(name)/\(split.rawValue)/\(index)", task: name, split: split, index: index,
                        prompt: p.prompt, reference: p.reference, level: p.level, answer: answer)
    }

    package func reward(item: TaskItem, response: String) -> Outcome {
        switch kind {
        case .math:
            guard let got = FinalAnswer.extract(response) else {
                return .wrong("malformed: no final answer (\\boxed{…} or #### …)")
            }
            return AnswerNormalizer.equivalent(got, item.answer)
                ? .correct : .wrong("wrong answer: got \(String(got.prefix(40)))")
        case .code:
            let key = item.id + "\u{0}" + item.prompt + "\u{0}" + response
            if let cached = cache.get(key) { return cached }
            let outcome = runCode(item: item, response: response)
            cache.put(key, outcome)
            return outcome
        }
    }

    package func answerKey(item: TaskItem, response: String) -> String? {
        switch kind {
        case .math: return FinalAnswer.extract(response).map(AnswerNormalizer.normalize)
        case .code:
            let t = JSONLTask.unfenced(response).trimmingCharacters(in: .whitespacesAndNewlines)
            return t.isEmpty ? nil : t
        }
    }

    /// Sandbox errors so far (not the program's fault; R = 0 with reason "sandboxError: …").
    package var sandboxErrors: Int { cache.sandboxErrors }

    // MARK: code

    /// The program the sandbox runs for a response.
    package static func program(prompt: String, response: String, check: CodeCheck) -> String {
        let body = unfenced(response)
        let defines = body.contains("def \(check.entryPoint)(")
        let solution = defines ? prompt + "\n\n" + body : prompt + body
        return solution + "\n\n" + check.test + "\n\ncheck(\(check.entryPoint))\n"
    }

    /// The content of the first ```python (or ```) fenced block, else the text itself.
    static func unfenced(_ text: String) -> String {
        guard let open = text.range(of: "```") else { return text }
        var rest = text[open.upperBound...]
        if let nl = rest.firstIndex(of: "\n") { rest = rest[rest.index(after: nl)...] } else { return text }
        guard let close = rest.range(of: "```") else { return String(rest) }
        return String(rest[..<close.lowerBound])
    }

    private func runCode(item: TaskItem, response: String) -> Outcome {
        guard let sandbox else { return .wrong("sandboxError: no sandbox (task is not a code task)") }
        guard let check = try? JSONDecoder().decode(CodeCheck.self, from: Data(item.answer.utf8)) else {
            return .wrong("sandboxError: item.answer is not a code check (item from another task?)")
        }
        let r = sandbox.run(program: JSONLTask.program(prompt: item.prompt, response: response, check: check))
        if r.passed { return .correct }
        let failure = r.failure ?? .exception
        if failure == .sandboxError { cache.countSandboxError() }
        return .wrong("\(failure.rawValue): \(String(r.detail.prefix(200)))")
    }

    // MARK: reading

    static func read(path: String, seed: UInt64) throws -> (JSONLKind, [JSONLProblem]) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TaskError("\(path): cannot read the task file (\(error.localizedDescription)); set task.path to a "
                            + "JSON Lines file, e.g. Data/samples/gsm8k-style.jsonl")
        }
        var problems: [JSONLProblem] = []
        var kind: JSONLKind? = nil
        var seenIds: [String: Int] = [:]
        let bytes = [UInt8](data)
        var lineNo = 0
        var start = 0
        while start < bytes.count {
            lineNo += 1
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
            defer { start = end + 1 }
            let where_ = "\(path):\(lineNo)"
            guard end - start <= maxLineBytes else {
                throw TaskError("\(where_): line is \(end - start) bytes, over the \(maxLineBytes)-byte limit")
            }
            let lineBytes = bytes[start..<end]
            guard let text = String(validating: lineBytes, as: UTF8.self) else {
                throw TaskError("\(where_): not valid UTF-8")
            }
            if text.allSatisfy({ $0.isWhitespace }) { continue }
            let value: JSONValue
            do { value = try JSONValue.parse(Data(lineBytes)) } catch {
                throw TaskError("\(where_): \(error)")
            }
            guard case .object(let object) = value else {
                throw TaskError("\(where_): expected a JSON object, one problem per line")
            }
            let lineKind: JSONLKind = object["entry_point"] != nil || object["test"] != nil ? .code : .math
            if let kind, kind != lineKind {
                throw TaskError("\(where_): a \(lineKind.rawValue) problem in a file of \(kind.rawValue) problems "
                                + "(one kind per file)")
            }
            kind = lineKind
            var p = try lineKind == .code ? codeProblem(object, where_) : mathProblem(object, where_)
            p.line = lineNo
            p.level = try level(object["level"], where_)
            if let s = object["split"], s != .null {
                guard case .string(let name) = s, let split = Split(rawValue: name) else {
                    throw TaskError("\(where_): field 'split' must be \"train\", \"validation\" or \"test\"")
                }
                p.split = split
            } else {
                let bucket = ContentHash.fnv1a64("\(seed)|" + p.prompt) % 100
                p.split = bucket < 80 ? .train : bucket < 90 ? .validation : .test
            }
            if p.id.isEmpty { p.id = "line \(lineNo)" }
            if let first = seenIds[p.id] {
                throw TaskError("\(where_): duplicate task_id \(String(reflecting: p.id)) (first on line \(first))")
            }
            seenIds[p.id] = lineNo
            problems.append(p)
        }
        guard let kind, !problems.isEmpty else {
            throw TaskError("\(path): no problems (the file is empty or blank); write one JSON object per line")
        }
        return (kind, problems)
    }

    static func string(_ o: [String: JSONValue], _ key: String, _ where_: String,
                       allowNumber: Bool = false) throws -> String? {
        switch o[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .int(let i)? where allowNumber: return String(i)
        case .double(let d)? where allowNumber && d.isFinite: return String(d)
        default: break
        }
        throw TaskError("\(where_): field '\(key)' must be a string\(allowNumber ? " or a number" : "")")
    }

    static func mathProblem(_ o: [String: JSONValue], _ where_: String) throws -> JSONLProblem {
        var prompt: String? = nil
        for key in ["prompt", "question", "problem"] {
            if let s = try string(o, key, where_) { prompt = s; break }
        }
        guard let prompt, !prompt.isEmpty else {
            throw TaskError("\(where_): missing field 'prompt' (or 'question' / 'problem') with the problem text")
        }
        let solution = try string(o, "solution", where_)
        var answerField = try string(o, "final_answer", where_, allowNumber: true)
        if answerField == nil { answerField = try string(o, "answer", where_, allowNumber: true) }
        var final: String? = nil
        if let a = answerField { final = FinalAnswer.extract(a) ?? a.trimmingCharacters(in: .whitespacesAndNewlines) }
        if final == nil || final!.isEmpty, let solution { final = FinalAnswer.extract(solution) }
        guard let final, !final.isEmpty else {
            throw TaskError("\(where_): no answer: give 'answer' (e.g. \"42\" or a GSM8K solution ending in "
                            + "\"#### 42\") or a 'solution' with \\boxed{…}")
        }
        let reference: String
        if let solution, FinalAnswer.extract(solution) != nil {
            reference = solution
        } else if let a = answerField, FinalAnswer.extract(a) != nil {
            reference = a
        } else {
            reference = "#### " + final
        }
        let id = try string(o, "id", where_, allowNumber: true) ?? (try string(o, "task_id", where_)) ?? ""
        return JSONLProblem(line: 0, id: id, prompt: prompt, answer: final, reference: reference, level: 1,
                            split: .train, test: "", entryPoint: "")
    }

    static func codeProblem(_ o: [String: JSONValue], _ where_: String) throws -> JSONLProblem {
        func required(_ key: String) throws -> String {
            guard let s = try string(o, key, where_) else {
                throw TaskError("\(where_): missing field '\(key)' (HumanEval lines have task_id, prompt, "
                                + "canonical_solution, test, entry_point)")
            }
            return s
        }
        let entry = try required("entry_point")
        guard !entry.isEmpty, entry.unicodeScalars.allSatisfy({ $0 == "_" || ($0.isASCII && $0.properties.isAlphabetic)
                                                                || ("0"..."9").contains($0) }),
              !("0"..."9").contains(entry.unicodeScalars.first!) else {
            throw TaskError("\(where_): field 'entry_point' must be a Python identifier, got \(String(reflecting: entry))")
        }
        return JSONLProblem(line: 0, id: try required("task_id"), prompt: try required("prompt"), answer: "",
                            reference: try required("canonical_solution"), level: 1, split: .train,
                            test: try required("test"), entryPoint: entry)
    }

    static func level(_ v: JSONValue?, _ where_: String) throws -> Int {
        switch v {
        case nil, .null?: return 1
        case .string(let s)?:
            let digits = s.filter { $0.isASCII && $0.isNumber }
            if digits.count <= 3, let n = Int(digits), (1...100).contains(n) { return n }
            return 1
        case .int(let i)?:
            guard (1...100).contains(i) else {
                throw TaskError("\(where_): field 'level' must be an integer in 1...100 or \"Level K\", got \(i)")
            }
            return Int(i)
        default: break
        }
        throw TaskError("\(where_): field 'level' must be an integer in 1...100 or \"Level K\"")
    }
}

/// A bounded outcome cache (cleared when full) shared by copies of a task value.
final class OutcomeCache: @unchecked Sendable {
    private let lock = NSLock()
    private var table: [String: Outcome] = [:]
    private var errors = 0
    static let capacity = 4096

    func get(_ key: String) -> Outcome? { lock.lock(); defer { lock.unlock() }; return table[key] }

    func put(_ key: String, _ value: Outcome) {
        lock.lock(); defer { lock.unlock() }
        if table.count >= OutcomeCache.capacity { table.removeAll(keepingCapacity: true) }
        table[key] = value
    }

    func countSandboxError() { lock.lock(); errors += 1; lock.unlock() }
    var sandboxErrors: Int { lock.lock(); defer { lock.unlock() }; return errors }
}
