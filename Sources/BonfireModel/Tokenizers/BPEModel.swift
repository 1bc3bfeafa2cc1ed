// The BPE model of a tokenizer.json: vocabulary, merges by rank, unknown token, byte fallback.
//
// A word (one pre-token) starts as one symbol per Unicode scalar: the scalar's token if the vocabulary has it, else
// (byte fallback) one `<0xNN>` token per UTF-8 byte, else the unknown token (consecutive unknowns fused when
// `fuse_unk`), else the scalar is dropped (what tokenizers does without an unknown token). Then, as tokenizers'
// `Word::merge_all`, the adjacent pair with the lowest merge rank is merged, leftmost first, until no pair has a
// merge; a heap of (rank, position) with lazy invalidation keeps this O(n log n) for long words.
// With `ignore_merges` (Llama-3), a word that is itself in the vocabulary is emitted as that one token.

/// A token's text as UTF-8 bytes: an exact dictionary key (Swift String equality is canonical equivalence, under which
/// "\u{212B}" == "\u{00C5}"; tokenizers compares bytes).
package typealias TokenKey = [UInt8]

extension String {
    var tokenKey: TokenKey { Array(utf8) }
}

package struct BPEModel: Sendable {
    /// Token bytes → id.
    package let vocab: [TokenKey: Int]
    /// Pair (left id, right id) packed as left << 32 | right → (rank, merged id).
    let merges: [UInt64: (rank: Int, id: Int)]
    package let unkId: Int?
    package let fuseUnk: Bool
    package let byteFallback: Bool
    package let ignoreMerges: Bool
    /// `<0xNN>` ids when byte fallback is on (nil entries where the vocabulary lacks that byte).
    let byteIds: [Int?]

    /// Ids must be below this (16 Mi): bounds tables built from the file.
    package static let maxId = 1 << 24

    static func fallbackByte(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
              u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }

    static func parse(_ f: JSONField) throws -> BPEModel {
        let type = try f["type"].optionalString() ?? "BPE"
        guard type == "BPE" else {
            throw TokenizerFileError("\(f.path).type: model '\(type)' is not supported (supported: BPE)")
        }
        if case .double(let d) = f["dropout"].value, d != 0 {
            throw TokenizerFileError("\(f.path).dropout: \(d) is not supported (BPE dropout must be null or 0)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let s = try f[key].optionalString(), !s.isEmpty {
                throw TokenizerFileError("\(f.path).\(key): \(String(reflecting: s)) is not supported (must be null)")
            }
        }
        var vocab: [TokenKey: Int] = [:]
        var seen: [Int: String] = [:]
        let v = f["vocab"]
        let entries = try v.object()
        vocab.reserveCapacity(entries.count)
        for (token, value) in entries {
            // Fast path without building a JSONField per entry; errors go through the named accessor.
            guard case .int(let raw) = value, let id = Int(exactly: raw), id >= 0, id < maxId else {
                _ = try v[token].int(in: 0...(maxId - 1))
                throw v[token].fail("an integer")
            }
            if let other = seen[id] {
                throw TokenizerFileError("\(v.path): id \(id) is used by both \(String(reflecting: other)) and "
                                         + "\(String(reflecting: token))")
            }
            seen[id] = token
            vocab[token.tokenKey] = id
        }
        var merges: [UInt64: (rank: Int, id: Int)] = [:]
        guard case .array(let list) = f["merges"].value else { throw f["merges"].fail("an array") }
        merges.reserveCapacity(list.count)
        for (rank, value) in list.enumerated() {
            let a: String, b: String
            func field() -> JSONField { JSONField(value, path: "\(f.path).merges[\(rank)]") }
            switch value {
            case .string(let line):
                let parts = line.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw TokenizerFileError("\(field().path): merge \(String(reflecting: line)) is not two tokens "
                                             + "separated by one space")
                }
                a = String(parts[0]); b = String(parts[1])
            case .array(let pair):
                guard pair.count == 2, case .string(let x) = pair[0], case .string(let y) = pair[1] else {
                    throw field().fail("a pair [left, right] of strings")
                }
                a = x; b = y
            default:
                throw field().fail("a string \"left right\" or a pair [left, right]")
            }
            let ka = a.tokenKey, kb = b.tokenKey
            guard let ia = vocab[ka], let ib = vocab[kb] else {
                throw TokenizerFileError("\(field().path): merge token \(String(reflecting: vocab[ka] == nil ? a : b)) "
                                         + "is not in model.vocab")
            }
            guard let merged = vocab[ka + kb] else {
                throw TokenizerFileError("\(field().path): merged token \(String(reflecting: a + b)) is not in "
                                         + "model.vocab")
            }
            let key = UInt64(ia) << 32 | UInt64(ib)
            if merges[key] == nil { merges[key] = (rank, merged) }
        }
        var unkId: Int? = nil
        if let unk = try f["unk_token"].optionalString() {
            guard let id = vocab[unk.tokenKey] else {
                throw TokenizerFileError("\(f.path).unk_token: \(String(reflecting: unk)) is not in model.vocab")
            }
            unkId = id
        }
        let byteFallback = try f["byte_fallback"].bool(default: false)
        var byteIds = [Int?](repeating: nil, count: 256)
        if byteFallback {
            for b in 0..<256 {
                byteIds[b] = vocab[("<0x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2) + ">").tokenKey]
            }
        }
        return BPEModel(vocab: vocab, merges: merges, unkId: unkId, fuseUnk: try f["fuse_unk"].bool(default: false),
                        byteFallback: byteFallback, ignoreMerges: try f["ignore_merges"].bool(default: false),
                        byteIds: byteIds)
    }

    /// The token ids of one word.
    package func tokenize(_ word: String) -> [Int] {
        if ignoreMerges, let id = vocab[word.tokenKey] { return [id] }
        var symbols: [Int] = []
        symbols.reserveCapacity(word.unicodeScalars.count)
        var lastWasUnk = false
        var utf8 = [UInt8](repeating: 0, count: 4)
        for sc in word.unicodeScalars {
            var len = 0
            UTF8.encode(sc) { b in utf8[len] = b; len += 1 }
            if let id = vocab[Array(utf8[0..<len])] {
                symbols.append(id); lastWasUnk = false; continue
            }
            if byteFallback {
                let ids = String(sc).utf8.map { byteIds[Int($0)] }
                if ids.allSatisfy({ $0 != nil }) {
                    symbols.append(contentsOf: ids.map { $0! }); lastWasUnk = false; continue
                }
            }
            if let unkId {
                if !(fuseUnk && lastWasUnk) { symbols.append(unkId) }
                lastWasUnk = true
            }
        }
        return merge(symbols)
    }

    private struct Candidate: Comparable {
        var rank: Int
        var pos: Int
        var newId: Int
        static func < (a: Candidate, b: Candidate) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos }
    }

    private func merge(_ initial: [Int]) -> [Int] {
        let n = initial.count
        guard n > 1 else { return initial }
        var ids = initial
        var prev = Array(-1..<(n - 1))
        var next = Array(1...n); next[n - 1] = -1
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap<Candidate>()
        func push(_ i: Int) {
            let j = next[i]
            guard j >= 0, let m = merges[UInt64(ids[i]) << 32 | UInt64(ids[j])] else { return }
            heap.push(Candidate(rank: m.rank, pos: i, newId: m.id))
        }
        for i in 0..<(n - 1) { push(i) }
        while let top = heap.pop() {
            let i = top.pos
            guard alive[i], next[i] >= 0 else { continue }
            let j = next[i]
            // The pair at i may have changed since this candidate was pushed; like tokenizers, a candidate stays
            // valid when the current pair merges to the same token.
            guard let m = merges[UInt64(ids[i]) << 32 | UInt64(ids[j])], m.id == top.newId else { continue }
            ids[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] >= 0 { prev[next[j]] = i }
            if prev[i] >= 0 { push(prev[i]) }
            push(i)
        }
        var out: [Int] = []
        var i = 0
        while i >= 0 { out.append(ids[i]); i = next[i] }
        return out
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// A binary min-heap.
struct MinHeap<T: Comparable> {
    private var a: [T] = []
    var isEmpty: Bool { a.isEmpty }

    mutating func push(_ x: T) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if a[i] < a[p] { a.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> T? {
        guard !a.isEmpty else { return nil }
        a.swapAt(0, a.count - 1)
        let top = a.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < a.count && a[l] < a[m] { m = l }
            if r < a.count && a[r] < a[m] { m = r }
            if m == i { break }
            a.swapAt(i, m); i = m
        }
        return top
    }
}
