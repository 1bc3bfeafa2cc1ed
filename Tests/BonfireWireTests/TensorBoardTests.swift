// TensorBoard event encoding: CRC32C against published vectors, TFRecord framing (round trip, truncation,
// corruption, hostile lengths) and tensorboard.Event round trips. Python's TensorBoard reading our files is tested in
// BonfireClusterTests/MonitoringTensorBoardTests.swift.
import BonfireWire
import XCTest

final class TensorBoardTests: XCTestCase {
    func testCRC32CMatchesPublishedVectors() {
        // RFC 3720 (iSCSI) appendix B.4 and the CRC catalogue check value.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }), 0x113F_DB5C)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    func testMaskedCRCIsRotateAndAdd() {
        // mask(0) = 0xa282ead8; mask(1) = rotr(1, 15) + 0xa282ead8 = 0x00020000 + 0xa282ead8.
        XCTAssertEqual(CRC32C.mask(0), 0xA282_EAD8)
        XCTAssertEqual(CRC32C.mask(1), 0xA284_EAD8)
        XCTAssertEqual(CRC32C.mask(0xFFFF_FFFF), 0xFFFF_FFFF &+ 0xA282_EAD8)
        // TFRecord of an empty payload: length 0 → masked crc of 8 zero bytes.
        let r = TFRecord.frame([])
        XCTAssertEqual(r.count, 16)
        XCTAssertEqual(Array(r[0..<8]), [UInt8](repeating: 0, count: 8))
    }

    func testFramedRecordsRoundTripAndStopAtTruncation() {
        let payloads: [[UInt8]] = [[], [1], Array("hello".utf8), [UInt8](repeating: 7, count: 1000)]
        var file: [UInt8] = []
        for p in payloads { file += TFRecord.frame(p) }
        let (all, stop) = TFRecord.records(in: file)
        XCTAssertEqual(all, payloads)
        XCTAssertEqual(stop, .clean)
        // Cut anywhere inside the last record: the earlier records survive, the tail is reported truncated.
        let lastStart = file.count - (1000 + 16)
        for cut in [lastStart + 1, lastStart + 11, lastStart + 12, lastStart + 500, file.count - 1] {
            let (got, s) = TFRecord.records(in: Array(file[..<cut]))
            XCTAssertEqual(got, Array(payloads.prefix(3)), "cut at \(cut)")
            XCTAssertEqual(s, .truncated(bytes: cut - lastStart), "cut at \(cut)")
        }
    }

    func testCorruptRecordsAreReportedNotTrusted() {
        var file = TFRecord.frame(Array("first".utf8)) + TFRecord.frame(Array("second".utf8))
        let second = 16 + 5
        file[second + 12] ^= 0x01  // flip a data bit of the second record
        let (got, stop) = TFRecord.records(in: file)
        XCTAssertEqual(got, [Array("first".utf8)])
        XCTAssertEqual(stop, .corrupt(offset: second, reason: "data checksum mismatch"))

        // A hostile length (2^63) with a valid length checksum must not allocate or trap.
        var lenBytes = [UInt8](repeating: 0, count: 8); lenBytes[7] = 0x80
        let crc = CRC32C.masked(lenBytes)
        let hostile = lenBytes + (0..<4).map { UInt8(truncatingIfNeeded: crc >> (8 * $0)) } + [1, 2, 3, 4]
        if case .corrupt(0, _) = TFRecord.records(in: hostile).stop {} else { XCTFail("huge length accepted") }
        // Length checksum wrong.
        var bad = TFRecord.frame([9, 9]); bad[8] ^= 0xFF
        if case .corrupt(0, "length checksum mismatch") = TFRecord.records(in: bad).stop {} else { XCTFail() }
        // Random garbage never traps.
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let junk = (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = TensorBoardEvent.events(inFile: junk)
        }
    }

    func testEventsRoundTripWithTheirFieldValues() throws {
        let header = TensorBoardEvent(wallTime: 1_764_000_000.25, step: 0, what: .fileVersion("brain.Event:2"))
        XCTAssertEqual(try TensorBoardEvent(wire: header.encoded()), header)
        let scalars = TensorBoardEvent(wallTime: 1.5, step: Int64.max, what: .scalars([
            .init(tag: "loss/policy", value: 0.41), .init(tag: "eval/pass@8", value: 0),
            .init(tag: "nan", value: .nan), .init(tag: "inf", value: -.infinity), .init(tag: "", value: 1),
        ]))
        let back = try TensorBoardEvent(wire: scalars.encoded())
        XCTAssertEqual(back.step, Int64.max)
        XCTAssertEqual(back.wallTime, 1.5)
        guard case .scalars(let s) = back.what else { return XCTFail("not scalars: \(back.what)") }
        XCTAssertEqual(s.map(\.tag), ["loss/policy", "eval/pass@8", "nan", "inf", ""])
        XCTAssertEqual(s[0].value, 0.41)
        XCTAssertEqual(s[1].value, 0)   // a zero scalar is still present (oneof field is always written)
        XCTAssertTrue(s[2].value.isNaN)
        XCTAssertEqual(s[3].value, -.infinity)
        XCTAssertEqual(try TensorBoardEvent(wire: TensorBoardEvent(wallTime: 0, step: -3, what: .scalars([])).encoded()).step, -3)
    }

    func testFileVersionEventHasTensorFlowsExactBytes() {
        // Bytes of tf.compat.v1.Event(wall_time=1.0, step=0, file_version="brain.Event:2").SerializeToString():
        // 09 <double 1.0 LE> 1a 0d "brain.Event:2" (step 0 is not written in proto3).
        let e = TensorBoardEvent(wallTime: 1.0, step: 0, what: .fileVersion("brain.Event:2"))
        XCTAssertEqual(e.encoded(), [0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x1A, 0x0D] + Array("brain.Event:2".utf8))
    }
}
