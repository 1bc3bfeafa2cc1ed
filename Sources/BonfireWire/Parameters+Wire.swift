// Parameter broadcast: the learner's whole parameter blob (ParameterLayout order) as float32 little-endian bytes in
// one `bytes` field of ParameterAnnounce. FastCodec encodes it with one memcpy into the ZeroMQ message and decodes it
// with one memcpy out of the frame, computing the validator's largest |x| on the way (see `largestMagnitudeBits`).
// The protobuf-c path (reference): encoding borrows the [Float] storage; decoding copies twice.
import CBonfireProto

package struct WireParameters: Equatable, Sendable {
    package var version: UInt64
    /// Hash of the parameter layout (names, offsets, shapes); a receiver rejects a blob for another layout.
    package var layoutHash: UInt64
    /// (P) all parameters, flat.
    package var values: [Float] { didSet { largestMagnitudeBits = nil } }
    /// `Self.largestMagnitudeBits(values)` when FastCodec computed it while copying the values out of the frame (the
    /// validator's finiteness/bound check then needs no second pass over 4·P bytes); nil otherwise. Not part of the
    /// value (`==` ignores it) and cleared by any change to `values`.
    package private(set) var largestMagnitudeBits: UInt32?

    package init(version: UInt64, layoutHash: UInt64, values: [Float]) {
        self.version = version; self.layoutHash = layoutHash; self.values = values
    }

    init(version: UInt64, layoutHash: UInt64, values: [Float], largestMagnitudeBits: UInt32) {
        self.init(version: version, layoutHash: layoutHash, values: values)
        self.largestMagnitudeBits = largestMagnitudeBits
    }

    package static func == (a: WireParameters, b: WireParameters) -> Bool {
        a.version == b.version && a.layoutHash == b.layoutHash && a.values == b.values
    }

    /// The largest |x| as float bits with the sign cleared. With the sign cleared, float bits order like integers
    /// (finite < infinity < NaN), so this integer max finds the worst value and vectorises; it is ≥
    /// `Float.infinity.bitPattern` exactly when some value is not finite. 0 for no values.
    package static func largestMagnitudeBits(_ v: UnsafeBufferPointer<Float>) -> UInt32 {
        var worst: UInt32 = 0
        for x in v { worst = Swift.max(worst, x.bitPattern & 0x7FFF_FFFF) }
        return worst
    }

    package static func largestMagnitudeBits(_ v: [Float]) -> UInt32 {
        v.withUnsafeBufferPointer { largestMagnitudeBits($0) }
    }

    package var byteLength: Int { values.count * 4 }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "ParameterAnnounce", unpack: bonfire__v1__parameter_announce__unpack,
                                 convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) {
            values.withUnsafeBytes { packMessage(build(in: arena, borrowing: $0)) }
        }
    }

    init(c: UnsafePointer<Bonfire__V1__ParameterAnnounce>) throws(WireError) {
        let m = c.pointee
        guard m.byte_length == UInt64(m.data.len) else {
            throw WireError(.invalidField, "ParameterAnnounce.byte_length \(m.byte_length) but data has \(m.data.len) bytes")
        }
        self.init(version: m.version, layoutHash: m.layout_hash,
                  values: try swiftFloats(m.data, field: "ParameterAnnounce.data"))
    }

    /// `raw` must be `values`' bytes and stay valid until packing is done (caller holds `withUnsafeBytes`).
    func build(in a: PackArena, borrowing raw: UnsafeRawBufferPointer) -> UnsafeMutablePointer<Bonfire__V1__ParameterAnnounce> {
        precondition(raw.count == byteLength, "borrowed \(raw.count) bytes for \(values.count) floats")
        let p = a.make(Bonfire__V1__ParameterAnnounce.self, bonfire__v1__parameter_announce__init)
        p.pointee.version = version
        p.pointee.layout_hash = layoutHash
        p.pointee.byte_length = UInt64(raw.count)
        p.pointee.data = ProtobufCBinaryData(
            len: raw.count,
            data: raw.count == 0 ? nil : UnsafeMutableRawPointer(mutating: raw.baseAddress!).assumingMemoryBound(to: UInt8.self))
        return p
    }
}
