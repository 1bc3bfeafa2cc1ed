// Parameter broadcast: the learner's whole parameter blob (ParameterLayout order) as float32 little-endian bytes in
// one `bytes` field of ParameterAnnounce. Encoding borrows the [Float] storage (no copy before protobuf-c packs it);
// decoding is one memcpy from the protobuf-c buffer into [Float].
import CBonfireProto

package struct WireParameters: Equatable, Sendable {
    package var version: UInt64
    /// Hash of the parameter layout (names, offsets, shapes); a receiver rejects a blob for another layout.
    package var layoutHash: UInt64
    /// (P) all parameters, flat.
    package var values: [Float]

    package init(version: UInt64, layoutHash: UInt64, values: [Float]) {
        self.version = version; self.layoutHash = layoutHash; self.values = values
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
