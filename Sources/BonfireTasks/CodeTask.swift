// `code`: program synthesis in the tiny expression language of CodeLanguage.swift, the analogue of HumanEval
// (R = 1 iff the program passes all hidden tests; pass@k is the natural metric).
//
// Prompt: input/output examples, then ">". One variable: "x:out" pairs separated by ",", e.g. "1:3,2:5,4:9,7:15>".
// Two variables: "x,y:out" triples separated by ";", e.g. "1,2:3;4,0:4;3,3:9>".
// Response: the program, e.g. "x*2+1" (no EOS). Hidden tests (stored in `TaskItem.answer` as "x:out;..." or
// "x,y:out;..."): every x in 0…9 for one-variable items, every (x, y) in 0…4 × 0…4 for two-variable items; the
// shown examples are a subset. R = 1 iff the program parses and returns the expected output on every hidden test.
// Reasons for R = 0: syntax error, sandbox limit, runtime error (division by zero, overflow) or the first failing test.
//
// Levels (reference program templates; constants a, b, c drawn per item):
//   1  one operation of x and a constant         x+a, x-a, a-x, x*a
//   2  two operations or integer division/modulo x*a+b, x*a-b, (x+a)*b, x/a, x%a
//   3  min/max/abs, squares, mixed               min(x,a), max(x,a)*b, abs(x-a), x*x+a, x%a+b, x/a*b
//   4  two variables                             x+y, x*y, x-y, max(x,y), min(x,y), x*a+y, x+y*a, x*y-a
//   5  conditionals                              x<a?x*b:x+c, x>a?a:x*b, x%2=0?x/2:x+a, x<a?a-x:x-a
// Every hidden output is within ±99 (prompts stay short) and no hidden test raises an error for the reference.
// Default level mix (weights): 1: 0.4, 2: 0.2, 3: 0.15, 4: 0.15, 5: 0.1. Measured: the tiny GPT (L4 d128) after
// `bonfire train --algo sft --task code --steps 1500 --prompts-per-step 16 --lr 1e-3` (~4 min, 1 core) reaches pass@1
// at T = 1 of 0.30 / 0.08 / 0.07 / 0.24 / 0.04 on levels 1–5 (pass@8 0.83 / 0.33 / 0.40 / 0.63 / 0.20; 40 test prompts
// each), so this mix should give pass@1 ≈ 0.19 (the previous 0.3/0.3/0.2/0.1/0.1 mix measured 0.13, pass@32 0.72).

import BonfireMath
import BonfireModel

package struct CodeTask: VerifiableTask {
    package let name = "code"
    package let seed: UInt64
    package let maxPromptLength = 24
    package let maxResponseLength = 32
    package let levels = [1, 2, 3, 4, 5]
    package let levelWeights: [(level: Int, weight: Double)]
    package let limits: CodeLimits

    package static let defaultLevelWeights: [(level: Int, weight: Double)] =
        [(1, 0.4), (2, 0.2), (3, 0.15), (4, 0.15), (5, 0.1)]

    package init(seed: UInt64, levelWeights: [(level: Int, weight: Double)] = CodeTask.defaultLevelWeights,
                 limits: CodeLimits = CodeLimits()) {
        precondition(levelWeights.contains { $0.weight > 0 }, "CodeTask: all level weights are zero")
        precondition(levelWeights.allSatisfy { (1...5).contains($0.level) && $0.weight >= 0 },
                     "CodeTask: levels must be in 1...5 with weight ≥ 0, got \(levelWeights)")
        self.seed = seed
        self.levelWeights = levelWeights
        self.limits = limits
    }

    package init(seed: UInt64, level: Int) { self.init(seed: seed, levelWeights: [(level, 1)]) }

    private static let streamTag: UInt64 = 0x636F_6465  // "code"

    package func item(split: Split, index: Int) -> TaskItem {
        precondition(index >= 0, "CodeTask.item: index must be ≥ 0, got \(index)")
        var levelRNG = RNG(seed: seed, stream: Self.streamTag, split.streamId, UInt64(index))
        return item(split: split, index: index, level: pickLevel(levelWeights, rng: &levelRNG))
    }

    package func item(split: Split, index: Int, level: Int) -> TaskItem {
        precondition((1...5).contains(level), "CodeTask.item: level must be in 1...5, got \(level)")
        for attempt in 0..<100_000 {
            var rng = RNG(seed: seed, stream: Self.streamTag, split.streamId, UInt64(index), UInt64(level),
                          UInt64(attempt))
            let source = CodeTask.template(level: level, rng: &rng)
            guard source.count <= maxResponseLength, let program = try? CodeProgram(source, limits: limits) else {
                continue
            }
            let twoVars = level == 4
            let inputs = CodeTask.hiddenInputs(twoVariables: twoVars)
            var tests: [(x: Int64, y: Int64?, out: Int64)] = []
            var ok = true
            for (x, y) in inputs {
                guard let out = try? program.run(x: x, y: y), abs(out) <= 99 else { ok = false; break }
                tests.append((x, y, out))
            }
            // Reject degenerate programs (constant output) — nothing to infer from the examples.
            guard ok, Set(tests.map { $0.out }).count > 1 else { continue }
            // Shown examples: a random subset of the hidden tests, sorted by input, as many as fit (3…5).
            var order = Array(tests.indices)
            for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(i + 1)) }
            let wanted = 3 + rng.int(3)
            var shown: [Int] = []
            var prompt = ""
            for k in order {
                let candidate = (shown + [k]).sorted()
                let text = CodeTask.renderExamples(candidate.map { tests[$0] }, twoVariables: twoVars)
                if text.count > maxPromptLength { continue }
                shown = candidate
                prompt = text
                if shown.count == wanted { break }
            }
            guard shown.count >= 3 else { continue }
            guard Split.of(task: name, prompt: prompt) == split else { continue }
            let answer = tests.map { t in
                (t.y.map { "\(t.x),\($0)" } ?? "\(t.x)") + ":\(t.out)"
            }.joined(separator: ";")
            return TaskItem(id: "\(name)/\(split.rawValue)/\(index)", task: name, split: split, index: index,
                            prompt: prompt, reference: source, level: level, answer: answer)
        }
        preconditionFailure("CodeTask: no valid candidate for level \(level) after 100000 attempts (generator bug)")
    }

    static func hiddenInputs(twoVariables: Bool) -> [(Int64, Int64?)] {
        if twoVariables {
            return (0...4).flatMap { x in (0...4).map { y in (Int64(x), Optional(Int64(y))) } }
        }
        return (0...9).map { (Int64($0), nil) }
    }

    static func renderExamples(_ tests: [(x: Int64, y: Int64?, out: Int64)], twoVariables: Bool) -> String {
        if twoVariables {
            return tests.map { "\($0.x),\($0.y ?? 0):\($0.out)" }.joined(separator: ";") + ">"
        }
        return tests.map { "\($0.x):\($0.out)" }.joined(separator: ",") + ">"
    }

    static func template(level: Int, rng: inout RNG) -> String {
        func c(_ r: ClosedRange<Int>) -> Int { r.lowerBound + rng.int(r.count) }
        switch level {
        case 1:
            let a = c(1...9)
            return ["x+\(a)", "x-\(a)", "\(a)-x", "x*\(c(2...9))"][rng.int(4)]
        case 2:
            let a = c(2...9), b = c(1...9)
            return ["x*\(a)+\(b)", "x*\(a)-\(b)", "(x+\(b))*\(a)", "x/\(a)", "x%\(a)"][rng.int(5)]
        case 3:
            let a = c(1...9), b = c(2...9)
            return ["min(x,\(a))", "max(x,\(a))*\(b)", "abs(x-\(a))", "x*x+\(a)", "x%\(b)+\(a)", "x/\(b)*\(a)"][rng.int(6)]
        case 4:
            let a = c(2...9)
            return ["x+y", "x*y", "x-y", "max(x,y)", "min(x,y)", "x*\(a)+y", "x+y*\(a)", "x*y-\(a)"][rng.int(8)]
        default:
            let a = c(2...8), b = c(2...9), cc = c(1...9)
            return ["x<\(a)?x*\(b):x+\(cc)", "x>\(a)?\(a):x*\(b)", "x%2=0?x/2:x+\(cc)", "x<\(a)?\(a)-x:x-\(a)"][rng.int(4)]
        }
    }

    /// Hidden tests decoded from `item.answer`.
    package static func tests(of item: TaskItem) -> [(x: Int64, y: Int64?, out: Int64)] {
        item.answer.split(separator: ";").compactMap { entry in
            let parts = entry.split(separator: ":")
            guard parts.count == 2, let out = Int64(parts[1]) else { return nil }
            let ins = parts[0].split(separator: ",").compactMap { Int64($0) }
            guard let x = ins.first else { return nil }
            return (x, ins.count > 1 ? ins[1] : nil, out)
        }
    }

    package func reward(item: TaskItem, response: String) -> Outcome {
        let program: CodeProgram
        do { program = try CodeProgram(CodeTask.stripped(response), limits: limits) } catch {
            return .wrong("\(error)")
        }
        for t in CodeTask.tests(of: item) {
            let input = t.y.map { "x=\(t.x),y=\($0)" } ?? "x=\(t.x)"
            do {
                let out = try program.run(x: t.x, y: t.y)
                if out != t.out { return .wrong("failed test \(input): expected \(t.out), got \(out)") }
            } catch {
                return .wrong("runtime error on \(input): \(error)")
            }
        }
        return .correct
    }

    /// The program's outputs on the hidden tests ("3,5,7,..."), or nil if it does not parse or errs on some test.
    package func answerKey(item: TaskItem, response: String) -> String? {
        guard let program = try? CodeProgram(CodeTask.stripped(response), limits: limits) else { return nil }
        var outs: [String] = []
        for t in CodeTask.tests(of: item) {
            guard let v = try? program.run(x: t.x, y: t.y) else { return nil }
            outs.append(String(v))
        }
        return outs.joined(separator: ",")
    }

    /// Trailing spaces/newlines are ignored (the model may emit them before EOS).
    static func stripped(_ s: String) -> String {
        var t = Substring(s)
        while let l = t.last, l == " " || l == "\n" { t = t.dropLast() }
        return String(t)
    }
}
