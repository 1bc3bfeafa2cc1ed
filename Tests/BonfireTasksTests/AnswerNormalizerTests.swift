import XCTest
import BonfireTasks

final class AnswerNormalizerTests: XCTestCase {
    func testExtractionFollowsGSM8KAndMATHConventions() {
        let table: [(String, String?)] = [
            ("So 84 - 50 = 34.\n#### 34", "34"),
            ("#### 1,000\n", "1,000"),
            ("first #### 3\nthen #### 5", "5"),                    // the last marker wins
            ("#### \n", nil),                                       // empty after the marker
            ("#### -7 dollars", "-7 dollars"),
            ("The answer is $\\boxed{\\frac{11}{12}}$.", "\\frac{11}{12}"),
            ("\\boxed{1} then \\boxed{2}", "2"),                     // last box
            ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),                  // escaped braces do not count
            ("\\boxed{a{b{c}}d}", "a{b{c}}d"),                      // nested
            ("\\boxed{unclosed {", nil),
            ("\\boxed 5$", "5"),
            ("\\fbox{7}", "7"),
            ("#### 3 and \\boxed{4}", "4"),                         // a box takes precedence
            ("no answer here 42", nil),
            ("", nil),
            ("\\boxed", nil),
            ("\\boxed{}", ""),
            (String(repeating: "{", count: 10_000) + "\\boxed{9}", "9"),
        ]
        for (text, want) in table {
            XCTAssertEqual(FinalAnswer.extract(text), want, "extract(\(String(reflecting: String(text.prefix(60)))))")
        }
    }

    func testNormalisationEquatesTheSameNumberWrittenDifferently() {
        let same: [[String]] = [
            ["1000", "1,000", "1 000", "$1,000", "\\$1,000.", " 1000.00 ", "+1000", "1000\\%"],
            ["1/2", "0.5", ".5", "\\frac{1}{2}", "\\dfrac{1}{2}", "\\tfrac12", "$\\frac{2}{4}$", "\\frac{0.5}{1}"],
            ["-3/4", "-\\frac{3}{4}", "\\frac{-3}{4}", "\\frac{3}{-4}", "-0.75", "−0.75", "- 0.75", "--\\frac{-3}{4}"],
            ["0", "-0", "0.000", "+0", "\\frac{0}{5}"],
            ["42", "\\text{42}", "42^\\circ", "42°", "\\left(42\\right)".replacingOccurrences(of: "(", with: "")
                .replacingOccurrences(of: ")", with: ""), "\\mbox{ 42 }", "042"],
            ["x+1", " x + 1 ", "$x+1$", "\\(x+1\\)"],
        ]
        for group in same {
            let n = AnswerNormalizer.normalize(group[0])
            for s in group {
                XCTAssertEqual(AnswerNormalizer.normalize(s), n, "\(String(reflecting: s)) vs \(String(reflecting: group[0]))")
            }
        }
        XCTAssertEqual(AnswerNormalizer.normalize("\\frac{6}{4}"), "3/2")
        XCTAssertEqual(AnswerNormalizer.normalize("1,000"), "1000")
    }

    func testNormalisationKeepsDifferentAnswersApart() {
        let different: [(String, String)] = [
            ("1,00", "100"),           // bad separator groups are not a number
            ("1,0000", "10000"),
            ("12", "1.2"),
            ("1/2", "2"),
            ("-5", "5"),
            ("(1,2)", "12"),
            ("x+1", "x-1"),
            ("1/0", "0"),              // division by zero is text, not a trap
            ("\\frac{1}{0}", "1"),
            ("99999999999999999999", "99999999999999999998"),   // over 18 digits: compared as text
            ("1e3", "1000"),           // scientific notation is not normalised
            ("3.14159", "3.1416"),
        ]
        for (a, b) in different {
            XCTAssertFalse(AnswerNormalizer.equivalent(a, b), "\(a) must differ from \(b)")
        }
    }

    func testAdversarialAnswersNeverTrap() {
        let hostile = ["", "$", "\\frac", "\\frac{", "\\frac{1}", "\\frac{}{}", "/", "-", "+-+-", ".", "..", "1..2",
                       ",", ",,,", "9223372036854775807", "-9223372036854775808", "\\frac{9223372036854775807}{1}",
                       "999999999999999999/0.000000000000000001", String(repeating: "9", count: 10_000),
                       String(repeating: "\\text{", count: 1000), "\\text{" + String(repeating: "}", count: 50),
                       "\u{0}", "1\u{301}", "١٢٣", "１２"]
        for h in hostile {
            _ = AnswerNormalizer.normalize(h)
            _ = FinalAnswer.extract(h)
            _ = FinalAnswer.extract("\\boxed{" + h + "}")
        }
        XCTAssertNotEqual(AnswerNormalizer.normalize("١٢٣"), "123", "non-ASCII digits are text")
    }
}
