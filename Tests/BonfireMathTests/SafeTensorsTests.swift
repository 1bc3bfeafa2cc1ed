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
