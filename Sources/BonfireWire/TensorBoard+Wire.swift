// TensorBoard event files, byte level: the Event/Summary messages of Proto/tensorboard.proto (TensorBoard's own
// field numbers) and the TFRecord framing every events file uses.
//
//   record := uint64 length (LE) · uint32 masked_crc32c(length bytes) · data[length] · uint32 masked_crc32c(data)
//   masked_crc32c(x) := rotate_right(crc32c(x), 15) + 0xa282ead8            (mod 2^32)
//
// crc32c is CRC-32/Castagnoli (reflected polynomial 0x82F63B78, init and xor-out 0xFFFFFFFF), the checksum of
// iSCSI/ext4/TFRecord. The file writer (BonfireCluster/Monitoring/TensorBoardWriter.swift) appends one framed
// record per write(2); readers here and in TensorBoard stop at a truncated final record (a killed role).
import CBonfireProto

// MARK: - CRC32C

package enum CRC32C {
    /// Byte-wise lookup table of the reflected Castagnoli polynomial.
    private static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// CRC-32C of `bytes` ("123456789" → 0xE3069283).
    package static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for b in bytes { crc = t[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        }
        return crc ^ 0xFFFF_FFFF
    }

    /// TFRecord's masked CRC: rotate right by 15, add 0xa282ead8.
    package static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
    }

    package static func masked<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        mask(checksum(bytes))
    }
}

// MARK: - TFRecord framing

package enum TFRecord {
    /// One framed record holding `data`.
    package static func frame(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let lengthBytes = le(UInt64(data.count))
        out += lengthBytes
        out += le(CRC32C.masked(lengthBytes))
        out += data
        out += le(CRC32C.masked(data))
        return out
    }

    /// Why parsing stopped before the end of the bytes.
    package enum Stop: Equatable, Sendable {
        /// Every byte belonged to a complete, valid record.
        case clean
        /// The last `bytes` bytes are an incomplete record (the writer was killed mid-write, or is still writing).
        case truncated(bytes: Int)
        /// A record at `offset` has a bad length or data checksum; nothing after it is trusted.
        case corrupt(offset: Int, reason: String)
    }

    /// Splits a whole events file into record payloads, stopping at the first truncated or corrupt record.
    /// Never traps on any input.
    package static func records(in bytes: [UInt8], maxRecordBytes: Int = 64 << 20) -> (records: [[UInt8]], stop: Stop) {
        var out: [[UInt8]] = []
        var off = 0
        while off < bytes.count {
            guard bytes.count - off >= 12 else { return (out, .truncated(bytes: bytes.count - off)) }
            let lenBytes = Array(bytes[off..<off + 8])
            guard readLE32(bytes, off + 8) == CRC32C.masked(lenBytes) else {
                return (out, .corrupt(offset: off, reason: "length checksum mismatch"))
            }
            let len64 = readLE64(bytes, off)
            guard len64 <= UInt64(maxRecordBytes) else {
                return (out, .corrupt(offset: off, reason: "record length \(len64) exceeds \(maxRecordBytes) bytes"))
            }
            let len = Int(len64)
            guard bytes.count - off - 12 >= len + 4 else { return (out, .truncated(bytes: bytes.count - off)) }
            let data = Array(bytes[off + 12..<off + 12 + len])
            guard readLE32(bytes, off + 12 + len) == CRC32C.masked(data) else {
                return (out, .corrupt(offset: off, reason: "data checksum mismatch"))
            }
            out.append(data)
            off += 16 + len
        }
        return (out, .clean)
    }

    private static func le<T: FixedWidthInteger>(_ x: T) -> [UInt8] {
        (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: x >> (8 * $0)) }
    }
    private static func readLE32(_ b: [UInt8], _ o: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[o + $1]) << (8 * $1) }
    }
    private static func readLE64(_ b: [UInt8], _ o: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[o + $1]) << (8 * $1) }
    }
}

// MARK: - Event

/// One `tensorboard.Event`: either the file-version header or a summary of scalar values.
package struct TensorBoardEvent: Equatable, Sendable {
    package enum What: Equatable, Sendable {
        /// First record of a file: "brain.Event:2".
        case fileVersion(String)
        /// Scalars (tag, value) in one Summary; TensorBoard stores them as float32.
        case scalars([Scalar])
        /// A record with neither (other writers' graph/log events); readers skip it.
        case other
    }
    package struct Scalar: Equatable, Sendable {
        package var tag: String
        package var value: Float
        package init(tag: String, value: Float) { self.tag = tag; self.value = value }
    }

    package static let fileVersionString = "brain.Event:2"

    /// Seconds since the Unix epoch.
    package var wallTime: Double
    package var step: Int64
    package var what: What

    package init(wallTime: Double, step: Int64, what: What) {
        self.wallTime = wallTime; self.step = step; self.what = what
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "tensorboard.Event", unpack: tensorboard__event__unpack, convert: Self.init(c:))
    }

    init(c: UnsafePointer<Tensorboard__Event>) throws(WireError) {
        let e = c.pointee
        let what: What
        switch e.what_case {
        case TENSORBOARD__EVENT__WHAT_FILE_VERSION:
            what = .fileVersion(swiftString(e.file_version))
        case TENSORBOARD__EVENT__WHAT_SUMMARY:
            var scalars: [Scalar] = []
            if let s = e.summary?.pointee {
                for i in 0..<s.n_value {
                    guard let v = s.value[i]?.pointee else {
                        throw WireError(.malformed, "tensorboard.Summary.value[\(i)] is null")
                    }
                    // Values of other kinds (images, histograms) are not ours: skipped.
                    if v.value_case == TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE {
                        scalars.append(Scalar(tag: swiftString(v.tag), value: v.simple_value))
                    }
                }
            }
            what = .scalars(scalars)
        default:
            what = .other
        }
        self.init(wallTime: e.wall_time, step: e.step, what: what)
    }

    /// The serialized `tensorboard.Event` (not framed; see `framed()`).
    package func encoded() -> [UInt8] {
        let a = PackArena()
        return withExtendedLifetime(a) {
            let p = a.make(Tensorboard__Event.self, tensorboard__event__init)
            p.pointee.wall_time = wallTime
            p.pointee.step = step
            switch what {
            case .fileVersion(let s):
                p.pointee.what_case = TENSORBOARD__EVENT__WHAT_FILE_VERSION
                p.pointee.file_version = a.string(s)
            case .scalars(let scalars):
                let s = a.make(Tensorboard__Summary.self, tensorboard__summary__init)
                s.pointee.n_value = scalars.count
                if !scalars.isEmpty {
                    let arr = a.array(UnsafeMutablePointer<Tensorboard__Summary__Value>?.self, count: scalars.count)
                    for (i, sc) in scalars.enumerated() {
                        let v = a.make(Tensorboard__Summary__Value.self, tensorboard__summary__value__init)
                        v.pointee.tag = a.string(sc.tag)
                        v.pointee.value_case = TENSORBOARD__SUMMARY__VALUE__VALUE_SIMPLE_VALUE
                        v.pointee.simple_value = sc.value
                        arr[i] = v
                    }
                    s.pointee.value = arr
                }
                p.pointee.what_case = TENSORBOARD__EVENT__WHAT_SUMMARY
                p.pointee.summary = s
            case .other:
                break
            }
            return packMessage(p)
        }
    }

    /// The event as one TFRecord, ready to append to an events file.
    package func framed() -> [UInt8] { TFRecord.frame(encoded()) }

    /// Decodes every complete record of an events file; stops at a truncated or corrupt tail (reported in `stop`),
    /// counts records whose payload is not an Event in `undecodable`.
    package static func events(inFile bytes: [UInt8]) -> (events: [TensorBoardEvent], undecodable: Int, stop: TFRecord.Stop) {
        let (records, stop) = TFRecord.records(in: bytes)
        var events: [TensorBoardEvent] = []
        var bad = 0
        for r in records {
            if let e = try? TensorBoardEvent(wire: r) { events.append(e) } else { bad += 1 }
        }
        return (events, bad, stop)
    }
}
