// The safetensors file format (https://github.com/huggingface/safetensors):
//   [8 bytes: header length N, little-endian u64] [N bytes: JSON header] [raw little-endian tensor data]
//   header = { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
//              "__metadata__": {"key": "value", …} }      (offsets are relative to the start of the data block)
// We write F32 in the order given, header padded with spaces to a multiple of 8 bytes (as Python does), written
// crash-safe (AtomicFile: temp file, fsync, rename, fsync directory), with a CRC-32 of the whole file in
// `__metadata__["bonfire.crc32"]` (8 lowercase hex digits, computed with those 8 digits set to "00000000"), which
// `decode` verifies when present (and requires with `requireChecksum`). Other readers ignore the key.
// We read F32, F64, F16 and BF16 (converted to Float). Reading never traps on any bytes: header length huge or past
// the end, bad JSON, offsets out of range/overlapping/leaving holes, shape products that overflow, dtype/shape/size
// mismatches all throw a `SafeTensorsError` naming the file and what to do.

import Foundation

package struct SafeTensorsError: Error, CustomStringConvertible {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { "safetensors: \(message)" }
}

package enum SafeTensors {
    package typealias NamedTensor = (name: String, shape: [Int], data: [Float])

    /// Metadata key of the whole-file CRC-32.
    package static let checksumKey = "bonfire.crc32"
    /// The safetensors spec's header size limit (100 MB); anything larger is corrupt.
    static let maxHeaderBytes = 100_000_000

    /// Writes F32 tensors and string metadata to `url` crash-safe, with a checksum. With `requireFinite`, throws
    /// (naming the tensor and index) instead of writing a NaN/±∞ value.
    package static func write(to url: URL, tensors: [NamedTensor], metadata: [String: String],
                              requireFinite: Bool = false) throws {
        if requireFinite {
            for t in tensors {
                if let i = firstNonFinite(t.data) {
                    throw SafeTensorsError("refusing to write \(url.lastPathComponent): tensor \(t.name) holds \(t.data[i]) at index \(i); a non-finite update must be skipped, not saved")
                }
            }
        }
        try AtomicFile.write(try encode(tensors: tensors, metadata: metadata), to: url)
    }

    /// Index of the first NaN/±∞ (nil if all finite). One branch-free pass in the common case.
    package static func firstNonFinite(_ xs: [Float]) -> Int? {
        var bad = false
        for x in xs { bad = bad || !x.isFinite }
        return bad ? xs.firstIndex { !$0.isFinite } : nil
    }

    /// The bytes of a safetensors file (with the `bonfire.crc32` checksum).
    package static func encode(tensors: [NamedTensor], metadata: [String: String]) throws -> Data {
        guard metadata[checksumKey] == nil else { throw SafeTensorsError("metadata key \(checksumKey) is reserved for the checksum") }
        var meta = metadata
        meta[checksumKey] = "00000000"
        var header = "{\"__metadata__\":{"
        header += meta.keys.sorted().map { "\(jsonString($0)):\(jsonString(meta[$0]!))" }.joined(separator: ",")
        header += "}"
        var offset = 0
        var seen = Set<String>()
        for t in tensors {
            let count = t.shape.reduce(1, *)
            guard t.name != "__metadata__", seen.insert(t.name).inserted else {
                throw SafeTensorsError("duplicate or reserved tensor name \(t.name)")
            }
            precondition(count == t.data.count, "SafeTensors.write: tensor \(t.name) has shape \(t.shape) but \(t.data.count) values")
            header += ",\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
            header += "\"data_offsets\":[\(offset),\(offset + 4 * count)]}"
            offset += 4 * count
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var out = Data(capacity: 8 + headerBytes.count + offset)
        var n = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for t in tensors {
            t.data.withUnsafeBufferPointer { buf in
                #if _endian(big)
                for x in buf { var b = x.bitPattern.littleEndian; withUnsafeBytes(of: &b) { out.append(contentsOf: $0) } }
                #else
                if buf.count > 0 {
                    out.append(UnsafeBufferPointer(start: UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                                   count: buf.count * 4))
                }
                #endif
            }
        }
        // Patch the checksum in place: CRC of the file with the placeholder, written over the placeholder.
        guard let at = out.withUnsafeBytes({ checksumValueOffset($0, headerEnd: 8 + headerBytes.count) }) else {
            preconditionFailure("SafeTensors.encode: checksum placeholder not found in the header")
        }
        let crc = CRC32.of(out)
        let hex = Array(String(format: "%08x", crc).utf8)
        out.replaceSubrange(at..<(at + 8), with: hex)
        return out
    }

    /// Byte offset of the 8 hex digits of `"bonfire.crc32":"…"` in the header, if present exactly once.
    static func checksumValueOffset(_ b: UnsafeRawBufferPointer, headerEnd: Int) -> Int? {
        let needle = Array("\"\(checksumKey)\":\"".utf8)
        guard headerEnd <= b.count, headerEnd - 8 >= needle.count + 9 else { return nil }
        do {
            var found: Int? = nil
            var i = 8
            while i + needle.count + 9 <= headerEnd {
                if b[i] == needle[0] {
                    var j = 1
                    while j < needle.count && b[i + j] == needle[j] { j += 1 }
                    if j == needle.count {
                        if found != nil { return nil }  // twice: not ours
                        found = i + needle.count
                    }
                }
                i += 1
            }
            guard let f = found, b[f + 8] == UInt8(ascii: "\"") else { return nil }
            return f
        }
    }

    /// Reads every tensor (as Float) and the metadata of a safetensors file.
    package static func read(from url: URL, requireChecksum: Bool = false) throws
        -> (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafeTensorsError("cannot read \(url.path): \(error.localizedDescription); check the path")
        }
        return try decode(data, source: url.lastPathComponent, requireChecksum: requireChecksum)
    }

    /// A JSON number that is an exact non-negative integer (no trapping conversion of huge or fractional values).
    static func exactIndex(_ x: Any) -> Int? {
        guard let n = x as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d.isFinite, d >= 0, d < 9.0e15, let i = Int(exactly: d) else { return nil }
        return i
    }

    package static func decode(_ data: Data, source: String = "data", requireChecksum: Bool = false) throws
        -> (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]) {
        guard data.count >= 8 else { throw SafeTensorsError("\(source): file too short (\(data.count) bytes) for a header length; the file is truncated") }
        let bytes = [UInt8](data)
        var hlen: UInt64 = 0
        for i in 0..<8 { hlen |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard hlen <= UInt64(bytes.count - 8), hlen <= UInt64(maxHeaderBytes), hlen >= 2 else {
            throw SafeTensorsError("\(source): header length \(hlen) does not fit a file of \(bytes.count) bytes; file truncated or not safetensors")
        }
        let dataStart = 8 + Int(hlen)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) } catch {
            throw SafeTensorsError("\(source): header is not valid JSON (\(error.localizedDescription)); the file is corrupt")
        }
        guard let header = json as? [String: Any] else { throw SafeTensorsError("\(source): header is not a JSON object") }
        var metadata: [String: String] = [:]
        if let meta = header["__metadata__"] {
            guard let m = meta as? [String: Any] else { throw SafeTensorsError("\(source): __metadata__ is not an object") }
            for (k, v) in m {
                guard let s = v as? String else { throw SafeTensorsError("\(source): metadata value for \(k) is not a string") }
                metadata[k] = s
            }
        }
        try bytes.withUnsafeBytes { raw in
            try verifyChecksum(raw, metadata: metadata, headerEnd: dataStart, source: source, required: requireChecksum)
        }
        metadata.removeValue(forKey: checksumKey)
        let dataCount = bytes.count - dataStart
        var tensors: [String: (shape: [Int], data: [Float])] = [:]
        var spans: [(Int, Int, String)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offsAny = info["data_offsets"] as? [Any], offsAny.count == 2
            else { throw SafeTensorsError("\(source): tensor \(name): entry needs dtype, shape and data_offsets [begin, end]") }
            var count = 1
            for x in shapeAny {
                guard let n = exactIndex(x) else { throw SafeTensorsError("\(source): tensor \(name): bad shape \(shapeAny)") }
                let (c, o) = count.multipliedReportingOverflow(by: n)
                guard !o, c <= dataCount else {
                    throw SafeTensorsError("\(source): tensor \(name): shape \(shapeAny) is larger than the data block of \(dataCount) bytes")
                }
                count = c
            }
            let shape = shapeAny.map { exactIndex($0)! }
            guard let begin = exactIndex(offsAny[0]), let end = exactIndex(offsAny[1]), begin <= end, end <= dataCount
            else { throw SafeTensorsError("\(source): tensor \(name): data_offsets \(offsAny) outside the data block of \(dataCount) bytes") }
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F64": width = 8
            case "F16", "BF16": width = 2
            default: throw SafeTensorsError("\(source): tensor \(name): dtype \(dtype) not supported (use F32, F64, F16 or BF16)")
            }
            guard end - begin == count * width else {  // count ≤ dataCount, so count × 8 cannot overflow
                throw SafeTensorsError("\(source): tensor \(name): shape \(shape) × \(dtype) needs \(count * width) bytes, offsets give \(end - begin)")
            }
            spans.append((begin, end, name))
            let p = dataStart + begin
            let out: [Float] = bytes.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { buf, c in
                    for i in 0..<count {
                        let q = p + i * width
                        switch dtype {
                        case "F32":
                            buf[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: q, as: UInt32.self)))
                        case "F64":
                            buf[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: q, as: UInt64.self))))
                        case "F16":
                            buf[i] = halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: q, as: UInt16.self)))
                        default: // BF16
                            buf[i] = Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: q, as: UInt16.self))) << 16)
                        }
                    }
                    c = count
                }
            }
            tensors[name] = (shape, out)
        }
        spans.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var covered = 0
        for s in spans {
            if s.0 < covered { throw SafeTensorsError("\(source): tensor \(s.2) overlaps another tensor in the data block") }
            if s.0 > covered { throw SafeTensorsError("\(source): bytes \(covered)..<\(s.0) of the data block belong to no tensor; the file is corrupt") }
            covered = s.1
        }
        if covered != dataCount {
            throw SafeTensorsError("\(source): \(dataCount - covered) bytes after the last tensor; the file is corrupt")
        }
        return (tensors, metadata)
    }

    static func verifyChecksum(_ data: UnsafeRawBufferPointer, metadata: [String: String], headerEnd: Int, source: String, required: Bool) throws {
        guard let stored = metadata[checksumKey] else {
            if required {
                throw SafeTensorsError("\(source): no \(checksumKey) checksum; the file was not written by this Bonfire version or its header is damaged")
            }
            return
        }
        guard stored.utf8.count == 8, let want = UInt32(stored, radix: 16),
              let at = checksumValueOffset(data, headerEnd: headerEnd),
              data[at..<(at + 8)].elementsEqual(stored.utf8) else {
            throw SafeTensorsError("\(source): checksum field \(checksumKey) = \"\(stored.prefix(16))\" is malformed; the file is corrupt")
        }
        var crc = CRC32()
        crc.update(UnsafeRawBufferPointer(rebasing: data[0..<at]))
        crc.update(Data("00000000".utf8))
        crc.update(UnsafeRawBufferPointer(rebasing: data[(at + 8)...]))
        guard crc.value == want else {
            throw SafeTensorsError("\(source): checksum mismatch (stored \(stored), computed \(String(format: "%08x", crc.value))); the file is corrupt — use an older checkpoint")
        }
    }

    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exp = Int((h >> 10) & 0x1F), frac = UInt32(h & 0x3FF)
        if exp == 0 {
            let v = Float(frac) * 0x1p-24
            return sign == 0 ? v : -v
        }
        if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (frac << 13)) }
        return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (frac << 13))
    }

    /// A JSON string literal for `s` (quotes, backslash and control characters escaped). Also used for metrics.jsonl.
    package static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

/// CRC-32 (IEEE 802.3, as zlib's crc32), slicing-by-8.
package struct CRC32: Sendable {
    package private(set) var value: UInt32 = 0

    package init() {}

    static let tables: [[UInt32]] = {
        var t = [[UInt32]](repeating: [UInt32](repeating: 0, count: 256), count: 8)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[0][i] = c
        }
        for i in 0..<256 { for k in 1..<8 { t[k][i] = (t[k - 1][i] >> 8) ^ t[0][Int(t[k - 1][i] & 0xFF)] } }
        return t
    }()

    package mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(UnsafeRawBufferPointer($0)) }
    }

    package mutating func update(_ raw: UnsafeRawBufferPointer) {
        var c = ~value
        let n = raw.count
        var i = 0
        Self.tables.withUnsafeBufferPointer { t in
            let t0 = t[0], t1 = t[1], t2 = t[2], t3 = t[3], t4 = t[4], t5 = t[5], t6 = t[6], t7 = t[7]
            while i + 8 <= n {
                let lo = c ^ UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i, as: UInt32.self))
                let hi = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self))
                c = t7[Int(lo & 0xFF)] ^ t6[Int((lo >> 8) & 0xFF)] ^ t5[Int((lo >> 16) & 0xFF)] ^ t4[Int(lo >> 24)]
                  ^ t3[Int(hi & 0xFF)] ^ t2[Int((hi >> 8) & 0xFF)] ^ t1[Int((hi >> 16) & 0xFF)] ^ t0[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                c = t0[Int((c ^ UInt32(raw[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        value = ~c
    }

    package static func of(_ data: Data) -> UInt32 { var c = CRC32(); c.update(data); return c.value }
}
