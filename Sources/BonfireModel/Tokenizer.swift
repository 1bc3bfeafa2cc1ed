// Character-level tokenizer, vocabulary version 1 (64 ids). Ids are stable: never reorder, only append in a new
// version (checkpoints record `tokenizer.version`).
//   0 PAD, 1 BOS, 2 EOS, 3–12 digits "0"…"9", then the symbols below, then "a"…"z", then filler symbols.
// Tasks write prompts and responses only with these characters; anything else is an operational error.

package struct TokenizerError: Error, CustomStringConvertible {
    package let character: Character
    package let text: String
    package var description: String {
        "tokenizer v\(Tokenizer.version): character \(String(reflecting: character)) is not in the vocabulary " +
        "(text: \(String(reflecting: String(text.prefix(40))))); allowed: \(String(reflecting: Tokenizer.characters))"
    }
}

package enum Tokenizer {
    package static let version = 1
    package static let pad = 0
    package static let bos = 1
    package static let eos = 2
    /// The printable characters, in id order starting at 3.
    package static let characters: String = "0123456789" + "+-*/%()=<>!?:,;.# \n" + "abcdefghijklmnopqrstuvwxyz" + "[]{}_|"
    package static let vocabSize = 3 + characters.count   // 64

    private static let table: [Character] = Array(characters)
    private static let index: [Character: Int] = {
        var d: [Character: Int] = [:]
        for (i, c) in table.enumerated() { d[c] = i + 3 }
        return d
    }()

    package static func encode(_ text: String) throws -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(text.count)
        for ch in text {
            guard let id = index[ch] else { throw TokenizerError(character: ch, text: text) }
            out.append(id)
        }
        return out
    }

    /// Decodes ids; special tokens are dropped (PAD/BOS) or end the text (EOS). Out-of-range ids become "?".
    package static func decode(_ ids: [Int]) -> String {
        var s = ""
        for id in ids {
            if id == eos { break }
            if id == pad || id == bos { continue }
            let k = id - 3
            s.append(k >= 0 && k < table.count ? table[k] : "?")
        }
        return s
    }

    package static func canEncode(_ text: String) -> Bool { text.allSatisfy { index[$0] != nil } }
}

// MARK: - The shared tokenizer interface (issue 16)

/// What the runtime needs from a tokenizer: the character tokenizer of the built-in tasks (`CharacterTokenizer`) and
/// byte-level BPE from a Hugging Face tokenizer.json (`BPETokenizer`) both conform.
package protocol TextTokenizer: Sendable {
    /// Number of ids (the embedding table must have at least this many rows).
    var vocabSize: Int { get }
    /// Ids of the text alone (no BOS/EOS). Throws when the text cannot be represented (character tokenizer).
    func encode(_ text: String) throws -> [Int]
    /// Text of ids; special tokens are dropped, out-of-range ids skipped (character tokenizer: "?" and stop at EOS).
    func decode(_ ids: [Int]) -> String
}

/// The character tokenizer (`Tokenizer`, vocabulary version 1) as a TextTokenizer value.
package struct CharacterTokenizer: TextTokenizer {
    package init() {}
    package var vocabSize: Int { Tokenizer.vocabSize }
    package func encode(_ text: String) throws -> [Int] { try Tokenizer.encode(text) }
    package func decode(_ ids: [Int]) -> String { Tokenizer.decode(ids) }
}
