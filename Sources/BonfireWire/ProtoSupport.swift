// Internal glue between Swift value types and protobuf-c structs. Nothing here leaves BonfireWire.
//
// Encoding: a `PackArena` owns every C allocation (structs, strings, arrays) that a message tree points into while
// protobuf-c packs it; the arena frees them all when it dies. Big float arrays are copied with one memcpy (or
// borrowed without a copy, see WireParameters), never element by element.
// Decoding: protobuf-c unpacks into malloc'd structs that we convert to Swift values and free at once.
// Float data on the wire is float32 little-endian; this module only builds on little-endian hosts.
import CBonfireProto
import Foundation

#if _endian(big)
#error("BonfireWire sends float32 little-endian by memcpy; port the bulk copies before building on a big-endian host.")
#endif

/// Owns C memory for one encode. Not thread-safe; lives for one `encoded()` call.
final class PackArena {
    private var blocks: [UnsafeMutableRawPointer] = []

    deinit { for b in blocks { free(b) } }

    private func raw(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard let p = malloc(max(bytes, 1)) else { fatalError("PackArena: out of memory allocating \(bytes) bytes") }
        blocks.append(p)
        return p
    }

    /// A zero-filled C struct of type `T`, then `initialise` (the generated `…__init`) sets its descriptor.
    func make<T>(_: T.Type, _ initialise: (UnsafeMutablePointer<T>) -> Void) -> UnsafeMutablePointer<T> {
        let p = raw(MemoryLayout<T>.stride)
        memset(p, 0, MemoryLayout<T>.stride)
        let t = p.bindMemory(to: T.self, capacity: 1)
        initialise(t)
        return t
    }

    /// An array of `count` elements of `T` (uninitialised; caller fills every slot).
    func array<T>(_: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        raw(MemoryLayout<T>.stride * count).bindMemory(to: T.self, capacity: max(count, 1))
    }

    /// A NUL-terminated copy of `s`.
    func string(_ s: String) -> UnsafeMutablePointer<CChar> {
        var utf8 = Array(s.utf8)
        utf8.append(0)
        let p = array(CChar.self, count: utf8.count)
        utf8.withUnsafeBytes { _ = memcpy(p, $0.baseAddress!, $0.count) }
        return p
    }

    /// Raw bytes of a bitwise-copyable array (e.g. [Float] → float32 LE), one memcpy.
    func bytes<T: BitwiseCopyable>(_ values: [T]) -> ProtobufCBinaryData {
        values.withUnsafeBytes { src in
            guard src.count > 0 else { return ProtobufCBinaryData(len: 0, data: nil) }
            let p = raw(src.count)
            memcpy(p, src.baseAddress!, src.count)
            return ProtobufCBinaryData(len: src.count, data: p.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// Token ids as uint32 little-endian bytes. Ids must be in 0...UInt32.max (programmer error otherwise).
    /// Range check and conversion are separate straight loops so both vectorise.
    func tokenBytes(_ values: [Int]) -> ProtobufCBinaryData {
        guard !values.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        var lo = Int.max, hi = Int.min
        for v in values { lo = min(lo, v); hi = max(hi, v) }
        precondition(lo >= 0 && hi <= Int(UInt32.max), "token ids must be in 0...\(UInt32.max), got range \(lo)...\(hi)")
        let p = array(UInt32.self, count: values.count)
        values.withUnsafeBufferPointer { src in
            for i in 0..<src.count { p[i] = UInt32(truncatingIfNeeded: src[i]) }
        }
        return ProtobufCBinaryData(len: values.count * 4, data: UnsafeMutableRawPointer(p).assumingMemoryBound(to: UInt8.self))
    }

    /// Token ids as a uint32_t array. Ids must be in 0...UInt32.max (programmer error otherwise).
    func uint32s(_ values: [Int]) -> (Int, UnsafeMutablePointer<UInt32>?) {
        guard !values.isEmpty else { return (0, nil) }
        let p = array(UInt32.self, count: values.count)
        for (i, v) in values.enumerated() {
            precondition(v >= 0 && v <= Int(UInt32.max), "token id \(v) at index \(i) out of uint32 range")
            p[i] = UInt32(truncatingIfNeeded: v)
        }
        return (values.count, p)
    }

    func copy<T: BitwiseCopyable>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
        guard !values.isEmpty else { return (0, nil) }
        let p = array(T.self, count: values.count)
        values.withUnsafeBytes { _ = memcpy(p, $0.baseAddress!, $0.count) }
        return (values.count, p)
    }

    func strings(_ values: [String]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) {
        guard !values.isEmpty else { return (0, nil) }
        let p = array(UnsafeMutablePointer<CChar>?.self, count: values.count)
        for (i, s) in values.enumerated() { p[i] = string(s) }
        return (values.count, p)
    }
}

// MARK: - Packing and unpacking any generated message

/// Packs the message tree rooted at `message` (whose first member is a `ProtobufCMessage`) into a new array.
func packMessage<T>(_ message: UnsafeMutablePointer<T>) -> [UInt8] {
    let base = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
    let size = protobuf_c_message_get_packed_size(base)
    return [UInt8](unsafeUninitializedCapacity: size) { buf, count in
        count = protobuf_c_message_pack(base, buf.baseAddress)
        precondition(count == size, "protobuf-c packed \(count) bytes, expected \(size)")
    }
}

func packedSize<T>(_ message: UnsafeMutablePointer<T>) -> Int {
    protobuf_c_message_get_packed_size(UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self))
}

/// Packs into caller memory of exactly `packedSize(message)` bytes.
func packMessage<T>(_ message: UnsafeMutablePointer<T>, into out: UnsafeMutableRawBufferPointer) {
    let base = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self)
    let n = protobuf_c_message_pack(base, out.baseAddress?.assumingMemoryBound(to: UInt8.self))
    precondition(n == out.count, "protobuf-c packed \(n) bytes into a buffer of \(out.count)")
}

/// Unpacks with the generated `unpack`, converts with `convert`, frees the C tree. Throws `.malformed` if
/// protobuf-c rejects the bytes.
func unpackMessage<T, R>(
    _ bytes: UnsafeRawBufferPointer, what: String,
    unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<T>?,
    convert: (UnsafePointer<T>) throws(WireError) -> R
) throws(WireError) -> R {
    // protobuf-c reads nothing when len == 0 but wants a non-null pointer on some paths.
    var empty: UInt8 = 0
    let msg: UnsafeMutablePointer<T>? = withUnsafePointer(to: &empty) { e in
        unpack(nil, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? e)
    }
    guard let msg else {
        throw WireError(.malformed, "protobuf-c could not parse \(bytes.count) bytes as \(what)")
    }
    defer {
        protobuf_c_message_free_unpacked(
            UnsafeMutableRawPointer(msg).assumingMemoryBound(to: ProtobufCMessage.self), nil)
    }
    return try convert(UnsafePointer(msg))
}

func unpackMessage<T, R>(
    _ bytes: [UInt8], what: String,
    unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<T>?,
    convert: (UnsafePointer<T>) throws(WireError) -> R
) throws(WireError) -> R {
    try bytes.withUnsafeBytes { raw in
        Result { () throws(WireError) -> R in try unpackMessage(raw, what: what, unpack: unpack, convert: convert) }
    }.get()
}

// MARK: - C → Swift field conversion (bulk copies)

func swiftString(_ p: UnsafeMutablePointer<CChar>?) -> String {
    guard let p else { return "" }
    return String(cString: p)
}

func swiftStrings(_ n: Int, _ p: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> [String] {
    guard n > 0, let p else { return [] }
    return (0..<n).map { swiftString(p[$0]) }
}

func swiftInts(_ n: Int, _ p: UnsafeMutablePointer<UInt32>?) -> [Int] {
    guard n > 0, let p else { return [] }
    return UnsafeBufferPointer(start: p, count: n).map { Int($0) }
}

func swiftArray<T: BitwiseCopyable>(_ n: Int, _ p: UnsafeMutablePointer<T>?) -> [T] {
    guard n > 0, let p else { return [] }
    return Array(UnsafeBufferPointer(start: p, count: n))
}

/// float32 LE bytes → [Float] with one memcpy. Throws if the length is not a multiple of 4, or (when `count` is
/// given) does not hold exactly `count` floats.
func swiftFloats(_ b: ProtobufCBinaryData, field: String, count: Int? = nil) throws(WireError) -> [Float] {
    guard b.len % 4 == 0 else {
        throw WireError(.invalidField, "\(field): \(b.len) bytes is not a whole number of float32")
    }
    let n = b.len / 4
    if let count, count != n {
        throw WireError(.invalidField, "\(field): holds \(n) floats, expected \(count)")
    }
    guard n > 0, let src = b.data else { return [] }
    return [Float](unsafeUninitializedCapacity: n) { buf, c in
        memcpy(buf.baseAddress!, src, b.len)
        c = n
    }
}

/// uint32 LE bytes → token ids (one widening loop). Throws unless the length is 4 × `count` (when given).
func swiftTokens(_ b: ProtobufCBinaryData, field: String, count: Int? = nil) throws(WireError) -> [Int] {
    guard b.len % 4 == 0 else {
        throw WireError(.invalidField, "\(field): \(b.len) bytes is not a whole number of uint32 token ids")
    }
    let n = b.len / 4
    if let count, count != n { throw WireError(.invalidField, "\(field): holds \(n) ids, expected \(count)") }
    guard n > 0, let src = b.data else { return [] }
    let raw = UnsafeRawPointer(src)
    return [Int](unsafeUninitializedCapacity: n) { buf, c in
        for i in 0..<n { buf[i] = Int(raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
        c = n
    }
}

/// int32 LE bytes → [Int32] with one memcpy.
func swiftInt32s(_ b: ProtobufCBinaryData, field: String, count: Int) throws(WireError) -> [Int32] {
    guard b.len == 4 * count else {
        throw WireError(.invalidField, "\(field): \(b.len) bytes, expected \(count) int32 = \(4 * count) bytes")
    }
    guard count > 0, let src = b.data else { return [] }
    return [Int32](unsafeUninitializedCapacity: count) { buf, c in
        memcpy(buf.baseAddress!, src, b.len)
        c = count
    }
}

/// One byte per flag → [Bool]; any non-zero byte is true.
func swiftFlags(_ b: ProtobufCBinaryData, field: String, count: Int) throws(WireError) -> [Bool] {
    guard b.len == count else {
        throw WireError(.invalidField, "\(field): holds \(b.len) flags, expected \(count)")
    }
    guard count > 0, let p = b.data else { return [] }
    return (0..<count).map { p[$0] != 0 }
}

extension PackArena {
    func flags(_ values: [Bool]) -> ProtobufCBinaryData {
        guard !values.isEmpty else { return ProtobufCBinaryData(len: 0, data: nil) }
        let p = array(UInt8.self, count: values.count)
        for (i, v) in values.enumerated() { p[i] = v ? 1 : 0 }
        return ProtobufCBinaryData(len: values.count, data: p)
    }
}
