import XCTest
import Foundation
import BonfireMath

final class SafeTensorsTests: XCTestCase {
    func tmp(_ name: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-st-\(ProcessInfo.processInfo.processIdentifier)-\(name)")
    }

    func testRoundTripIsBitExactWithMetadata() throws {
        let url = tmp("rt.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let a: [Float] = [1.5, -0, .infinity, 3.4e38, .leastNonzeroMagnitude, .pi]
        let b: [Float] = (0..<12).map { Float($0) * 0.1 }
        try SafeTensors.write(to: url, tensors: [("a", [6], a), ("m.b", [3, 4], b)],
                              metadata: ["k": "v \"quoted\"\n", "z": "1"])
        let raw = try Data(contentsOf: url)
        XCTAssertEqual((8 + Int(raw[0])) % 8, 0, "header padded to 8 bytes")
        let r = try SafeTensors.read(from: url)
        XCTAssertEqual(r.metadata, ["k": "v \"quoted\"\n", "z": "1"])
        XCTAssertEqual(r.tensors["a"]!.shape, [6])
        XCTAssertEqual(r.tensors["a"]!.data.map(\.bitPattern), a.map(\.bitPattern))
        XCTAssertEqual(r.tensors["m.b"]!.shape, [3, 4])
        XCTAssertEqual(r.tensors["m.b"]!.data, b)
    }

    func testReadsF16BF16F64() throws {
        // Hand-built file: h = F16 [1.0, -2.0, 0.5], g = BF16 [1.0], d = F64 [0.25].
        let header = #"{"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"g":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]},"d":{"dtype":"F64","shape":[1],"data_offsets":[8,16]}}"#
        var data = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: [0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38])
        data.append(contentsOf: [0x80, 0x3F])
        var d = (0.25 as Double).bitPattern.littleEndian
        withUnsafeBytes(of: &d) { data.append(contentsOf: $0) }
        let r = try SafeTensors.decode(data)
        XCTAssertEqual(r.tensors["h"]!.data, [1, -2, 0.5])
        XCTAssertEqual(r.tensors["g"]!.data, [1])
        XCTAssertEqual(r.tensors["d"]!.data, [0.25])
    }

    func testBadOffsetsThrowAnErrorNamingTheTensor() throws {
        let header = #"{"bad":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#
        var data = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8))
        data.append(contentsOf: [UInt8](repeating: 0, count: 12))
        XCTAssertThrowsError(try SafeTensors.decode(data)) { XCTAssertTrue("\($0)".contains("bad"), "\($0)") }
        XCTAssertThrowsError(try SafeTensors.decode(Data([1, 2, 3])))
        var huge = Data(); var hl = UInt64(1 << 40).littleEndian
        withUnsafeBytes(of: &hl) { huge.append(contentsOf: $0) }
        XCTAssertThrowsError(try SafeTensors.decode(huge))
    }
}

/// Hostile files: nothing may trap; a damaged file either throws or reads back exactly what was written.
final class SafeTensorsHostileFileTests: XCTestCase {
    func tmpDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-sth-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    let tensors: [SafeTensors.NamedTensor] = [("a", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [4], [-1, 0.5, 1e-3, 7])]
    let meta = ["run": "r1", "step": "12"]

    func same(_ r: (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String])) -> Bool {
        r.metadata == meta && r.tensors.count == 2
            && tensors.allSatisfy { t in r.tensors[t.name].map { $0.shape == t.shape && $0.data.map(\.bitPattern) == t.data.map(\.bitPattern) } ?? false }
    }

    func header(_ json: String, data: [UInt8] = [], length: UInt64? = nil) -> Data {
        var d = Data()
        var n = (length ?? UInt64(json.utf8.count)).littleEndian
        withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
        d.append(contentsOf: Array(json.utf8))
        d.append(contentsOf: data)
        return d
    }

    func testChecksumIsWrittenVerifiedAndHiddenFromMetadata() throws {
        let file = try SafeTensors.encode(tensors: tensors, metadata: meta)
        XCTAssertTrue(String(decoding: file.prefix(200), as: UTF8.self).contains("\"bonfire.crc32\":\""))
        XCTAssertTrue(same(try SafeTensors.decode(file, requireChecksum: true)))
        XCTAssertThrowsError(try SafeTensors.encode(tensors: tensors, metadata: [SafeTensors.checksumKey: "x"]))
        // A data byte changed: checksum mismatch, with a hint.
        var bad = file
        bad[bad.count - 1] ^= 0x01
        XCTAssertThrowsError(try SafeTensors.decode(bad)) { XCTAssertTrue("\($0)".contains("checksum mismatch"), "\($0)") }
        // Files without a checksum (PyTorch's) still load unless it is required.
        let plain = header(#"{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 128, 63])
        XCTAssertEqual(try SafeTensors.decode(plain).tensors["x"]?.data, [1])
        XCTAssertThrowsError(try SafeTensors.decode(plain, requireChecksum: true))
        // CRC-32 matches zlib's check value.
        XCTAssertEqual(CRC32.of(Data("123456789".utf8)), 0xCBF4_3926)
        var c = CRC32(); c.update(Data("12345".utf8)); c.update(Data("6789".utf8))
        XCTAssertEqual(c.value, 0xCBF4_3926, "streaming equals one shot")
        XCTAssertEqual(CRC32.of(Data((0..<1000).map { UInt8($0 % 251) })), crcBitwise((0..<1000).map { UInt8($0 % 251) }))
    }

    func crcBitwise(_ b: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for x in b { c ^= UInt32(x); for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 } }
        return ~c
    }

    func testTruncationAtEveryOffsetThrows() throws {
        let file = try SafeTensors.encode(tensors: tensors, metadata: meta)
        for n in 0..<file.count {
            XCTAssertThrowsError(try SafeTensors.decode(file.prefix(n)), "truncated to \(n) of \(file.count) bytes")
        }
    }

    func testEverySingleBitFlipThrowsOrReadsBackTheSameTensors() throws {
        let file = try SafeTensors.encode(tensors: tensors, metadata: meta)
        var thrown = 0, same = 0
        for i in 0..<file.count {
            for bit in 0..<8 {
                var f = file
                f[i] ^= UInt8(1 << bit)
                if let r = try? SafeTensors.decode(f, requireChecksum: true) {
                    XCTAssertTrue(self.same(r), "flip of bit \(bit) at byte \(i) was accepted with different content")
                    same += 1
                } else { thrown += 1 }
            }
        }
        XCTAssertGreaterThan(thrown, file.count * 8 * 9 / 10)
        print("safetensors bit flips: \(file.count * 8) tried, \(thrown) rejected, \(same) accepted with identical content")
    }

    func testRandomBytesAndHostileHeadersThrowWithoutTrapping() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let n = Int.random(in: 0...300, using: &rng)
            var d = Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) })
            if d.count >= 8, Bool.random(using: &rng) {  // plausible header length
                let h = UInt64.random(in: 0...UInt64(d.count - 8), using: &rng)
                for j in 0..<8 { d[j] = UInt8(truncatingIfNeeded: h >> (8 * UInt64(j))) }
                if d.count > 8 { d[8] = UInt8(ascii: "{") }
            }
            _ = try? SafeTensors.decode(d)
        }
        let hostile: [Data] = [
            header("{}", length: UInt64.max),                         // huge / "negative" as i64
            header("{}", length: 1 << 63),
            header("{}", length: 3),                                   // past EOF
            header("{\"a\":"),                                         // bad JSON
            header("[1,2]"),                                           // not an object
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, data: [0, 0, 0, 0]),        // past data
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]),        // reversed
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: [0, 0, 0, 0]),       // negative
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,1e300]}}"#, data: [0, 0, 0, 0]),    // huge double
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0.5,4]}}"#, data: [0, 0, 0, 0]),      // fraction
            header(#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),  // product overflows
            header(#"{"a":{"dtype":"F32","shape":[9223372036854775807],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
            header(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
            header(#"{"a":{"dtype":"F32","shape":["x"],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
            header(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),       // shape/size mismatch
            header(#"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#,
                   data: [UInt8](repeating: 0, count: 6)),                                             // overlap
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8)),  // hole
            header(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [UInt8](repeating: 0, count: 9)),  // trailing
            header(#"{"__metadata__":{"bonfire.crc32":"zzzzzzzz"}}"#),
            header(#"{"__metadata__":{"bonfire.crc32":"00000000"}}"#),                                 // wrong crc
            header(#"{"__metadata__":[1]}"#),
            header(#"{"a":7}"#),
        ]
        for (i, d) in hostile.enumerated() {
            XCTAssertThrowsError(try SafeTensors.decode(d), "hostile header \(i)")
        }
    }

    func testWriteIsAtomicRefusesNonFiniteAndLeavesNoTemporaries() throws {
        let dir = try tmpDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("v000001.safetensors")
        try SafeTensors.write(to: url, tensors: tensors, metadata: meta, requireFinite: true)
        let good = try Data(contentsOf: url)
        XCTAssertThrowsError(try SafeTensors.write(to: url, tensors: [("a", [2], [1, .nan])], metadata: [:], requireFinite: true)) {
            XCTAssertTrue("\($0)".contains("tensor a"), "\($0)")
        }
        XCTAssertEqual(try Data(contentsOf: url), good, "a refused write leaves the old file")
        try atomicWrite(data: Data("{\"x\":1}".utf8), to: dir.appendingPathComponent("config.json"))
        try atomicWrite(data: Data("{\"x\":2}".utf8), to: dir.appendingPathComponent("config.json"))
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("config.json"), encoding: .utf8), "{\"x\":2}")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["config.json", "v000001.safetensors"])
        XCTAssertThrowsError(try atomicWrite(data: Data([1]), to: dir.appendingPathComponent("missing/x.json"))) {
            XCTAssertTrue("\($0)".contains("open"), "\($0)")
        }
        // A crashed writer's temporary is recognised and removed.
        try Data([1, 2]).write(to: dir.appendingPathComponent(".v000002.safetensors.tmp-123-456"))
        XCTAssertEqual(AtomicFile.removeStaleTemporaries(in: dir).count, 1)
    }
}
