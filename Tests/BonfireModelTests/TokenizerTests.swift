import XCTest
import BonfireModel

final class TokenizerTests: XCTestCase {
    func testVocabularyIsVersionOneWith64Ids() {
        XCTAssertEqual(Tokenizer.version, 1)
        XCTAssertEqual(Tokenizer.vocabSize, 64)
        XCTAssertEqual(try Tokenizer.encode("0"), [3])
        XCTAssertEqual(try Tokenizer.encode("a"), [32])
    }

    func testRoundTripAndErrors() throws {
        let s = "f(x)=if x<3 then x*2 else (x%7)-1;\nans: 42"
        XCTAssertEqual(Tokenizer.decode(try Tokenizer.encode(s)), s)
        XCTAssertEqual(Tokenizer.decode([Tokenizer.bos] + (try Tokenizer.encode("12")) + [Tokenizer.eos, 5]), "12")
        XCTAssertThrowsError(try Tokenizer.encode("X")) { e in
            XCTAssertTrue("\(e)".contains("not in the vocabulary"))
        }
    }
}
