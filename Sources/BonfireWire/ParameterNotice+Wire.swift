// The small notice of a same-host parameter broadcast (proto `ParameterNotice`): which version waits in which slot
// of the learner's shared-memory ring file, its size and checksum, and the learner's host identity. The ring itself
// is BonfireCluster's ParameterSlotRing; this is only the message.
import CBonfireProto

package struct WireParameterNotice: Equatable, Sendable {
    package var version: UInt64
    /// Hash of the parameter layout; a receiver rejects a mismatch (as for `WireParameters`).
    package var layoutHash: UInt64
    /// 4 × parameter count.
    package var byteLength: UInt64
    package var slot: UInt32
    /// The ring's checksum of the slot's bytes.
    package var checksum: UInt64
    /// Base name of the ring file (never a path; the receiver checks it names a ring file of its run).
    package var fileName: String
    /// The learner's "<boot id>/<uid>/<host name>".
    package var hostIdentity: String

    package init(version: UInt64, layoutHash: UInt64, byteLength: UInt64, slot: UInt32, checksum: UInt64,
                 fileName: String, hostIdentity: String) {
        self.version = version; self.layoutHash = layoutHash; self.byteLength = byteLength; self.slot = slot
        self.checksum = checksum; self.fileName = fileName; self.hostIdentity = hostIdentity
    }

    package init(wire: [UInt8]) throws(WireError) {
        self = try unpackMessage(wire, what: "ParameterNotice", unpack: bonfire__v1__parameter_notice__unpack,
                                 convert: Self.init(c:))
    }

    package func encoded() -> [UInt8] {
        let arena = PackArena()
        return withExtendedLifetime(arena) { packMessage(build(in: arena)) }
    }

    init(c: UnsafePointer<Bonfire__V1__ParameterNotice>) throws(WireError) {
        let m = c.pointee
        self.init(version: m.version, layoutHash: m.layout_hash, byteLength: m.byte_length, slot: m.slot,
                  checksum: m.checksum, fileName: swiftString(m.file_name), hostIdentity: swiftString(m.host_identity))
    }

    func build(in a: PackArena) -> UnsafeMutablePointer<Bonfire__V1__ParameterNotice> {
        let p = a.make(Bonfire__V1__ParameterNotice.self, bonfire__v1__parameter_notice__init)
        p.pointee.version = version
        p.pointee.layout_hash = layoutHash
        p.pointee.byte_length = byteLength
        p.pointee.slot = slot
        p.pointee.checksum = checksum
        p.pointee.file_name = a.string(fileName)
        p.pointee.host_identity = a.string(hostIdentity)
        return p
    }
}
