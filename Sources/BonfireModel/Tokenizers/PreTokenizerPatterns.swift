// Hand-written scanners with exactly the behaviour of the three pre-tokenisation regexes Hugging Face byte-level BPE
// files use (tokenizers runs them with Oniguruma, leftmost alternative first, with backtracking). No regex engine:
// each alternative is written out over Unicode scalars with the Unicode properties Oniguruma uses
// (\p{L} = general category L*, \p{N} = N*, \s = White_Space).
//
//   GPT-2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama-3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+
//            |\s+(?!\S)|\s+
//   Qwen2    the Llama-3 pattern with \p{N} (one digit) instead of \p{N}{1,3}
//
// Every position of a non-empty string starts a non-empty match of each pattern (every scalar is a letter, a number,
// white space or "other"), so a scan splits the text into consecutive pieces with no gaps.

package enum PreTokenizerPattern: Sendable, Equatable {
    case gpt2
    case llama3
    case qwen2

    /// The regex source strings as they appear in tokenizer.json files, mapped to their scanners.
    package static let known: [(source: String, pattern: PreTokenizerPattern)] = [
        (#"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#, .gpt2),
        (#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
         .llama3),
        (#"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
         .qwen2),
    ]

    package static func recognise(_ source: String) -> PreTokenizerPattern? {
        known.first { $0.source == source }?.pattern
    }

    /// The match ranges (consecutive, covering the whole input) of the pattern over `s`.
    package func matches(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        while i < s.count {
            let end: Int
            switch self {
            case .gpt2: end = Self.gpt2Match(s, i)
            case .llama3: end = Self.llamaMatch(s, i, maxDigits: 3)
            case .qwen2: end = Self.llamaMatch(s, i, maxDigits: 1)
            }
            precondition(end > i, "PreTokenizerPattern: empty match at \(i) of \(s.count) (scanner bug)")
            out.append(i..<end)
            i = end
        }
        return out
    }

    // MARK: character classes

    @inline(__always) static func isLetter(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    @inline(__always) static func isNumber(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    @inline(__always) static func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }

    @inline(__always) static func isOther(_ c: Unicode.Scalar) -> Bool { !isSpace(c) && !isLetter(c) && !isNumber(c) }

    @inline(__always) static func isCRLF(_ c: Unicode.Scalar) -> Bool { c == "\r" || c == "\n" }

    /// End of the run of scalars satisfying `p` starting at `i`.
    @inline(__always) static func run(_ s: [Unicode.Scalar], _ i: Int, _ p: (Unicode.Scalar) -> Bool) -> Int {
        var j = i
        while j < s.count && p(s[j]) { j += 1 }
        return j
    }

    /// Contractions: "'" then s|t|m|d or re|ve|ll; `caseInsensitive` applies Unicode simple case folding
    /// (ASCII letters and U+017F LATIN SMALL LETTER LONG S, which folds to "s").
    static func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int? {
        guard s[i] == "'", i + 1 < s.count else { return nil }
        func fold(_ c: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return c }
            if c == "\u{017F}" { return "s" }
            if c.value >= 0x41 && c.value <= 0x5A { return Unicode.Scalar(c.value + 32)! }
            return c
        }
        let a = fold(s[i + 1])
        if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
        guard i + 2 < s.count else { return nil }
        let b = fold(s[i + 2])
        if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return i + 3 }
        return nil
    }

    /// `\s+(?!\S)|\s+` at a white-space scalar: the run minus its last scalar when a non-space follows and the run is
    /// longer than one (the lookahead backtracks), else the whole run.
    static func spaceRun(_ s: [Unicode.Scalar], _ i: Int) -> Int {
        let j = run(s, i, isSpace)
        if j == s.count || j - i == 1 { return j }
        return j - 1
    }

    static func gpt2Match(_ s: [Unicode.Scalar], _ i: Int) -> Int {
        if let e = contraction(s, i, caseInsensitive: false) { return e }
        let c = s[i]
        let hasNext = i + 1 < s.count
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
        for p in [isLetter, isNumber, isOther] as [(Unicode.Scalar) -> Bool] {
            if c == " " && hasNext && p(s[i + 1]) { return run(s, i + 1, p) }
            if p(c) { return run(s, i, p) }
        }
        return spaceRun(s, i)
    }

    static func llamaMatch(_ s: [Unicode.Scalar], _ i: Int, maxDigits: Int) -> Int {
        if let e = contraction(s, i, caseInsensitive: true) { return e }
        let c = s[i]
        let hasNext = i + 1 < s.count
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if !isCRLF(c) && !isLetter(c) && !isNumber(c) && hasNext && isLetter(s[i + 1]) { return run(s, i + 1, isLetter) }
        if isLetter(c) { return run(s, i, isLetter) }
        // \p{N}{1,maxDigits}
        if isNumber(c) {
            var j = i
            while j < s.count && j - i < maxDigits && isNumber(s[j]) { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var k: Int? = nil
        if c == " " && hasNext && isOther(s[i + 1]) { k = i + 1 } else if isOther(c) { k = i }
        if let k { return run(s, run(s, k, isOther), isCRLF) }
        // \s*[\r\n]+ : up to and including the last CR/LF of the white-space run
        let j = run(s, i, isSpace)
        var p = j - 1
        while p >= i && !isCRLF(s[p]) { p -= 1 }
        if p >= i { return p + 1 }
        return spaceRun(s, i)
    }
}

/// GPT-2's reversible map from bytes to printable Unicode scalars (bytes 33…126, 161…172, 174…255 map to themselves,
/// the other 68 to U+0100…U+0143 in byte order).
package enum ByteLevelMap {
    package static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return table
    }()

    package static let scalarToByte: [UInt32: UInt8] = {
        var d: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { d[s.value] = UInt8(b) }
        return d
    }()

    package static func encode(_ text: Substring) -> String {
        var out = String.UnicodeScalarView()
        for b in text.utf8 { out.append(byteToScalar[Int(b)]) }
        return String(out)
    }
}
