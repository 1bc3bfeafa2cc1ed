// safetensors access for Hugging Face model directories: reads the header of one or several (sharded) files,
// keeps each tensor's dtype (F32, F16, BF16; F64 read too) and copies a tensor straight into a slice of the parameter
// buffer (optionally transposed, for GPT-2's Conv1D weights), so a 124 M model is not held three times in memory.
// Writing keeps HF conventions: one model.safetensors, per-tensor dtype as given, metadata {"format": "pt"}.
// Every check throws (file truncated, offsets outside the data, overlapping tensors, shape × dtype ≠ byte count,
// shard names escaping the directory); nothing traps on file content.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import BonfireMath

package enum HFDType: String, Sendable, Codable {
    case f32 = "F32", f16 = "F16", bf16 = "BF16", f64 = "F64"
    package var width: Int { switch self { case .f32: 4; case .f16, .bf16: 2; case .f64: 8 } }
    /// torch_dtype / dtype spelling in config.json.
    package var torchName: String { switch self { case .f32: "float32"; case .f16: "float16"; case .bf16: "bfloat16"; case .f64: "float64" } }
}

package struct HFTensorInfo: Sendable {
    package let name: String
    package let dtype: HFDType
    package let shape: [Int]
    /// Byte range inside its file (absolute).
    package let begin: Int, end: Int
    package let file: Int
    package var count: Int { shape.reduce(1, *) }
}

/// The tensors of a model directory (one file or shards), memory-mapped.
package final class HFTensorStore {
    package private(set) var tensors: [String: HFTensorInfo] = [:]
    private var files: [Data] = []
    package private(set) var fileNames: [String] = []

    package init(directory: URL) throws {
        let fm = FileManager.default
        let single = directory.appendingPathComponent("model.safetensors")
        let index = directory.appendingPathComponent("model.safetensors.index.json")
        if fm.fileExists(atPath: single.path) {
            try addFile(single, expect: nil)
        } else if fm.fileExists(atPath: index.path) {
            let data: Data
            do { data = try Data(contentsOf: index) } catch { throw HFError("cannot read \(index.path): \(error.localizedDescription)") }
            guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let map = obj["weight_map"] as? [String: Any] else {
                throw HFError("\(index.path): not a JSON object with a weight_map {tensor: file}")
            }
            var byFile: [String: Set<String>] = [:]
            for (name, f) in map {
                guard let fn = f as? String, !fn.isEmpty, !fn.contains("/"), !fn.contains("\\"), fn != "..", fn != "." else {
                    throw HFError("\(index.path): weight_map[\(name)] = \(f) is not a file name inside the model directory")
                }
                byFile[fn, default: []].insert(name)
            }
            guard !byFile.isEmpty else { throw HFError("\(index.path): weight_map is empty") }
            for fn in byFile.keys.sorted() where !fm.fileExists(atPath: directory.appendingPathComponent(fn).path) {
                throw HFError("\(index.path) lists shard \(fn), which is not in \(directory.path); copy the whole model directory")
            }
            for fn in byFile.keys.sorted() {
                try addFile(directory.appendingPathComponent(fn), expect: byFile[fn]!)
            }
        } else {
            throw HFError("\(directory.path): no model.safetensors or model.safetensors.index.json (PyTorch .bin files are not read; convert with save_pretrained(safe_serialization=True))")
        }
    }

    private func addFile(_ url: URL, expect: Set<String>?) throws {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw HFError("cannot read \(url.path): \(error.localizedDescription)")
        }
        let src = url.lastPathComponent
        guard data.count >= 8 else { throw HFError("\(src): file too short (\(data.count) bytes) for a safetensors header") }
        var hlen: UInt64 = 0
        data.withUnsafeBytes { raw in for i in 0..<8 { hlen |= UInt64(raw[i]) << (8 * UInt64(i)) } }
        guard hlen <= UInt64(data.count - 8), hlen <= 100_000_000 else {
            throw HFError("\(src): header length \(hlen) exceeds the file size \(data.count); file truncated or not safetensors")
        }
        let dataStart = 8 + Int(hlen)
        guard let header = (try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<dataStart))) as? [String: Any] else {
            throw HFError("\(src): header is not a JSON object; file damaged or not safetensors")
        }
        let dataCount = data.count - dataStart
        let fileIndex = files.count
        var spans: [(Int, Int, String)] = []
        var seen = Set<String>()
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any], let offs = info["data_offsets"] as? [Any], offs.count == 2 else {
                throw HFError("\(src): tensor \(name): entry needs dtype, shape and data_offsets")
            }
            guard let dtype = HFDType(rawValue: dt) else {
                throw HFError("\(src): tensor \(name): dtype \(dt) not supported (supported: F32, F16, BF16, F64)")
            }
            var shape: [Int] = []
            var count = 1
            for x in shapeAny {
                guard let n = x as? NSNumber, let i = Int(exactly: n.doubleValue), i >= 0, i <= 1 << 40 else {
                    throw HFError("\(src): tensor \(name): bad shape \(shapeAny)")
                }
                shape.append(i)
                let (m, o) = count.multipliedReportingOverflow(by: i)
                guard !o, m <= 1 << 40 else { throw HFError("\(src): tensor \(name): shape \(shapeAny) too large") }
                count = m
            }
            guard let b = (offs[0] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }),
                  let e = (offs[1] as? NSNumber).flatMap({ Int(exactly: $0.doubleValue) }),
                  b >= 0, b <= e, e <= dataCount else {
                throw HFError("\(src): tensor \(name): data_offsets \(offs) outside the data block of \(dataCount) bytes (file truncated?)")
            }
            guard e - b == count * dtype.width else {
                throw HFError("\(src): tensor \(name): shape \(shape) × \(dt) needs \(count * dtype.width) bytes, offsets give \(e - b)")
            }
            if let expect, !expect.contains(name) {
                throw HFError("\(src): tensor \(name) is not listed for this file in model.safetensors.index.json")
            }
            guard tensors[name] == nil else { throw HFError("\(src): tensor \(name) appears in more than one shard") }
            tensors[name] = HFTensorInfo(name: name, dtype: dtype, shape: shape, begin: dataStart + b, end: dataStart + e, file: fileIndex)
            spans.append((b, e, name)); seen.insert(name)
        }
        if let expect, let missing = expect.subtracting(seen).sorted().first {
            throw HFError("\(src): tensor \(missing) is listed in model.safetensors.index.json but not in this shard")
        }
        spans.sort { $0.0 < $1.0 }
        for i in spans.indices.dropFirst() where spans[i].0 < spans[i - 1].1 {
            throw HFError("\(src): tensor \(spans[i].2) overlaps tensor \(spans[i - 1].2)")
        }
        files.append(data); fileNames.append(src)
    }

    /// The dtype most tensors are stored in (for config.json's torch_dtype).
    package var dominantDType: HFDType {
        var n: [HFDType: Int] = [:]
        for t in tensors.values { n[t.dtype, default: 0] += t.count }
        return n.max { $0.value < $1.value }?.key ?? .f32
    }

    /// Copies tensor `name` (converted to Float) into dst. With `transpose2D`, a stored (R, C) matrix is written as
    /// (C, R) — GPT-2's Conv1D (in, out) weights into Linear (out, in) order. `shape` is the shape expected in the
    /// file; a mismatch throws.
    package func copy(_ name: String, shape: [Int], into dst: UnsafeMutablePointer<Float>, transpose2D: Bool = false) throws {
        guard let t = tensors[name] else { throw HFError("tensor \(name) is missing from the checkpoint") }
        guard t.shape == shape else {
            throw HFError("\(fileNames[t.file]): tensor \(name) has shape \(t.shape), the config implies \(shape)")
        }
        let n = t.count
        let rows = transpose2D ? shape[0] : 1, cols = transpose2D ? shape[1] : n
        files[t.file].withUnsafeBytes { raw in
            let base = raw.baseAddress! + t.begin
            #if _endian(little)
            if t.dtype == .f32 && !transpose2D { UnsafeMutableRawPointer(dst).copyMemory(from: base, byteCount: 4 * n); return }
            #endif
            @inline(__always) func put(_ i: Int, _ v: Float) {
                if transpose2D { dst[(i % cols) * rows + i / cols] = v } else { dst[i] = v }
            }
            switch t.dtype {
            case .f32: for i in 0..<n { put(i, Float(bitPattern: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self).littleEndian)) }
            case .f16: for i in 0..<n { put(i, HalfPrecision.f16ToFloat(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
            case .bf16: for i in 0..<n { put(i, HalfPrecision.bf16ToFloat(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self).littleEndian)) }
            case .f64: for i in 0..<n { put(i, Float(Double(bitPattern: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian))) }
            }
        }
    }

    /// The raw Float values of tensor `name` (its stored shape).
    package func floats(_ name: String) throws -> [Float] {
        guard let t = tensors[name] else { throw HFError("tensor \(name) is missing from the checkpoint") }
        var out = [Float](repeating: 0, count: t.count)
        try out.withUnsafeMutableBufferPointer { try copy(name, shape: t.shape, into: $0.baseAddress!) }
        return out
    }
}

package enum HFSafeTensorsWriter {
    package struct Item {
        package let name: String
        package let shape: [Int]
        package let dtype: HFDType
        /// Fills `count` floats in stored order.
        package let fill: (UnsafeMutablePointer<Float>) -> Void
        package init(name: String, shape: [Int], dtype: HFDType, fill: @escaping (UnsafeMutablePointer<Float>) -> Void) {
            self.name = name; self.shape = shape; self.dtype = dtype; self.fill = fill
        }
    }

    /// Writes `items` to `url` through a temporary file, fsync and rename. Throws on non-finite values.
    package static func write(_ items: [Item], metadata: [String: String], to url: URL) throws {
        var header = "{\"__metadata__\":{" + metadata.keys.sorted().map {
            "\(SafeTensors.jsonString($0)):\(SafeTensors.jsonString(metadata[$0]!))"
        }.joined(separator: ",") + "}"
        var offset = 0
        for it in items {
            let bytes = it.shape.reduce(1, *) * it.dtype.width
            header += ",\(SafeTensors.jsonString(it.name)):{\"dtype\":\"\(it.dtype.rawValue)\",\"shape\":[\(it.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}"
            offset += bytes
        }
        header += "}"
        var hb = Array(header.utf8)
        while hb.count % 8 != 0 { hb.append(0x20) }
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        _ = FileManager.default.createFile(atPath: tmp.path, contents: nil)
        guard let fh = FileHandle(forWritingAtPath: tmp.path) else { throw HFError("cannot create \(tmp.path); check the directory is writable") }
        var ok = false
        defer { if !ok { try? fh.close(); try? FileManager.default.removeItem(at: tmp) } }
        var n = UInt64(hb.count).littleEndian
        try fh.write(contentsOf: withUnsafeBytes(of: &n) { Data($0) })
        try fh.write(contentsOf: Data(hb))
        for it in items {
            let count = it.shape.reduce(1, *)
            var f = [Float](repeating: 0, count: count)
            f.withUnsafeMutableBufferPointer { it.fill($0.baseAddress!) }
            if let bad = f.firstIndex(where: { !$0.isFinite }) {
                throw HFError("refusing to write \(it.name): value \(f[bad]) at index \(bad) is not finite")
            }
            var out = Data(count: count * it.dtype.width)
            out.withUnsafeMutableBytes { raw in
                let p = raw.baseAddress!
                for i in 0..<count {
                    switch it.dtype {
                    case .f32: p.storeBytes(of: f[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                    case .f16: p.storeBytes(of: HalfPrecision.floatToF16(f[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                    case .bf16: p.storeBytes(of: HalfPrecision.floatToBF16(f[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                    case .f64: p.storeBytes(of: Double(f[i]).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self)
                    }
                }
            }
            try fh.write(contentsOf: out)
        }
        try fh.synchronize()
        try fh.close()
        ok = true
        guard rename(tmp.path, url.path) == 0 else {
            let err = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw HFError("cannot rename \(tmp.path) to \(url.path): \(err)")
        }
    }
}
