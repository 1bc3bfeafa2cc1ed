// f16 / bf16 conversions: every finite half bit pattern survives widen → narrow; narrowing rounds to nearest even,
// overflows to ±Inf, keeps NaN and signed zero; widening agrees with the existing safetensors reader.
import XCTest
import Foundation
import BonfireMath

final class HalfPrecisionTests: XCTestCase {
    func testEveryF16PatternRoundTrips() {
        for bits in 0...UInt16.max {
            let f = HalfPrecision.f16ToFloat(bits)
            if f.isNaN { XCTAssertTrue(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(f)).isNaN); continue }
            XCTAssertEqual(HalfPrecision.floatToF16(f), bits, "f16 \(String(bits, radix: 16)) → \(f)")
        }
    }

    func testEveryBF16PatternRoundTrips() {
        for bits in 0...UInt16.max {
            let f = HalfPrecision.bf16ToFloat(bits)
            if f.isNaN { XCTAssertTrue(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(f)).isNaN); continue }
            XCTAssertEqual(HalfPrecision.floatToBF16(f), bits)
        }
    }

    func testNarrowingRoundsToNearestEvenAndSaturatesToInfinity() {
        // f16: 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰ → even (1); 1 + 3·2⁻¹¹ → 1 + 2·2⁻¹⁰.
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(1 + 0x1p-11)), 1)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(1 + 3 * 0x1p-11)), 1 + 2 * 0x1p-10)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(1 + 0x1p-11 + 0x1p-20)), 1 + 0x1p-10)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(65504)), 65504)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(65519)), 65504)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(70000)), .infinity)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(-1e30)), -.infinity)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(0x1p-25)), 0)          // tie → even (0)
        XCTAssertEqual(HalfPrecision.f16ToFloat(HalfPrecision.floatToF16(0x1.8p-25)), 0x1p-24)  // above half → smallest subnormal
        XCTAssertEqual(HalfPrecision.floatToF16(-0.0), 0x8000)
        // bf16: 1 + 2⁻⁸ halfway between 1 and 1 + 2⁻⁷ → 1; 1 + 3·2⁻⁸ → 1 + 2⁻⁶.
        XCTAssertEqual(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(1 + 0x1p-8)), 1)
        XCTAssertEqual(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(1 + 3 * 0x1p-8)), 1 + 0x1p-6)
        XCTAssertEqual(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(.greatestFiniteMagnitude)), .infinity)
        XCTAssertTrue(HalfPrecision.bf16ToFloat(HalfPrecision.floatToBF16(.nan)).isNaN)
    }

    func testWideningAgreesWithSafeTensorsReader() throws {
        // Encode all f16 patterns through a hand-built F16 safetensors file and read it with SafeTensors.decode.
        var payload = [UInt8]()
        for bits in 0...UInt16.max { payload.append(UInt8(bits & 0xFF)); payload.append(UInt8(bits >> 8)) }
        var header = Array("{\"x\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var data = [UInt8]()
        var n = UInt64(header.count)
        for _ in 0..<8 { data.append(UInt8(n & 0xFF)); n >>= 8 }
        data += header + payload
        let t = try SafeTensors.decode(Data(data)).tensors["x"]!.data
        for bits in 0...UInt16.max {
            let a = HalfPrecision.f16ToFloat(bits), b = t[Int(bits)]
            XCTAssertTrue(a == b || (a.isNaN && b.isNaN), "\(bits)")
        }
    }
}
