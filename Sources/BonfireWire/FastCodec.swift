// A hand-written protobuf codec for the two envelopes that carry bulk data — parameter broadcasts (`.parameters`)
// and BoN rollout batches (`.bonGroups`) — beside protobuf-c, which stays the reference and handles every other
// payload (and every frame this codec declines).
//
// Why (measured, docs/performance.md "Wire"): protobuf-c encodes from a C struct tree we first build (an arena of
// mallocs, a uint32 copy of the token ids, a copy of the log-probs, a size walk) and decodes into malloc'd copies of
// every bytes field, which we then copied again into Swift arrays. Here encoding writes the wire bytes straight into
// the destination (the ZeroMQ message), narrowing token ids on the way, and decoding copies each field once, from
// the received frame into its Swift array. Parameters: one memcpy on each side. The decoding copies also compute what
// validation checks in its common case (the parameters' largest |x|; per BoN response the OR of its ids and whether
// its log-probs are in the default range), so the learner reads a received value once, not twice.
//
// Encoding is byte-identical to protobuf-c's (fields in number order, proto3 zero values omitted, floats compared
// with `== 0` as protobuf-c does); FastCodecTests checks it on random and hostile values.
//
// Decoding is a strict subset of what protobuf-c accepts, so validation is unchanged: it takes only the known fields
// of these messages with their declared wire types, each singular field at most once, varints of at most 10 bytes
// whose value fits the field, ASCII strings without NUL, lengths inside the frame, and lengths the Swift value needs
// (whole float32/uint32 counts, one log-prob per token, byte_length == len(data)). Anything else — an unknown field,
// a duplicate, another payload, a truncated or inconsistent frame — makes it decline (`nil`), and the frame goes
// through protobuf-c and the usual checks exactly as before, with the same error and drop reason. FastCodecTests
// decodes fuzzed frames both ways and requires that whatever this accepts, protobuf-c accepts with the same value.
import CBonfireKernels
import Foundation

package enum FastCodec {
    // MARK: - Encoding

    /// Bytes of the encoded envelope, or nil when this codec does not encode it (another payload, or a string with
    /// a NUL, which protobuf-c's C strings would cut): use protobuf-c then.
    static func encodedSize(_ env: WireEnvelope) -> Int? {
        guard let body = payloadSize(env.payload), let head = headerSize(env) else { return nil }
        return head + 1 + varintSize(UInt64(body)) + body
    }

    /// Writes `env` into `out`, which must hold exactly `encodedSize(env)` bytes.
    static func encode(_ env: WireEnvelope, into out: UnsafeMutableRawBufferPointer) {
        guard let body = payloadSize(env.payload) else { preconditionFailure("FastCodec.encode: payload \(env.payload.kind) not handled") }
        var w = Writer(base: out.baseAddress!, count: out.count)
        w.varintField(1, UInt64(env.protocolVersion))
        w.string(2, env.runID)
        w.varintField(3, UInt64(env.senderRole.rawValue))
        w.varintField(4, UInt64(env.senderID))
        w.varintField(5, env.sequence)
        switch env.payload {
        case .parameters(let p):
            w.tag(13, 2); w.varint(UInt64(body))
            w.varintField(1, p.version)
            w.varintField(2, p.layoutHash)
            w.varintField(3, UInt64(p.byteLength))
            if !p.values.isEmpty {
                w.tag(4, 2); w.varint(UInt64(p.byteLength))
                p.values.withUnsafeBytes { w.bytes($0) }
            }
        case .bonGroups(let b):
            w.tag(14, 2); w.varint(UInt64(body))
            w.string(1, b.task)
            // Index loops over borrowed buffers: `for g in b.groups` copied every group and response (a retain and
            // release of each of their arrays, ~30% of encoding a 1 KiB rollout in `perf`).
            b.groups.withUnsafeBufferPointer { groups in
                for gi in groups.indices { writeGroup(groups[gi], &w) }
            }
        default:
            preconditionFailure("FastCodec.encode: payload \(env.payload.kind) not handled")
        }
        precondition(w.position == out.count, "FastCodec wrote \(w.position) bytes into a buffer of \(out.count)")
    }

    /// `env` encoded into a new array, or nil (see `encodedSize`).
    static func encoded(_ env: WireEnvelope) -> [UInt8]? {
        guard let size = encodedSize(env) else { return nil }
        return [UInt8](unsafeUninitializedCapacity: size) { buf, n in
            encode(env, into: UnsafeMutableRawBufferPointer(buf))
            n = size
        }
    }

    private static func headerSize(_ env: WireEnvelope) -> Int? {
        guard let run = stringSize(2, env.runID) else { return nil }
        return varintFieldSize(UInt64(env.protocolVersion)) + run + varintFieldSize(UInt64(env.senderRole.rawValue))
            + varintFieldSize(UInt64(env.senderID)) + varintFieldSize(env.sequence)
    }

    private static func payloadSize(_ p: WirePayload) -> Int? {
        switch p {
        case .parameters(let m):
            return varintFieldSize(m.version) + varintFieldSize(m.layoutHash) + varintFieldSize(UInt64(m.byteLength))
                + bytesFieldSize(m.byteLength)
        case .bonGroups(let b):
            guard var n = stringSize(1, b.task) else { return nil }
            b.groups.withUnsafeBufferPointer { gs in
                for gi in gs.indices { let s = groupSize(gs[gi]); n += 1 + varintSize(UInt64(s)) + s }
            }
            return n
        default:
            return nil
        }
    }

    private static func groupSize(_ g: WireBoNGroup) -> Int {
        var n = varintFieldSize(g.itemID) + bytesFieldSize(4 * g.promptTokens.count) + varintFieldSize(g.behaviourVersion)
        g.responses.withUnsafeBufferPointer { rs in
            for ri in rs.indices { let s = responseSize(rs[ri]); n += 1 + varintSize(UInt64(s)) + s }
        }
        return n + (g.temperature != 0 ? 5 : 0)
    }

    @inline(__always)
    private static func responseSize(_ r: WireBoNResponse) -> Int {
        bytesFieldSize(4 * r.tokens.count) + bytesFieldSize(4 * r.tokenLogProbs.count)
            + (r.verifierScore != 0 ? 9 : 0) + (r.reward != 0 ? 9 : 0)
    }

    private static func writeGroup(_ g: WireBoNGroup, _ w: inout Writer) {
        w.tag(2, 2); w.varint(UInt64(groupSize(g)))
        w.varintField(1, g.itemID)
        w.tokens(2, g.promptTokens)
        w.varintField(3, g.behaviourVersion)
        g.responses.withUnsafeBufferPointer { rs in
            for ri in rs.indices {  // rs[ri] each time, not `let r = rs[ri]`: a borrow, not a copy (+2 retains)
                precondition(rs[ri].tokens.count == rs[ri].tokenLogProbs.count,
                             "BoN response: \(rs[ri].tokens.count) tokens but \(rs[ri].tokenLogProbs.count) log-probs")
                w.tag(4, 2); w.varint(UInt64(responseSize(rs[ri])))
                w.tokens(1, rs[ri].tokens)
                if !rs[ri].tokenLogProbs.isEmpty {
                    w.tag(2, 2); w.varint(UInt64(4 * rs[ri].tokenLogProbs.count))
                    rs[ri].tokenLogProbs.withUnsafeBytes { w.bytes($0) }
                }
                w.double(3, rs[ri].verifierScore)
                w.double(4, rs[ri].reward)
            }
        }
        if g.temperature != 0 { w.tag(5, 5); w.fixed32(g.temperature.bitPattern) }
    }

    @inline(__always) static func varintSize(_ v: UInt64) -> Int { max(1, (64 - v.leadingZeroBitCount + 6) / 7) }
    /// A varint field with a one-byte tag (all our field numbers are < 16); omitted when zero (proto3).
    @inline(__always) private static func varintFieldSize(_ v: UInt64) -> Int { v == 0 ? 0 : 1 + varintSize(v) }
    @inline(__always) private static func bytesFieldSize(_ n: Int) -> Int { n == 0 ? 0 : 1 + varintSize(UInt64(n)) + n }
    /// nil when `s` holds a NUL (protobuf-c would send it cut at the NUL: let it, to stay byte-identical).
    private static func stringSize(_ field: Int, _ s: String) -> Int? {
        var s = s
        return s.withUTF8 { u in u.contains(0) ? nil : bytesFieldSize(u.count) }
    }

    private struct Writer {
        let base: UnsafeMutableRawPointer
        let count: Int
        var position = 0

        @inline(__always) mutating func byte(_ b: UInt8) {
            base.storeBytes(of: b, toByteOffset: position, as: UInt8.self)
            position += 1
        }
        @inline(__always) mutating func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 { byte(UInt8(truncatingIfNeeded: v) | 0x80); v >>= 7 }
            byte(UInt8(v))
        }
        @inline(__always) mutating func tag(_ field: Int, _ wireType: Int) { byte(UInt8(field << 3 | wireType)) }
        @inline(__always) mutating func varintField(_ field: Int, _ v: UInt64) {
            if v != 0 { tag(field, 0); varint(v) }
        }
        mutating func fixed32(_ v: UInt32) {
            base.storeBytes(of: v.littleEndian, toByteOffset: position, as: UInt32.self)
            position += 4
        }
        mutating func double(_ field: Int, _ v: Double) {
            guard v != 0 else { return }
            tag(field, 1)
            base.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: position, as: UInt64.self)
            position += 8
        }
        mutating func bytes(_ raw: UnsafeRawBufferPointer) {
            guard raw.count > 0 else { return }
            precondition(position + raw.count <= count, "FastCodec: write past the end of the message")
            memcpy(base + position, raw.baseAddress!, raw.count)
            position += raw.count
        }
        mutating func string(_ field: Int, _ s: String) {
            var s = s
            s.withUTF8 { u in
                guard u.count > 0 else { return }
                tag(field, 2); varint(UInt64(u.count)); bytes(UnsafeRawBufferPointer(u))
            }
        }
        /// Token ids as uint32 LE bytes, narrowed straight into the message. Ids must be in 0...UInt32.max
        /// (programmer error otherwise, as in the protobuf-c path): one pass ORs the high halves to check that.
        mutating func tokens(_ field: Int, _ ids: [Int]) {
            guard !ids.isEmpty else { return }
            tag(field, 2); varint(UInt64(4 * ids.count))
            precondition(position + 4 * ids.count <= count, "FastCodec: write past the end of the message")
            let out = base + position
            var high: UInt64 = 0
            ids.withUnsafeBufferPointer { src in
                for i in 0..<src.count {
                    let v = UInt64(bitPattern: Int64(src[i]))
                    high |= v >> 32
                    out.storeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                }
            }
            if high != 0 {
                let lo = ids.min()!, hi = ids.max()!
                preconditionFailure("token ids must be in 0...\(UInt32.max), got range \(lo)...\(hi)")
            }
            position += 4 * ids.count
        }
    }

    // MARK: - Decoding

    /// The envelope in `frame` if it is a parameters or BoN-groups envelope this codec fully understands; nil
    /// otherwise (decode it with protobuf-c, which also produces the error for a bad frame).
    static func decode(_ frame: UnsafeRawBufferPointer) -> WireEnvelope? {
        guard frame.count > 0 else { return nil }
        var r = Reader(base: frame.baseAddress!, end: frame.count)
        var seen: UInt32 = 0
        var protocolVersion: UInt32 = 0, senderID: UInt32 = 0, sequence: UInt64 = 0
        var runID = "", role = WireRole.unspecified
        var payload: WirePayload?
        while !r.atEnd {
            guard let (field, wireType) = r.tag(), field < 32 else { return nil }
            let bit: UInt32 = 1 << field
            guard seen & bit == 0 else { return nil }  // a repeated singular field: protobuf-c merges; decline
            seen |= bit
            switch (field, wireType) {
            case (1, 0): guard let v = r.uint32() else { return nil }; protocolVersion = v
            case (2, 2): guard let s = r.string() else { return nil }; runID = s
            case (3, 0):
                guard let v = r.varint(), v <= UInt64(WireRole.allCases.count), let ro = WireRole(rawValue: UInt32(v))
                else { return nil }
                role = ro
            case (4, 0): guard let v = r.uint32() else { return nil }; senderID = v
            case (5, 0): guard let v = r.varint() else { return nil }; sequence = v
            case (13, 2):
                guard payload == nil, let sub = r.submessage(), let p = parameters(sub) else { return nil }
                payload = .parameters(p)
            case (14, 2):
                guard payload == nil, let sub = r.submessage(), let b = bonGroups(sub) else { return nil }
                payload = .bonGroups(b)
            default:
                return nil  // another payload, an unknown field or a wrong wire type
            }
        }
        guard let payload else { return nil }
        return WireEnvelope(runID: runID, senderRole: role, senderID: senderID, sequence: sequence, payload: payload,
                            protocolVersion: protocolVersion)
    }

    private static func parameters(_ m: UnsafeRawBufferPointer) -> WireParameters? {
        var r = Reader(m)
        var seen: UInt32 = 0
        var version: UInt64 = 0, layoutHash: UInt64 = 0, byteLength: UInt64 = 0
        var data = UnsafeRawBufferPointer(start: nil, count: 0)
        while !r.atEnd {
            guard let (field, wireType) = r.tag(), field < 32 else { return nil }
            guard seen & (1 << field) == 0 else { return nil }
            seen |= 1 << field
            switch (field, wireType) {
            case (1, 0): guard let v = r.varint() else { return nil }; version = v
            case (2, 0): guard let v = r.varint() else { return nil }; layoutHash = v
            case (3, 0): guard let v = r.varint() else { return nil }; byteLength = v
            case (4, 2): guard let b = r.submessage() else { return nil }; data = b
            default: return nil
            }
        }
        guard byteLength == UInt64(data.count), data.count % 4 == 0 else { return nil }
        // Copy in 64 KiB slices and take the validator's largest |x| of each slice while it is still in cache.
        let n = data.count / 4
        var worst: UInt32 = 0
        let values = n == 0 ? [] : [Float](unsafeUninitializedCapacity: n) { buf, c in
            let slice = 16 << 10
            var i = 0
            while i < n {
                let m = min(slice, n - i)
                memcpy(buf.baseAddress! + i, data.baseAddress! + 4 * i, 4 * m)
                worst = max(worst, WireParameters.largestMagnitudeBits(UnsafeBufferPointer(rebasing: buf[i..<(i + m)])))
                i += m
            }
            c = n
        }
        return WireParameters(version: version, layoutHash: layoutHash, values: values, largestMagnitudeBits: worst)
    }

    // BoN groups. Per message this allocates only what the decoded value holds — the groups array, per group the
    // prompt and responses arrays, per response its token and log-prob arrays — each once, at its final size:
    // - `groups` and `responses` are sized by a first pass over their tags (`count(of:in:)`: a few bytes per
    //   response), instead of growing by doubling (1, 2, 4, 8: four allocations and three copies for N = 8);
    // - token and log-prob arrays are filled in place through `append(contentsOf:)` of a sequence whose
    //   `_copyContents` runs the copy kernel into the new storage (`FilledInPlace`): that allocation
    //   is specialized code, whereas `Array(unsafeUninitializedCapacity:)` calls into the generic runtime, which looks
    //   the array's storage type up in a locked hash map on every call (`swift_getGenericMetadata`: ~30% of decoding
    //   a 1 KiB rollout and ~10% at 64 KiB in `perf`). Until the sixth pass short arrays (≤ 128 ids / 256 log-probs)
    //   were built on the stack and appended (a second copy) and long ones paid the lookup; `wire codec` decode:
    //   1 KiB 1.60 → 1.52 µs, 64 KiB 4.4–4.6 → 3.8 µs (docs/performance.md, "Wire benchmark, sixth pass").
    // The accepted frames and decoded values are exactly those of the plain loop this replaced (FastCodecTests).

    private static func bonGroups(_ m: UnsafeRawBufferPointer) -> WireBoNGroupBatch? {
        guard let groupCount = count(of: 2, in: m) else { return nil }
        var r = Reader(m)
        var task = "", sawTask = false
        var groups: [WireBoNGroup] = []
        groups.reserveCapacity(groupCount)
        while !r.atEnd {
            guard let (field, wireType) = r.tag() else { return nil }
            switch (field, wireType) {
            case (1, 2):
                guard !sawTask, let s = r.string() else { return nil }
                task = s; sawTask = true
            case (2, 2):
                guard let sub = r.submessage(), let g = group(sub) else { return nil }
                groups.append(g)
            default: return nil
            }
        }
        return WireBoNGroupBatch(task: task, groups: groups)
    }

    private static func group(_ m: UnsafeRawBufferPointer) -> WireBoNGroup? {
        guard let responseCount = count(of: 4, in: m) else { return nil }
        var r = Reader(m)
        var seen: UInt32 = 0
        var itemID: UInt64 = 0, version: UInt64 = 0, temperature: Float = 0
        var prompt: [Int] = [], promptBits: UInt32 = 0
        var responses: [WireBoNResponse] = []
        responses.reserveCapacity(responseCount)
        while !r.atEnd {
            guard let (field, wireType) = r.tag(), field < 32 else { return nil }
            if field != 4 {
                guard seen & (1 << field) == 0 else { return nil }
                seen |= 1 << field
            }
            switch (field, wireType) {
            case (1, 0): guard let v = r.varint() else { return nil }; itemID = v
            case (2, 2): guard let b = r.submessage(), let (t, m) = tokens(b) else { return nil }; prompt = t; promptBits = m
            case (3, 0): guard let v = r.varint() else { return nil }; version = v
            case (4, 2): guard let sub = r.submessage(), let x = response(sub) else { return nil }; responses.append(x)
            case (5, 5): guard let v = r.fixed32() else { return nil }; temperature = Float(bitPattern: v)
            default: return nil
            }
        }
        return WireBoNGroup(itemID: itemID, promptTokens: prompt, decodedPromptIDBits: promptBits, behaviourVersion: version,
                            temperature: temperature, responses: responses)
    }

    private static func response(_ m: UnsafeRawBufferPointer) -> WireBoNResponse? {
        var r = Reader(m)
        var seen: UInt32 = 0
        var ids: [Int] = [], logProbs: [Float] = []
        var idBits: UInt32 = 0, withinRange = true  // (what the empty arrays of an absent field satisfy)
        var score = 0.0, reward = 0.0
        while !r.atEnd {
            guard let (field, wireType) = r.tag(), field < 32 else { return nil }
            guard seen & (1 << field) == 0 else { return nil }
            seen |= 1 << field
            switch (field, wireType) {
            case (1, 2): guard let b = r.submessage(), let (t, m) = tokens(b) else { return nil }; ids = t; idBits = m
            case (2, 2):
                guard let b = r.submessage(), let (f, ok) = logProbValues(b) else { return nil }
                logProbs = f; withinRange = ok
            case (3, 1): guard let v = r.fixed64() else { return nil }; score = Double(bitPattern: v)
            case (4, 1): guard let v = r.fixed64() else { return nil }; reward = Double(bitPattern: v)
            default: return nil
            }
        }
        guard ids.count == logProbs.count else { return nil }
        return WireBoNResponse(tokens: ids, tokenLogProbs: logProbs, verifierScore: score, reward: reward,
                               decodedSummary: WireResponseSummary(tokenIDBits: idBits, logProbsWithinDefaultRange: withinRange))
    }

    /// How many fields numbered `field` with wire type 2 the message `m` holds (to size an array before decoding
    /// into it); nil for a frame that does not parse as fields of wire types 0, 1, 2 and 5 (the decoder would
    /// decline it anyway). Skips values without looking at them.
    static func count(of field: Int, in m: UnsafeRawBufferPointer) -> Int? {
        var r = Reader(m)
        var n = 0
        while !r.atEnd {
            guard let (f, wireType) = r.tag() else { return nil }
            switch wireType {
            case 0: guard r.varint() != nil else { return nil }
            case 1: guard r.fixed64() != nil else { return nil }
            case 2: guard r.submessage() != nil else { return nil }; if f == field { n += 1 }
            case 5: guard r.fixed32() != nil else { return nil }
            default: return nil
            }
        }
        return n
    }

    // The copies below also compute what validation checks (`WireResponseSummary`), in the same pass, with
    // branch-free lane operations: the OR of the ids (one instruction per lane group; an exact maximum costs ~10×
    // that on x86-64's baseline, which has no unsigned compare: measured, docs/performance.md "Wire, fifth pass")
    // and whether every log-prob is inside `ValidationContext.defaultLogProbRange` (two compares per lane; NaN fails
    // both, ±infinity one).

    /// float32 LE log-probs → [Float], one copy, and whether all are finite and inside the default range; nil unless
    /// a whole number of floats.
    private static func logProbValues(_ b: UnsafeRawBufferPointer) -> ([Float], Bool)? {
        guard b.count % 4 == 0 else { return nil }
        let n = b.count / 4
        guard n > 0 else { return ([], true) }
        let src = b.baseAddress!
        var ok = true
        var values: [Float] = []
        values.append(contentsOf: FilledInPlace<Float>(count: n) { ok = copyLogProbsFast(src, UnsafeMutableRawPointer($0), n) })
        return (values, ok)
    }

    /// `count` elements that `fill` writes straight into the storage of the array being appended to (one copy out of
    /// the frame, in the array's final allocation): `append(contentsOf:)` hands its new storage to `_copyContents`.
    /// `fill` also computes the validation summary (a copy kernel below) and stores it through its own pointer.
    /// Used only with concrete element types in this file, so it is specialized: no runtime metadata lookup.
    private struct FilledInPlace<Element>: Sequence {
        let count: Int
        let fill: (UnsafeMutablePointer<Element>) -> Void
        struct Iterator: IteratorProtocol { mutating func next() -> Element? { nil } }
        func makeIterator() -> Iterator { Iterator() }
        var underestimatedCount: Int { count }
        func _copyContents(initializing buffer: UnsafeMutableBufferPointer<Element>) -> (Iterator, Int) {
            precondition(buffer.count >= count, "append(contentsOf:) gave \(buffer.count) slots for \(count) elements")
            fill(buffer.baseAddress!)
            return (Iterator(), count)
        }
    }

    /// Copies `n` float32 LE values from `src` (any alignment) to `dst`; true iff every one is in the default
    /// log-prob range (hence finite). Fast path: the C kernel at the CPU's widest vectors (`bfk_copy_f32_in_range`;
    /// Swift's SIMD16 compiles to SSE halves on baseline x86-64, which made this pass ≈ 1 µs slower than a plain
    /// copy per 64 KiB rollout); `copyLogProbsPlain` is its twin.
    @inline(__always)
    package static func copyLogProbsFast(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) -> Bool {
        bfk_copy_f32_in_range(dst.assumingMemoryBound(to: Float.self), src, n,
                              ValidationContext.defaultLogProbRange.lowerBound,
                              ValidationContext.defaultLogProbRange.upperBound) != 0
    }

    /// Plain twin of `copyLogProbs` (tests compare them).
    package static func copyLogProbsPlain(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) -> Bool {
        let lo = ValidationContext.defaultLogProbRange.lowerBound, hi = ValidationContext.defaultLogProbRange.upperBound
        let lo16 = SIMD16<Float>(repeating: lo), hi16 = SIMD16<Float>(repeating: hi)
        var ok = SIMDMask<SIMD16<Int32>>(repeating: true)
        var i = 0
        while i + 16 <= n {  // (little-endian hosts, as memcpy)
            let v = src.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
            dst.storeBytes(of: v, toByteOffset: 4 * i, as: SIMD16<Float>.self)
            ok = ok .& (v .>= lo16) .& (v .<= hi16)
            i += 16
        }
        var tail = true
        while i < n {
            let x = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            dst.storeBytes(of: x, toByteOffset: 4 * i, as: Float.self)
            tail = tail && x >= lo && x <= hi
            i += 1
        }
        return tail && all(ok)
    }

    /// uint32 LE bytes → token ids, one widening pass, and their OR; nil unless a whole number of ids.
    private static func tokens(_ b: UnsafeRawBufferPointer) -> ([Int], UInt32)? {
        guard b.count % 4 == 0 else { return nil }
        let n = b.count / 4
        guard n > 0 else { return ([], 0) }
        let src = b.baseAddress!
        var bits: UInt32 = 0
        var ids: [Int] = []
        ids.append(contentsOf: FilledInPlace<Int>(count: n) { bits = widenTokensFast(src, $0, n) })
        return (ids, bits)
    }

    /// Widens `n` uint32 LE ids at `src` (any alignment) into `dst`; returns their OR. Fast path: the C kernel
    /// (`bfk_widen_u32_ids`, 64-bit Int); `widenTokensPlain` is its twin.
    @inline(__always)
    package static func widenTokensFast(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Int>, _ n: Int) -> UInt32 {
        precondition(MemoryLayout<Int>.size == 8, "FastCodec: token ids widen to a 64-bit Int")
        return UnsafeMutableRawPointer(dst).withMemoryRebound(to: Int64.self, capacity: n) { bfk_widen_u32_ids($0, src, n) }
    }

    /// Plain twin of `widenTokens` (tests compare them).
    package static func widenTokensPlain(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Int>, _ n: Int) -> UInt32 {
        var bits: UInt32 = 0
        for i in 0..<n {
            let v = UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            bits |= v
            dst[i] = Int(v)
        }
        return bits
    }

    /// A bounds-checked cursor over one message's bytes; every read returns nil instead of running past the end.
    private struct Reader {
        let base: UnsafeRawPointer
        let end: Int
        var position = 0

        init(base: UnsafeRawPointer, end: Int) { self.base = base; self.end = end }
        init(_ b: UnsafeRawBufferPointer) {
            // An empty sub-message may have no base address; any non-null pointer will do for zero bytes.
            self.init(base: b.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, end: b.count)
        }

        var atEnd: Bool { position >= end }

        /// At most 10 bytes, the 10th holding only the top bit (protobuf-c rejects longer ones: so do we, by declining).
        mutating func varint() -> UInt64? {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while position < end {
                let b = base.load(fromByteOffset: position, as: UInt8.self)
                position += 1
                if shift == 63 && b > 1 { return nil }
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return v }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }
        mutating func uint32() -> UInt32? {
            guard let v = varint(), v <= UInt64(UInt32.max) else { return nil }
            return UInt32(v)
        }
        /// (field number, wire type); nil for field 0 or a field number beyond what we use.
        mutating func tag() -> (Int, Int)? {
            guard let t = varint(), t >> 3 > 0, t >> 3 < 64 else { return nil }
            return (Int(t >> 3), Int(t & 7))
        }
        mutating func fixed32() -> UInt32? {
            guard end - position >= 4 else { return nil }
            defer { position += 4 }
            return UInt32(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt32.self))
        }
        mutating func fixed64() -> UInt64? {
            guard end - position >= 8 else { return nil }
            defer { position += 8 }
            return UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        }
        /// A length-delimited field's bytes (sub-message, bytes or string).
        mutating func submessage() -> UnsafeRawBufferPointer? {
            guard let n = varint(), n <= UInt64(end - position) else { return nil }
            defer { position += Int(n) }
            return UnsafeRawBufferPointer(start: base + position, count: Int(n))
        }
        /// ASCII without NUL only (protobuf-c's C strings stop at a NUL; other bytes are left to its checks).
        mutating func string() -> String? {
            guard let b = submessage() else { return nil }
            for byte in b where byte == 0 || byte >= 0x80 { return nil }
            return String(decoding: b, as: UTF8.self)
        }
    }
}
