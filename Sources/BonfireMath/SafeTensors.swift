// The safetensors file format (https://github.com/huggingface/safetensors):
//   [8 bytes: header length N, little-endian u64] [N bytes: JSON header] [raw little-endian tensor data]
//   header = { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, …,
//              "__metadata__": {"key": "value", …} }      (offsets are relative to the start of the data block)
// We write F32 in the order given, header padded with spaces to a multiple of 8 bytes (as Python does), written
// atomically (temp file + rename). We read F32, F64, F16 and BF16 (converted to Float) and validate the header.

import Foundation

package struct SafeTensorsError: Error, CustomStringConvertible {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { "safetensors: \(message)" }
}

package enum SafeTensors {
    package typealias NamedTensor = (name: String, shape: [Int], data: [Float])

    /// Writes F32 tensors and string metadata to `url` atomically.
    package static func write(to url: URL, tensors: [NamedTensor], metadata: [String: String]) throws {
        try encode(tensors: tensors, metadata: metadata).write(to: url, options: .atomic)
    }

    /// The bytes of a safetensors file.
    package static func encode(tensors: [NamedTensor], metadata: [String: String]) throws -> Data {
        var header = "{"
        if !metadata.isEmpty {
            header += "\"__metadata__\":{"
            header += metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }.joined(separator: ",")
            header += "}"
        }
        var offset = 0
        var seen = Set<String>()
        for t in tensors {
            let count = t.shape.reduce(1, *)
            guard t.name != "__metadata__", seen.insert(t.name).inserted else {
                throw SafeTensorsError("duplicate or reserved tensor name \(t.name)")
            }
            precondition(count == t.data.count, "SafeTensors.write: tensor \(t.name) has shape \(t.shape) but \(t.data.count) values")
            if header.count > 1 { header += "," }
            header += "\(jsonString(t.name)):{\"dtype\":\"F32\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
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
                out.append(UnsafeBufferPointer(start: UnsafeRawPointer(buf.baseAddress!).assumingMemoryBound(to: UInt8.self),
                                               count: buf.count * 4))
                #endif
            }
        }
        return out
    }

    /// Reads every tensor (as Float) and the metadata of a safetensors file.
    package static func read(from url: URL) throws -> (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw SafeTensorsError("cannot read \(url.path): \(error.localizedDescription); check the path")
        }
        return try decode(data, source: url.lastPathComponent)
    }

    package static func decode(_ data: Data, source: String = "data") throws
        -> (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]) {
        guard data.count >= 8 else { throw SafeTensorsError("\(source): file too short (\(data.count) bytes) for a header length") }
        let bytes = [UInt8](data)
        var hlen: UInt64 = 0
        for i in 0..<8 { hlen |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard hlen <= UInt64(bytes.count - 8) else {
            throw SafeTensorsError("\(source): header length \(hlen) exceeds file size \(bytes.count); file truncated or not safetensors")
        }
        let dataStart = 8 + Int(hlen)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart])) } catch {
            throw SafeTensorsError("\(source): header is not valid JSON (\(error.localizedDescription))")
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
        let dataCount = bytes.count - dataStart
        var tensors: [String: (shape: [Int], data: [Float])] = [:]
        var spans: [(Int, Int, String)] = []
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offsAny = info["data_offsets"] as? [Any], offsAny.count == 2
            else { throw SafeTensorsError("\(source): tensor \(name): entry needs dtype, shape and data_offsets [begin, end]") }
            let shape = try shapeAny.map { (x: Any) -> Int in
                guard let n = (x as? NSNumber)?.intValue, n >= 0 else { throw SafeTensorsError("\(source): tensor \(name): bad shape \(shapeAny)") }
                return n
            }
            guard let begin = (offsAny[0] as? NSNumber)?.intValue, let end = (offsAny[1] as? NSNumber)?.intValue,
                  begin >= 0, begin <= end, end <= dataCount
            else { throw SafeTensorsError("\(source): tensor \(name): data_offsets \(offsAny) outside the data block of \(dataCount) bytes") }
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F64": width = 8
            case "F16", "BF16": width = 2
            default: throw SafeTensorsError("\(source): tensor \(name): dtype \(dtype) not supported (use F32, F64, F16 or BF16)")
            }
            let count = shape.reduce(1, *)
            guard end - begin == count * width else {
                throw SafeTensorsError("\(source): tensor \(name): shape \(shape) × \(dtype) needs \(count * width) bytes, offsets give \(end - begin)")
            }
            spans.append((begin, end, name))
            var out = [Float](repeating: 0, count: count)
            let p = dataStart + begin
            for i in 0..<count {
                let q = p + i * width
                switch dtype {
                case "F32":
                    let u = UInt32(bytes[q]) | UInt32(bytes[q + 1]) << 8 | UInt32(bytes[q + 2]) << 16 | UInt32(bytes[q + 3]) << 24
                    out[i] = Float(bitPattern: u)
                case "F64":
                    var u: UInt64 = 0
                    for j in 0..<8 { u |= UInt64(bytes[q + j]) << (8 * UInt64(j)) }
                    out[i] = Float(Double(bitPattern: u))
                case "F16":
                    out[i] = halfToFloat(UInt16(bytes[q]) | UInt16(bytes[q + 1]) << 8)
                default: // BF16
                    out[i] = Float(bitPattern: (UInt32(bytes[q]) | UInt32(bytes[q + 1]) << 8) << 16)
                }
            }
            tensors[name] = (shape, out)
        }
        spans.sort { $0.0 < $1.0 }
        for i in spans.indices.dropFirst() where spans[i].0 < spans[i - 1].1 {
            throw SafeTensorsError("\(source): tensor \(spans[i].2) overlaps tensor \(spans[i - 1].2) in the data block")
        }
        return (tensors, metadata)
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
