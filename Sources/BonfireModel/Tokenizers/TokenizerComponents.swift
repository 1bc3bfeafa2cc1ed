// The pipeline stages of a Hugging Face tokenizer.json that byte-level BPE files use, each parsed from its JSON
// object with errors naming the field and listing what is supported:
//   normalizer     NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace (string pattern), Sequence
//   pre_tokenizer  ByteLevel (add_prefix_space, use_regex), Split (the GPT-2 / Llama-3 / Qwen2 regexes or a literal
//                  string; behaviours Isolated and Removed), Sequence
//   decoder        ByteLevel, Replace (string pattern), ByteFallback, Fuse, Strip, Sequence
//   post_processor TemplateProcessing (single-sequence template), ByteLevel (no effect on ids), Sequence

import Foundation

/// Replaces every non-overlapping occurrence of `pattern`, left to right, comparing Unicode scalars exactly (no
/// canonical equivalence, unlike Foundation's replacingOccurrences).
func replaceScalars(_ text: String, _ pattern: String, with replacement: String) -> String {
    let p = Array(pattern.unicodeScalars)
    guard !p.isEmpty else { return text }
    let s = Array(text.unicodeScalars)
    var out = String.UnicodeScalarView()
    var i = 0
    while i < s.count {
        if s[i] == p[0] && i + p.count <= s.count && Array(s[i..<(i + p.count)]) == p {
            out.append(contentsOf: replacement.unicodeScalars)
            i += p.count
        } else {
            out.append(s[i])
            i += 1
        }
    }
    return String(out)
}

package indirect enum TokenizerNormalizer: Sendable, Equatable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case prepend(String)
    case replace(pattern: String, content: String)
    case sequence([TokenizerNormalizer])

    static func parse(_ f: JSONField) throws -> TokenizerNormalizer? {
        if f.isNull { return nil }
        let type = try f.type()
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Prepend": return .prepend(try f["prepend"].string())
        case "Replace":
            guard !f["pattern"]["String"].isNull else {
                throw TokenizerFileError("\(f.path).pattern: only a literal {\"String\": …} pattern is supported")
            }
            let p = try f["pattern"]["String"].string()
            guard !p.isEmpty else { throw TokenizerFileError("\(f.path).pattern.String: the pattern is empty") }
            return .replace(pattern: p, content: try f["content"].string())
        case "Sequence":
            return .sequence(try f["normalizers"].array().compactMap { try parse($0) })
        default:
            throw TokenizerFileError("\(f.path).type: normalizer '\(type)' is not supported (supported: NFC, NFD, "
                                     + "NFKC, NFKD, Lowercase, Prepend, Replace, Sequence)")
        }
    }

    func apply(_ s: String) -> String {
        switch self {
        case .nfc: return s.precomposedStringWithCanonicalMapping
        case .nfd: return s.decomposedStringWithCanonicalMapping
        case .nfkc: return s.precomposedStringWithCompatibilityMapping
        case .nfkd: return s.decomposedStringWithCompatibilityMapping
        case .lowercase: return s.lowercased()
        case .prepend(let p): return s.isEmpty ? s : p + s
        case .replace(let p, let c): return replaceScalars(s, p, with: c)
        case .sequence(let list): return list.reduce(s) { $1.apply($0) }
        }
    }
}

package enum SplitBehavior: String, Sendable, Equatable {
    case isolated = "Isolated"
    case removed = "Removed"
}

package enum SplitPattern: Sendable, Equatable {
    case regex(PreTokenizerPattern)
    case literal(String)
}

package indirect enum TokenizerPreTokenizer: Sendable, Equatable {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(SplitPattern, SplitBehavior)
    case sequence([TokenizerPreTokenizer])

    static func parse(_ f: JSONField) throws -> TokenizerPreTokenizer? {
        if f.isNull { return nil }
        let type = try f.type()
        switch type {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try f["add_prefix_space"].bool(default: true),
                              useRegex: try f["use_regex"].bool(default: true))
        case "Split":
            let pattern: SplitPattern
            if !f["pattern"]["Regex"].isNull {
                let source = try f["pattern"]["Regex"].string()
                guard let p = PreTokenizerPattern.recognise(source) else {
                    throw TokenizerFileError("\(f.path).pattern.Regex: unsupported regex \(String(reflecting: source)); "
                                             + "supported: the GPT-2, Llama-3 and Qwen2 pre-tokenisation regexes")
                }
                pattern = .regex(p)
            } else {
                let s = try f["pattern"]["String"].string()
                guard !s.isEmpty else { throw TokenizerFileError("\(f.path).pattern.String: the pattern is empty") }
                pattern = .literal(s)
            }
            let b = try f["behavior"].string()
            guard let behavior = SplitBehavior(rawValue: b) else {
                throw TokenizerFileError("\(f.path).behavior: '\(b)' is not supported (supported: Isolated, Removed)")
            }
            guard try !f["invert"].bool(default: false) else {
                throw TokenizerFileError("\(f.path).invert: true is not supported")
            }
            return .split(pattern, behavior)
        case "Sequence":
            return .sequence(try f["pretokenizers"].array().compactMap { try parse($0) })
        default:
            throw TokenizerFileError("\(f.path).type: pre-tokenizer '\(type)' is not supported (supported: ByteLevel, "
                                     + "Split, Sequence)")
        }
    }

    /// Splits every piece further (pieces are never empty).
    func apply(_ pieces: [String]) -> [String] {
        switch self {
        case .sequence(let list):
            return list.reduce(pieces) { $1.apply($0) }
        case .byteLevel(let addPrefixSpace, let useRegex):
            return pieces.flatMap { piece -> [String] in
                var text = piece
                if addPrefixSpace && text.unicodeScalars.first != " " { text = " " + text }
                let parts = useRegex ? Self.split(text, .regex(.gpt2), .isolated) : [text]
                return parts.map { ByteLevelMap.encode(Substring($0)) }
            }
        case .split(let pattern, let behavior):
            return pieces.flatMap { Self.split($0, pattern, behavior) }
        }
    }

    static func split(_ text: String, _ pattern: SplitPattern, _ behavior: SplitBehavior) -> [String] {
        let s = Array(text.unicodeScalars)
        var matches: [Range<Int>] = []
        switch pattern {
        case .regex(let p): matches = p.matches(s)
        case .literal(let lit):
            let p = Array(lit.unicodeScalars)
            var i = 0
            while i + p.count <= s.count {
                if Array(s[i..<(i + p.count)]) == p { matches.append(i..<(i + p.count)); i += p.count } else { i += 1 }
            }
        }
        var out: [String] = []
        func piece(_ r: Range<Int>) {
            if !r.isEmpty { out.append(String(String.UnicodeScalarView(s[r]))) }
        }
        var last = 0
        for m in matches {
            piece(last..<m.lowerBound)
            if behavior == .isolated { piece(m) }
            last = m.upperBound
        }
        piece(last..<s.count)
        return out
    }
}

package indirect enum TokenizerDecoder: Sendable, Equatable {
    case byteLevel
    case replace(pattern: String, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case sequence([TokenizerDecoder])

    static func parse(_ f: JSONField) throws -> TokenizerDecoder? {
        if f.isNull { return nil }
        let type = try f.type()
        switch type {
        case "ByteLevel": return .byteLevel
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Replace":
            guard !f["pattern"]["String"].isNull else {
                throw TokenizerFileError("\(f.path).pattern: only a literal {\"String\": …} pattern is supported")
            }
            let p = try f["pattern"]["String"].string()
            guard !p.isEmpty else { throw TokenizerFileError("\(f.path).pattern.String: the pattern is empty") }
            return .replace(pattern: p, content: try f["content"].string())
        case "Strip":
            let c = try f["content"].string()
            guard c.unicodeScalars.count == 1, let ch = c.unicodeScalars.first else {
                throw TokenizerFileError("\(f.path).content: expected one character, got \(String(reflecting: c))")
            }
            return .strip(content: ch, start: try f["start"].int(in: 0...1_000_000),
                          stop: try f["stop"].int(in: 0...1_000_000))
        case "Sequence":
            return .sequence(try f["decoders"].array().compactMap { try parse($0) })
        default:
            throw TokenizerFileError("\(f.path).type: decoder '\(type)' is not supported (supported: ByteLevel, "
                                     + "Replace, ByteFallback, Fuse, Strip, Sequence)")
        }
    }

    /// `decode_chain` of tokenizers: tokens in, tokens out (the caller joins them).
    func apply(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let list):
            return list.reduce(tokens) { $1.apply($0) }
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens {
                var mapped: [UInt8] = []
                var ok = true
                for sc in t.unicodeScalars {
                    guard let b = ByteLevelMap.scalarToByte[sc.value] else { ok = false; break }
                    mapped.append(b)
                }
                bytes.append(contentsOf: ok ? mapped : Array(t.utf8))
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .replace(let p, let c):
            return tokens.map { replaceScalars($0, p, with: c) }
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { t in
                var chars = Substring(t).unicodeScalars
                var n = 0
                while n < start, chars.first == content { chars = chars.dropFirst(); n += 1 }
                n = 0
                while n < stop, chars.last == content { chars = chars.dropLast(); n += 1 }
                return String(String.UnicodeScalarView(chars))
            }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) {
                    out.append(s)
                } else {
                    out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for t in tokens {
                if let b = BPEModel.fallbackByte(t) { pending.append(b) } else { flush(); out.append(t) }
            }
            flush()
            return out
        }
    }
}

package enum TemplatePiece: Sendable, Equatable {
    case sequence
    case special([Int])
}

package indirect enum TokenizerPostProcessor: Sendable, Equatable {
    case template([TemplatePiece])
    case none
    case sequence([TokenizerPostProcessor])

    static func parse(_ f: JSONField, vocabSize: Int) throws -> TokenizerPostProcessor {
        if f.isNull { return .none }
        let type = try f.type()
        switch type {
        case "ByteLevel": return .none
        case "Sequence":
            return .sequence(try f["processors"].array().map { try parse($0, vocabSize: vocabSize) })
        case "TemplateProcessing":
            var specials: [String: [Int]] = [:]
            let table = f["special_tokens"]
            for (name, _) in try table.object() {
                specials[name] = try table[name]["ids"].array().map { try $0.int(in: 0...(vocabSize - 1)) }
            }
            var pieces: [TemplatePiece] = []
            for p in try f["single"].array() {
                if !p["SpecialToken"].isNull {
                    let name = try p["SpecialToken"]["id"].string()
                    guard let ids = specials[name] else {
                        throw TokenizerFileError("\(p.path).SpecialToken.id: '\(name)' is not in \(table.path)")
                    }
                    pieces.append(.special(ids))
                } else if !p["Sequence"].isNull {
                    pieces.append(.sequence)
                } else {
                    throw p.fail("{\"SpecialToken\": …} or {\"Sequence\": …}")
                }
            }
            return .template(pieces)
        default:
            throw TokenizerFileError("\(f.path).type: post-processor '\(type)' is not supported (supported: "
                                     + "TemplateProcessing, ByteLevel, Sequence)")
        }
    }

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .none: return ids
        case .sequence(let list): return list.reduce(ids) { $1.apply($0) }
        case .template(let pieces):
            return pieces.flatMap { p -> [Int] in
                switch p {
                case .sequence: return ids
                case .special(let s): return s
                }
            }
        }
    }
}
