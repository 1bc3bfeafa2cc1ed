// Tests for the `code` task and its sandboxed interpreter: truth tables, hostile programs, determinism, split
// disjointness, reference solutions, tokenizer coverage and length limits.
import XCTest
import BonfireModel
import BonfireTasks

final class CodeTaskTests: XCTestCase {
    private func run(_ src: String, _ x: Int64, _ y: Int64? = nil, limits: CodeLimits = CodeLimits()) -> Result<Int64, CodeError> {
        do { return .success(try CodeProgram(src, limits: limits).run(x: x, y: y)) }
        catch let e as CodeError { return .failure(e) }
        catch { fatalError("unexpected error \(error)") }
    }

    func testInterpreterTruthTable() {
        let cases: [(String, Int64, Int64?, Int64)] = [
            ("x*2+1", 3, nil, 7), ("x+2*3", 1, nil, 7), ("(x+2)*3", 1, nil, 9), ("10-4-3", 0, nil, 3),
            ("x/2", 7, nil, 3), ("x/2", -7, nil, -3), ("x%3", 7, nil, 1), ("x%3", -7, nil, -1), ("-x", 4, nil, -4),
            ("--x", 4, nil, 4), ("x-y", 2, 5, -3), ("x<3", 2, nil, 1), ("x<3", 3, nil, 0), ("x<=3", 3, nil, 1),
            ("x>=3", 2, nil, 0), ("x>3", 4, nil, 1), ("x=3", 3, nil, 1), ("x==3", 4, nil, 0), ("x!=3", 4, nil, 1),
            ("x<3?x*2:x-1", 2, nil, 4), ("x<3?x*2:x-1", 5, nil, 4), ("x?1:2", 0, nil, 2),
            ("x<2?0:x<5?1:2", 3, nil, 1), ("x<2?0:x<5?1:2", 7, nil, 2), ("min(x,3)", 5, nil, 3), ("max(x,y)", 2, 9, 9),
            ("abs(x-5)", 2, nil, 3), ("max(min(x,5),2)*2", 9, nil, 10), (" x * 2 ", 4, nil, 8), ("x+1<x+2", 0, nil, 1),
            ("x%2=0?x/2:x*3+1", 6, nil, 3), ("x%2=0?x/2:x*3+1", 5, nil, 16), ("7", 100, nil, 7),
        ]
        for (src, x, y, expected) in cases {
            XCTAssertEqual(run(src, x, y), .success(expected), "\(src) at x=\(x) y=\(String(describing: y))")
        }
    }

    func testConditionalsAreLazy() {
        XCTAssertEqual(run("x=0?0:10/x", 0), .success(0), "the untaken branch is never evaluated")
        XCTAssertEqual(run("x=0?10/x:0", 0), .failure(.divisionByZero))
    }

    func testSyntaxErrorsAreReportedNotCrashing() {
        for src in ["", "x+", "(x", "x)", "x y", "xy", "foo(x)", "min(x)", "min(x,1,2)", "abs(x,1)", "x??1:2", "x?1",
                    "1:2", ",", "x*/2", "#", "x=", "max", "3x", "x.5", "[x]", "x<<2", "y(1)"] {
            switch run(src, 1, 1) {
            case .failure(.syntax): break
            case let other: XCTFail("'\(src)' gave \(other)")
            }
        }
    }

    func testHostilePrograms() {
        // Deep nesting is refused before it can exhaust the stack, in parentheses, unary minus and conditionals.
        XCTAssertEqual(run(String(repeating: "(", count: 5000) + "x" + String(repeating: ")", count: 5000), 1,
                       limits: CodeLimits(maxProgramLength: 20000)), .failure(.tooDeep))
        XCTAssertEqual(run(String(repeating: "-", count: 5000) + "x", 1, limits: CodeLimits(maxProgramLength: 20000)),
                       .failure(.tooDeep))
        XCTAssertEqual(run(String(repeating: "x?", count: 3000) + "1" + String(repeating: ":0", count: 3000), 1,
                           limits: CodeLimits(maxProgramLength: 20000)), .failure(.tooDeep))
        XCTAssertEqual(run(String(repeating: "(", count: 40) + "x" + String(repeating: ")", count: 40), 6), .success(6),
                       "moderate nesting is fine")
        // Very long input.
        XCTAssertEqual(run(String(repeating: "x+", count: 10_000) + "x", 1), .failure(.tooLong(20_001)))
        // Huge literals and overflow: checked, never wrapped.
        XCTAssertEqual(run("99999999999999999999", 0), .failure(.syntax("integer literal longer than 9 digits")))
        XCTAssertEqual(run("999999999*999999999*999999999", 0), .failure(.overflow))
        XCTAssertEqual(run("x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x*x", 100), .failure(.overflow))
        XCTAssertEqual(run("-999999999*999999999*9999999-999999999*999999999*9999", 0), .failure(.overflow))
        // Division by zero, by zero modulo.
        XCTAssertEqual(run("x/(x-x)", 4), .failure(.divisionByZero))
        XCTAssertEqual(run("x%0", 4), .failure(.divisionByZero))
        // Runaway: the step limit stops evaluation of a large program.
        let big = (0..<60).map { _ in "x" }.joined(separator: "+")
        XCTAssertEqual(run(big, 1, limits: CodeLimits(maxSteps: 50)), .failure(.stepLimit(50)))
        XCTAssertEqual(run(big, 1), .success(60))
        // y in a one-variable task.
        XCTAssertEqual(run("x+y", 1, nil), .failure(.undefinedVariable("y")))
    }

    func testRewardRecordsReasons() {
        let task = CodeTask(seed: 3, level: 1)
        let item = task.item(split: .test, index: 0)
        XCTAssertEqual(task.reward(item: item, response: item.reference), .correct)
        XCTAssertEqual(task.reward(item: item, response: item.reference + " \n"), .correct)
        XCTAssertTrue(task.reward(item: item, response: "x+").reason!.contains("syntax error"))
        XCTAssertTrue(task.reward(item: item, response: "1/(x-x)").reason!.contains("division by zero"))
        XCTAssertTrue(task.reward(item: item, response: "x*9999+77").reason!.contains("failed test"))
        XCTAssertEqual(task.reward(item: item, response: "x*9999+77").reward, 0)
        // Behaviourally equal programs pass: (x+a) written as (a+x).
        if item.reference.hasPrefix("x+") {
            let a = item.reference.dropFirst(2)
            XCTAssertEqual(task.reward(item: item, response: "\(a)+x").reward, 1)
        }
        XCTAssertEqual(task.answerKey(item: item, response: item.reference),
                       CodeTask.tests(of: item).map { String($0.out) }.joined(separator: ","))
        XCTAssertNil(task.answerKey(item: item, response: "x+"))
    }

    func testReferencesPassTokenizeAndFitAtEveryLevel() {
        for level in 1...5 {
            let task = CodeTask(seed: 11, level: level)
            for i in 0..<200 {
                let item = task.item(split: .validation, index: i)
                XCTAssertEqual(task.reward(item: item, response: item.reference), .correct, item.reference)
                XCTAssertTrue(Tokenizer.canEncode(item.prompt), item.prompt)
                XCTAssertTrue(Tokenizer.canEncode(item.reference), item.reference)
                XCTAssertLessThanOrEqual(item.prompt.count, task.maxPromptLength, item.prompt)
                XCTAssertLessThanOrEqual(item.reference.count, task.maxResponseLength)
                XCTAssertEqual(CodeTask.tests(of: item).count, level == 4 ? 25 : 10)
                XCTAssertTrue(item.prompt.hasSuffix(">"))
                // Shown examples are consistent with the hidden tests.
                let tests = CodeTask.tests(of: item)
                let sep: Character = level == 4 ? ";" : ","
                for ex in item.prompt.dropLast().split(separator: sep) {
                    let parts = ex.split(separator: ":")
                    let ins = parts[0].split(separator: ",").map { Int64($0)! }
                    let t = tests.first { $0.x == ins[0] && $0.y == (ins.count > 1 ? ins[1] : nil) }!
                    XCTAssertEqual(t.out, Int64(parts[1])!, "\(item.prompt) vs \(item.answer)")
                }
            }
        }
    }

    func testCodeItemsAreDeterministicAndSplitsDisjoint() {
        let task = CodeTask(seed: 21)
        XCTAssertEqual(task.item(split: .train, index: 5), CodeTask(seed: 21).item(split: .train, index: 5))
        var seen: [String: Split] = [:]
        for split in Split.allCases {
            for i in 0..<1200 {
                let item = task.item(split: split, index: i)
                if let other = seen[item.prompt] { XCTAssertEqual(other, split, "\(item.prompt) in two splits") }
                seen[item.prompt] = split
            }
        }
        XCTAssertGreaterThan(seen.count, 1500, "enough distinct prompts")
    }
}
