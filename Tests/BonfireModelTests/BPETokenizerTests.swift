import Foundation
import XCTest
import BonfireModel

/// Byte-level BPE against Hugging Face `tokenizers` (fixtures from Scripts/make-tokenizer-fixtures.py): identical ids
/// and decoded strings on 10 000 generated strings for each of four tokenizer.json files.
final class BPETokenizerTests: XCTestCase {
    static func fixture(_ name: String) throws -> URL {
        let base = try XCTUnwrap(Bundle.module.resourceURL).appendingPathComponent("Fixtures/tokenizers")
        return base.appendingPathComponent(name)
    }

    static let corpus: [String] = {
        let data = try! Data(contentsOf: try! fixture("corpus.json"))
        return try! JSONDecoder().decode([String].self, from: data)
    }()

    struct Expected {
        var ids: [[Int]]
        var prefix: String
        var skip: [Int: String]
        var plain: [Int: String]
    }

    struct DecodedFile: Decodable {
        var prefix: String
        var skip: [String: String]
        var plain: [String: String]
    }

    static func expected(_ name: String) throws -> Expected {
        let bin = [UInt8](try Data(contentsOf: fixture(name + ".ids.bin")))
        var ids: [[Int]] = []
        var p = 0
        func u16() -> Int { defer { p += 2 }; return Int(bin[p]) | Int(bin[p + 1]) << 8 }
        while p < bin.count {
            let n = u16()
            ids.append((0..<n).map { _ in u16() })
        }
        let d = try JSONDecoder().decode(DecodedFile.self, from: Data(contentsOf: fixture(name + ".decoded.json")))
        func keyed(_ m: [String: String]) -> [Int: String] {
            Dictionary(uniqueKeysWithValues: m.map { (Int($0.key)!, $0.value) })
        }
        return Expected(ids: ids, prefix: d.prefix, skip: keyed(d.skip), plain: keyed(d.plain))
    }

    func check(_ name: String, strings: Int = 10_000, file: StaticString = #filePath, line: UInt = #line) throws {
        let tok = try BPETokenizer(contentsOf: Self.fixture(name + ".tokenizer.json"))
        let exp = try Self.expected(name)
        XCTAssertGreaterThanOrEqual(Self.corpus.count, 10_000)
        let corpus = Array(Self.corpus.prefix(strings))
        XCTAssertEqual(exp.ids.count, strings, file: file, line: line)
        var idMismatches = 0, skipMismatches = 0, plainMismatches = 0
        for (i, s) in corpus.enumerated() {
            let ids = tok.encode(s, addSpecialTokens: true)
            if ids != exp.ids[i] {
                idMismatches += 1
                if idMismatches <= 5 {
                    XCTFail("\(name) #\(i) \(String(reflecting: s)): ids \(ids) != HF \(exp.ids[i])", file: file, line: line)
                }
            }
            let skip = exp.skip[i] ?? s
            let gotSkip = tok.decode(exp.ids[i], skipSpecialTokens: true)
            if gotSkip != skip {
                skipMismatches += 1
                if skipMismatches <= 5 {
                    XCTFail("\(name) #\(i): decode \(String(reflecting: gotSkip)) != HF \(String(reflecting: skip))",
                            file: file, line: line)
                }
            }
            let plain = exp.plain[i] ?? (exp.prefix + skip)
            let gotPlain = tok.decode(exp.ids[i], skipSpecialTokens: false)
            if gotPlain != plain {
                plainMismatches += 1
                if plainMismatches <= 5 {
                    XCTFail("\(name) #\(i): decode(special) \(String(reflecting: gotPlain)) != HF "
                            + "\(String(reflecting: plain))", file: file, line: line)
                }
            }
        }
        print("\(name): \(corpus.count) strings, \(exp.ids.reduce(0) { $0 + $1.count }) ids; mismatches: ids "
              + "\(idMismatches), decode \(skipMismatches), decode(special) \(plainMismatches)")
        XCTAssertEqual(idMismatches + skipMismatches + plainMismatches, 0, file: file, line: line)
    }

    func testGPT2StyleMatchesHuggingFaceOnTenThousandStrings() throws { try check("gpt2") }
    func testLlama3StyleMatchesHuggingFaceOnTenThousandStrings() throws { try check("llama3") }
    func testQwen2StyleMatchesHuggingFaceOnTenThousandStrings() throws { try check("qwen2") }
    func testSentencePieceByteFallbackMatchesHuggingFaceOnTenThousandStrings() throws { try check("spbf") }
    func testByteLevelWithPrefixSpaceMatchesHuggingFace() throws { try check("gpt2ps", strings: 1000) }

    /// A file of real size (150 000 tokens and merges, like Qwen2's) loads and encodes; the load time is printed,
    /// not asserted (no timed tests).
    func testRealSizedVocabularyLoads() throws {
        var rng = SystemRandomNumberGenerator()
        let alphabet = ByteLevelMap.byteToScalar.map { String($0) }
        var tokens = alphabet
        var seen = Set(tokens)
        var merges: [String] = []
        while tokens.count < 150_000 {
            let a = tokens[Int.random(in: 0..<tokens.count, using: &rng)]
            let b = tokens[Int.random(in: 0..<min(tokens.count, 2000), using: &rng)]
            let t = a + b
            guard t.unicodeScalars.count <= 16, seen.insert(t).inserted else { continue }
            tokens.append(t)
            merges.append(a + " " + b)
        }
        func q(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var json = #"{"model":{"type":"BPE","vocab":{"#
        json += tokens.enumerated().map { q($0.element) + ":" + String($0.offset) }.joined(separator: ",")
        json += #"},"merges":["# + merges.map(q).joined(separator: ",") + "]},"
        json += #""pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"decoder":{"type":"ByteLevel"}}"#
        let start = Date()
        let tok = try BPETokenizer(data: Data(json.utf8))
        let seconds = Date().timeIntervalSince(start)
        XCTAssertEqual(tok.vocabSize, 150_000)
        let text = "Hello, wörld! 123 ümlaut 😀 " + String(repeating: "ab", count: 50)
        XCTAssertEqual(tok.decode(tok.encode(text, addSpecialTokens: true)), text)
        print(String(format: "150k-token tokenizer.json (%.1f MB) loaded in %.2f s", Double(json.utf8.count) / 1e6, seconds))
    }

    // MARK: hostile and unsupported files: thrown errors naming the field, never a trap

    static let minimal = #"{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}}"#

    func expectError(_ json: String, contains needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try BPETokenizer(data: Data(json.utf8)), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(needle), "\(e) does not mention \(needle)", file: file, line: line)
        }
    }

    func testMinimalFileEncodesByMergeRankAndDecodesWithoutDecoderBySpaces() throws {
        let t = try BPETokenizer(data: Data(Self.minimal.utf8))
        XCTAssertEqual(t.encode("abab", addSpecialTokens: true), [2, 2])
        XCTAssertEqual(t.encode("ba", addSpecialTokens: true), [1, 0])
        XCTAssertEqual(t.encode("", addSpecialTokens: true), [])
        XCTAssertEqual(t.encode("xa", addSpecialTokens: false), [0], "unknown scalar without unk token is dropped")
        XCTAssertEqual(t.decode([2, 0, -1, 99, Int.max, Int.min]), "ab a", "out-of-range ids are skipped")
        XCTAssertEqual(t.vocabSize, 3)
    }

    func testHostileFilesThrowErrorsNamingTheField() {
        expectError("", contains: "not valid JSON")
        expectError("[1,2]", contains: "expected an object")
        expectError("{}", contains: "model: missing")
        expectError(#"{"model":{"type":"WordPiece","vocab":{}}}"#, contains: "WordPiece")
        expectError(#"{"model":{"type":"BPE","vocab":[],"merges":[]}}"#, contains: "model.vocab: expected an object")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":-1},"merges":[]}}"#, contains: "model.vocab.a: -1 is out of range")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":99999999999},"merges":[]}}"#, contains: "out of range")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":1.5},"merges":[]}}"#, contains: "expected an integer")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":"0"},"merges":[]}}"#, contains: "expected an integer")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":0,"b":0},"merges":[]}}"#, contains: "id 0 is used by both")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":["a c"]}}"#, contains: "model.merges[0]")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":["a a"]}}"#, contains: "merged token \"aa\"")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":["a"]}}"#, contains: "not two tokens")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[["a"]]}}"#, contains: "a pair")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"unk_token":"<unk>"}}"#, contains: "unk_token")
        expectError(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"dropout":0.1}}"#, contains: "dropout")
        expectError(###"{"model":{"type":"BPE","vocab":{"a":0},"merges":[],"continuing_subword_prefix":"##"}}"###,
                    contains: "continuing_subword_prefix")
        let base = #""model":{"type":"BPE","vocab":{"a":0},"merges":[]}"#
        expectError("{\(base),\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\d+\"},\"behavior\":\"Isolated\"}}",
                    contains: "unsupported regex")
        expectError("{\(base),\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"Contiguous\"}}",
                    contains: "Contiguous")
        expectError("{\(base),\"pre_tokenizer\":{\"type\":\"Metaspace\"}}", contains: "pre_tokenizer.type: pre-tokenizer 'Metaspace'")
        expectError("{\(base),\"normalizer\":{\"type\":\"BertNormalizer\"}}", contains: "BertNormalizer")
        expectError("{\(base),\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\"\"},\"content\":\"x\"}}",
                    contains: "empty")
        expectError("{\(base),\"decoder\":{\"type\":\"WordPiece\"}}", contains: "decoder 'WordPiece'")
        expectError("{\(base),\"decoder\":{\"type\":\"Strip\",\"content\":\"ab\",\"start\":1,\"stop\":0}}", contains: "one character")
        expectError("{\(base),\"decoder\":{\"type\":\"Strip\",\"content\":\" \",\"start\":-1,\"stop\":0}}", contains: "out of range")
        expectError("{\(base),\"post_processor\":{\"type\":\"BertProcessing\"}}", contains: "BertProcessing")
        expectError("{\(base),\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\"}}],\"special_tokens\":{}}}",
                    contains: "'<s>' is not in")
        expectError("{\(base),\"added_tokens\":[{\"id\":5}]}", contains: "added_tokens[0].content")
        expectError("{\(base),\"added_tokens\":[{\"id\":5,\"content\":\"\"}]}", contains: "empty token")
        expectError("{\(base),\"added_tokens\":[{\"id\":-5,\"content\":\"x\"}]}", contains: "out of range")
        expectError("{\(base),\"added_tokens\":[{\"id\":5,\"content\":\"x\"},{\"id\":5,\"content\":\"y\"}]}",
                    contains: "id 5 is given to both")
        expectError("{\(base),\"added_tokens\":[{\"id\":5,\"content\":\"x\",\"single_word\":true}]}", contains: "single_word")
        expectError("{\(base),\"added_tokens\":[{\"id\":5,\"content\":\"x\",\"special\":\"yes\"}]}", contains: "true or false")
    }

    func testJSONReaderHandlesEscapesAndRejectsHostileDocuments() throws {
        let v = try JSONValue.parse(Data(#"{"a":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800z","b":[1,-2,3.5,1e2,true,false,null],"a":"last"}"#.utf8))
        XCTAssertEqual(v, .object(["a": .string("last"), "b": .array([.int(1), .int(-2), .double(3.5), .double(100),
                                                                       .bool(true), .bool(false), .null])]))
        let s = try JSONValue.parse(Data(#"["x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00\ud800z"]"#.utf8))
        XCTAssertEqual(s, .array([.string("x\"\\/\u{8}\u{c}\n\r\té😀\u{FFFD}z")]))
        XCTAssertEqual(try JSONValue.parse(Data("99999999999999999999".utf8)), .double(1e20))
        for bad in ["", "{", "[1,]", "{\"a\"}", "{\"a\":1,}", "01", "1.", "-", "tru", "\"abc", "\"\\x\"", "\"\\u12\"",
                    "\"a\nb\"", "[1] 2", String(repeating: "[", count: 100_000), "{\"a\":" + String(repeating: "{\"a\":", count: 600)] {
            XCTAssertThrowsError(try JSONValue.parse(Data(bad.utf8)), String(bad.prefix(20)))
        }
        XCTAssertThrowsError(try JSONValue.parse(Data([0x22, 0xFF, 0x22])))   // invalid UTF-8
    }

    func testMissingFileErrorSaysWhatToPass() {
        XCTAssertThrowsError(try BPETokenizer(contentsOf: URL(fileURLWithPath: "/nonexistent/dir"))) { e in
            XCTAssertTrue("\(e)".contains("tokenizer.json"), "\(e)")
        }
    }

    func testHostileInputsNeverTrap() throws {
        let tok = try BPETokenizer(contentsOf: Self.fixture("llama3.tokenizer.json"))
        let long = String(repeating: "a", count: 100_000) + String(repeating: " ", count: 10_000)
            + String(repeating: "9", count: 10_000) + String(repeating: "\u{301}", count: 1000)
        let ids = tok.encode(long, addSpecialTokens: false)
        XCTAssertEqual(tok.decode(ids), long)
        let spbf = try BPETokenizer(contentsOf: Self.fixture("spbf.tokenizer.json"))
        let word = String(repeating: "ab😀", count: 20_000)   // one 60 000-scalar word (no pre-tokenizer): heap merge
        XCTAssertEqual(spbf.decode(spbf.encode(word, addSpecialTokens: true)), word)
        XCTAssertEqual(tok.decode([-1, Int.max, tok.vocabSize, 0]), "")
        XCTAssertEqual(tok.decode([0], skipSpecialTokens: false), "<|begin_of_text|>")
    }

    func testSpecialTokensAreSplitOutAndFlagged() throws {
        let tok = try BPETokenizer(contentsOf: Self.fixture("qwen2.tokenizer.json"))
        let start = try XCTUnwrap(tok.id(of: "<|im_start|>"))
        let ids = tok.encode("<|im_start|>user", addSpecialTokens: false)
        XCTAssertEqual(ids.first, start)
        XCTAssertTrue(tok.isSpecial(start))
        let tool = try XCTUnwrap(tok.id(of: "[TOOL]"))
        XCTAssertFalse(tok.isSpecial(tool))
        XCTAssertEqual(tok.decode(ids), "user")
    }

    func testCharacterAndBPETokenizersShareTheProtocol() throws {
        let tokenizers: [any TextTokenizer] = [CharacterTokenizer(),
                                               try BPETokenizer(contentsOf: Self.fixture("gpt2.tokenizer.json"))]
        for t in tokenizers {
            XCTAssertEqual(t.decode(try t.encode("1+2=3")), "1+2=3")
            XCTAssertGreaterThan(t.vocabSize, 0)
        }
    }
}
