// Tests for the `math` task: determinism, split disjointness, strict answer extraction, reference solutions,
// tokenizer coverage and length limits.
import XCTest
import BonfireMath
import BonfireModel
import BonfireTasks

final class MathTaskTests: XCTestCase {
    func testItemsAreDeterministicInSeedSplitIndex() {
        let a = MathTask(seed: 7), b = MathTask(seed: 7), c = MathTask(seed: 8)
        for i in 0..<50 {
            XCTAssertEqual(a.item(split: .train, index: i), b.item(split: .train, index: i))
        }
        let diff = (0..<50).filter { a.item(split: .test, index: $0).prompt != c.item(split: .test, index: $0).prompt }
        XCTAssertGreaterThan(diff.count, 25, "another seed gives other items")
    }

    func testSplitsAreDisjointByPromptContent() {
        let task = MathTask(seed: 3)
        var seen: [String: Split] = [:]
        for split in Split.allCases {
            for i in 0..<1500 {
                let item = task.item(split: split, index: i)
                XCTAssertEqual(item.split, split)
                XCTAssertEqual(Split.of(task: "math", prompt: item.prompt), split)
                if let other = seen[item.prompt] { XCTAssertEqual(other, split, "\(item.prompt) in two splits") }
                seen[item.prompt] = split
            }
        }
        // Also across seeds: a test prompt under seed 4 is never a train prompt under seed 3.
        let task4 = MathTask(seed: 4)
        for i in 0..<500 {
            let p = task4.item(split: .test, index: i).prompt
            if let s = seen[p] { XCTAssertEqual(s, .test) }
        }
    }

    func testReferencesAreCorrectTokenizableAndWithinLimits() {
        for level in 1...6 {
            let task = MathTask(seed: 1, level: level)
            for i in 0..<300 {
                let item = task.item(split: .train, index: i)
                XCTAssertEqual(item.level, level)
                XCTAssertEqual(task.reward(item: item, response: item.reference), .correct, "\(item.prompt) \(item.reference)")
                XCTAssertTrue(Tokenizer.canEncode(item.prompt), item.prompt)
                XCTAssertTrue(Tokenizer.canEncode(item.reference), item.reference)
                XCTAssertLessThanOrEqual(item.prompt.count, task.maxPromptLength)
                XCTAssertLessThanOrEqual(item.reference.count, task.maxResponseLength)
                XCTAssertTrue(item.prompt.hasSuffix("="))
            }
        }
        let t = MathTask(seed: 0)
        XCTAssertLessThanOrEqual(1 + t.maxPromptLength + t.maxResponseLength + 1, 64, "fits a ctx-64 model")
    }

    func testLevelMixFollowsDefaultWeightsAndLevelsDiffer() {
        let task = MathTask(seed: 2)
        var hist = [Int: Int]()
        for i in 0..<2000 { hist[task.item(split: .train, index: i).level, default: 0] += 1 }
        XCTAssertEqual(hist[6] ?? 0, 0)
        let total = MathTask.defaultLevelWeights.map { $0.weight }.reduce(0, +)
        for (level, weight) in MathTask.defaultLevelWeights {
            XCTAssertEqual(Double(hist[level] ?? 0) / 2000, weight / total, accuracy: 0.04, "level \(level)")
        }
        // Level shapes: level 3 has * and no parens, level 4 has parens, level 5 has %.
        let l3 = MathTask(seed: 1, level: 3).item(split: .train, index: 0).prompt
        XCTAssertTrue(l3.contains("*") && !l3.contains("("), l3)
        XCTAssertTrue(MathTask(seed: 1, level: 4).item(split: .train, index: 0).prompt.contains("("))
        XCTAssertTrue(MathTask(seed: 1, level: 5).item(split: .train, index: 0).prompt.contains("%"))
    }

    func testWorkedStepsFollowEvaluationOrder() {
        let e = MathExpr.bin("-", .bin("*", .bin("+", .num(12), .num(7)), .num(3)), .bin("%", .num(45), .num(7)))
        XCTAssertEqual(e.rendered(), "(12+7)*3-45%7")
        XCTAssertEqual(e.value(), 54)
        let neg = MathExpr.bin("*", .bin("-", .num(3), .num(5)), .num(2))
        XCTAssertEqual(neg.rendered(), "(3-5)*2")
        let rightNeg = MathExpr.bin("-", .num(10), .num(-3))
        XCTAssertEqual(rightNeg.rendered(), "10-(-3)")
        let assoc = MathExpr.bin("-", .num(10), .bin("-", .num(4), .num(3)))
        XCTAssertEqual(assoc.rendered(), "10-(4-3)")
        XCTAssertEqual(assoc.value(), 9)
    }

    func testAnswerExtractionIsStrict() {
        XCTAssertEqual(MathAnswer.extract("12#"), .answer(12))
        XCTAssertEqual(MathAnswer.extract("-2#"), .answer(-2))
        XCTAssertEqual(MathAnswer.extract("0#"), .answer(0))
        XCTAssertEqual(MathAnswer.extract("19*3-45%7=57-45%7=57-3=54#"), .answer(54))
        XCTAssertEqual(MathAnswer.extract("3+44=47#  \n"), .answer(47), "trailing whitespace ignored")
        XCTAssertEqual(MathAnswer.extract("anything goes here=5#"), .answer(5), "steps are not checked")
        let malformed = ["", "   ", "12", "12# ", "=#", "#", "12##", "1#2#", "12#3", "=12 #", "012#", "-0#", "--3#",
                         "+3#", "3.0#", "1 2#", "12=#", "x#", "1234567890123#", "99999999999999999999999#", "4=-#",
                         "=-", "#12"]
        for m in malformed where m != "12# " {
            if case .answer(let v) = MathAnswer.extract(m) { XCTFail("'\(m)' extracted as \(v)") }
        }
        XCTAssertEqual(MathAnswer.extract("12# "), .answer(12))
        if case .malformed(let reason) = MathAnswer.extract("12") { XCTAssertTrue(reason.contains("#")) }
        else { XCTFail("missing marker accepted") }
    }

    /// The byte-level fast path gives the plain (grapheme) definition's verdict, reason included, on every ASCII
    /// string — random ones over the characters that matter plus hostile ones ("\r\n" is one grapheme, not "\n") —
    /// and declines non-ASCII input, which then takes the plain path.
    func testASCIIExtractionMatchesThePlainDefinition() {
        var cases = ["", " ", "\n", "12#", "12#\n", "12#\r\n", "12#\r", "12\r\n#", "12#\n\r\n", "=#", "-#", "-0#", "00#",
                     "1=2=3#", "1=-2#", "#\n#", "\r\n", "12# \n \n", "999999999999#", "1000000000000#", "-999999999999#",
                     "3\r\n4=5#", "a=\r\n12#", String(repeating: "1", count: 40) + "#", "x=0000000000000000000001#"]
        let alphabet = Array("0123456789-=#+ \n\rx*")
        var rng = RNG(seed: 17)
        for _ in 0..<20_000 {
            let n = rng.int(14)
            var t = String((0..<n).map { _ in alphabet[rng.int(alphabet.count)] })
            if rng.int(2) == 0 { t += "#" }
            cases.append(t)
        }
        for c in cases {
            XCTAssertEqual(MathAnswer.extractASCII(c), MathAnswer.extractPlain(c), "\(c.debugDescription)")
        }
        for c in ["12#\u{301}", "é=3#", "3#\u{301}", "１２#", "\u{FEFF}12#"] {
            XCTAssertNil(MathAnswer.extractASCII(c), c.debugDescription)
            XCTAssertEqual(MathAnswer.extract(c), MathAnswer.extractPlain(c), c.debugDescription)
        }
    }

    func testRewardIsZeroWithReasonForWrongAndMalformed() {
        let task = MathTask(seed: 5)
        let item = task.item(split: .test, index: 3)
        let answer = Int(item.answer)!
        XCTAssertEqual(task.reward(item: item, response: "\(answer)#").reward, 1)
        let wrong = task.reward(item: item, response: "\(answer + 1)#")
        XCTAssertEqual(wrong.reward, 0)
        XCTAssertTrue(wrong.reason!.contains("wrong answer"))
        let bad = task.reward(item: item, response: "\(answer)")
        XCTAssertEqual(bad.reward, 0)
        XCTAssertTrue(bad.reason!.contains("malformed"))
        XCTAssertEqual(task.answerKey(item: item, response: "1+1=\(answer)#"), String(answer))
        XCTAssertNil(task.answerKey(item: item, response: "garbage"))
        // Arbitrary bytes never crash.
        var rng = RNGBox(seed: 9)
        let chars = Array(Tokenizer.characters)
        for _ in 0..<2000 {
            let s = String((0..<rng.int(40)).map { _ in chars[rng.int(chars.count)] })
            let o = task.reward(item: item, response: s)
            XCTAssertTrue(o.reward == 0 || o.reward == 1)
        }
    }

    func testRegistryMakesTasksAndRejectsUnknownNames() throws {
        XCTAssertEqual(try TaskRegistry.make(name: "math", seed: 1).name, "math")
        XCTAssertEqual(try TaskRegistry.make(name: "code", seed: 1).name, "code")
        XCTAssertThrowsError(try TaskRegistry.make(name: "chess", seed: 1)) { error in
            XCTAssertTrue("\(error)".contains("math"), "\(error)")
        }
    }
}
