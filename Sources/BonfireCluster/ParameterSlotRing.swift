// Same-host parameter broadcast through shared memory (issue 15: a 10 M-float broadcast ≤ 15 ms end to end; loopback
// TCP alone takes ~19 ms for 40 MB). The learner writes each published version into one slot of a ring in a file
// under /dev/shm (the run directory when /dev/shm is absent) and broadcasts only a small notice over the ZeroMQ PUB
// (CURVE-authenticated when security is on): version, layout hash, byte count, slot, checksum, file name and the
// learner's host identity. An actor whose own host identity matches maps the file and copies the slot out,
// verifying shape, checksum and finite values in the same pass; anything else falls back to the full-parameter
// message (ActorLink asks the learner directly).
//
// File layout (little-endian, every offset a multiple of 64):
//   header (64 B)  magic "BFPSHM01" u64 · slot count u32 · uid u32 · byte capacity u64 · layout hash u64 · pid u32
//   slot i (at 64 + i·stride, stride = 64 + capacity rounded up to 64):
//     sequence u64 (odd while the learner writes it) · version u64 · byte length u64 · checksum u64 · data (capacity)
//
// Torn reads: with ≥ 2 slots the learner writes version v+1 into the other slot than v, so an actor copying v is
// only overwritten when it lags two versions. The slot's sequence is read before and after the copy (a seqlock);
// a changed or odd sequence, another version in the slot, or a checksum that differs from the notice's means the
// copy is discarded and the actor asks again — torn weights are never installed.
//
// Safety: the file is created with O_EXCL, mode 0600, under an unpredictable name holding the run id and the
// learner's pid; an actor opens only a plain name of this run (no path), a regular file owned by its own uid, not
// readable by others, of exactly the expected size. Anyone able to write the file is the same user as the actor.
import BonfireMath
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif
#if canImport(Synchronization)
import Synchronization
#endif

package final class ParameterSlotRing {
    /// What the learner's broadcast says about one version held in the ring (the wire message itself).
    package typealias Notice = WireParameterNotice

    /// Why an actor did not take parameters from shared memory (counted; the full message is asked for instead).
    package enum Rejection: String, CaseIterable, Error, Sendable {
        /// The notice comes from a learner on another host (or this host has no boot id).
        case otherHost = "other_host"
        /// The file name is not a ring file of this run (a path, another run, garbage).
        case badFileName = "bad_file_name"
        /// The file does not exist (removed, another /dev/shm namespace).
        case fileMissing = "file_missing"
        /// Not a regular file of this user with mode 0600, wrong size or header (truncated, tampered).
        case fileInvalid = "file_invalid"
        /// Layout hash or byte count differ from this actor's model.
        case shapeMismatch = "shape_mismatch"
        /// The slot holds another version (overwritten: the actor lagged, or a replayed/future notice).
        case versionMismatch = "version_mismatch"
        /// The learner wrote the slot while it was copied.
        case torn
        /// The copied bytes do not match the notice's checksum (corrupted or torn).
        case checksumMismatch = "checksum_mismatch"
        /// NaN, infinity or |x| above the bound among the values (`ValidationContext.parameterBound`, as for a
        /// full broadcast).
        case nonFinite = "non_finite"
    }

    static let magic: UInt64 = 0x3130_4D48_5350_4642   // "BFPSHM01" little-endian
    static let headerBytes = 64
    static let slotHeaderBytes = 64
    static let namePrefix = "bonfire-params-"
    /// An actor that may read the ring says so in its hello to the learner: this prefix + its host identity.
    package static let capabilityPrefix = "params-shm:"

    /// The ring file's name (base name) and full path.
    package let fileName: String
    package let path: String
    package let slotCount: Int
    /// 4 × parameter count.
    package let byteCapacity: Int
    package let layoutHash: UInt64
    let stride: Int
    let base: UnsafeMutableRawPointer
    let mappedBytes: Int
    /// The writer owns the file (removes it on `close`); a reader only maps it.
    let isWriter: Bool
    var nextSlot = 0
    private var closed = false

    private init(fileName: String, path: String, slotCount: Int, byteCapacity: Int, layoutHash: UInt64,
                 base: UnsafeMutableRawPointer, mappedBytes: Int, isWriter: Bool) {
        self.fileName = fileName; self.path = path; self.slotCount = slotCount; self.byteCapacity = byteCapacity
        self.layoutHash = layoutHash; self.stride = Self.stride(byteCapacity: byteCapacity); self.base = base
        self.mappedBytes = mappedBytes; self.isWriter = isWriter
    }

    deinit { close() }

    /// Unmaps; the writer also removes the file. Idempotent.
    package func close() {
        guard !closed else { return }
        closed = true
        munmap(base, mappedBytes)
        if isWriter { unlink(path) }
    }

    // MARK: Names, identity, directory

    static func stride(byteCapacity: Int) -> Int { slotHeaderBytes + (byteCapacity + 63) / 64 * 64 }
    static func fileBytes(byteCapacity: Int, slots: Int) -> Int { headerBytes + slots * stride(byteCapacity: byteCapacity) }

    /// The run id as it appears in file names: [A-Za-z0-9_] only, at most 40 characters ("run" when empty).
    static func nameComponent(runID: String) -> String {
        let s = String(runID.unicodeScalars.prefix(40).map {
            ($0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_")) ? Character($0) : "_"
        })
        return s.isEmpty ? "run" : s
    }

    /// Whether `name` can be a ring file of run `runID`: "bonfire-params-<run>-<pid>-<32 hex>", nothing else.
    package static func isRingFileName(_ name: String, runID: String) -> Bool {
        let prefix = namePrefix + nameComponent(runID: runID) + "-"
        guard name.hasPrefix(prefix), name.utf8.count <= 128 else { return false }
        let rest = name.dropFirst(prefix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard rest.count == 2, let pid = Int32(rest[0]), pid > 0, rest[1].utf8.count == 32 else { return false }
        return rest[1].utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    static func pid(inRingFileName name: String) -> Int32? {
        let parts = name.split(separator: "-")
        return parts.count >= 2 ? Int32(parts[parts.count - 2]) : nil
    }

    /// This host's identity as far as shared memory goes: boot id, uid and host name ("<boot id>/<uid>/<host>").
    /// nil without a boot id (not Linux): shared memory is then never used.
    package static func hostIdentity() -> String? {
        guard let boot = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8) else { return nil }
        let id = boot.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !id.isEmpty else { return nil }
        return "\(id)/\(getuid())/\(ProcessInfo.processInfo.hostName)"
    }

    /// Where ring files live: /dev/shm when it is a directory, else `fallback` (the run directory).
    package static func directory(fallback: String) -> String {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDir), isDir.boolValue,
           access("/dev/shm", W_OK) == 0 {
            return "/dev/shm"
        }
        return fallback
    }

    // MARK: Writer (learner)

    /// Creates a new ring file (O_EXCL, mode 0600, unpredictable name) for `parameterCount` floats.
    package static func create(directory: String, runID: String, layoutHash: UInt64, parameterCount: Int,
                               slots: Int = 2) throws -> ParameterSlotRing {
        precondition(slots >= 2 && parameterCount >= 0, "ParameterSlotRing: slots \(slots) ≥ 2, parameterCount \(parameterCount) ≥ 0")
        let capacity = parameterCount * 4
        let total = fileBytes(byteCapacity: capacity, slots: slots)
        var rng = SystemRandomNumberGenerator()
        let random = (0..<2).map { _ in String(format: "%016llx", rng.next() as UInt64) }.joined()
        let name = "\(namePrefix)\(nameComponent(runID: runID))-\(getpid())-\(random)"
        let path = directory + "/" + name
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ClusterError("cannot create the shared-memory parameter file \(path): \(String(cString: strerror(errno))). " +
                               "Free space in \(directory) or set endpoints.sharedMemoryParameters = false")
        }
        defer { Glibc.close(fd) }
        // fchmod as well: a umask cannot widen 0600, but make the mode explicit.
        guard fchmod(fd, 0o600) == 0, ftruncate(fd, off_t(total)) == 0,
              let map = mmap(nil, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), map != MAP_FAILED else {
            let why = String(cString: strerror(errno))
            unlink(path)
            throw ClusterError("cannot size or map the shared-memory parameter file \(path) (\(total) bytes): \(why). " +
                               "Free space in \(directory) or set endpoints.sharedMemoryParameters = false")
        }
        map.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt64.self)
        map.storeBytes(of: UInt32(slots).littleEndian, toByteOffset: 8, as: UInt32.self)
        map.storeBytes(of: UInt32(getuid()).littleEndian, toByteOffset: 12, as: UInt32.self)
        map.storeBytes(of: UInt64(capacity).littleEndian, toByteOffset: 16, as: UInt64.self)
        map.storeBytes(of: layoutHash.littleEndian, toByteOffset: 24, as: UInt64.self)
        map.storeBytes(of: UInt32(getpid()).littleEndian, toByteOffset: 32, as: UInt32.self)
        return ParameterSlotRing(fileName: name, path: path, slotCount: slots, byteCapacity: capacity, layoutHash: layoutHash,
                                 base: map, mappedBytes: total, isWriter: true)
    }

    func slotBase(_ slot: Int) -> UnsafeMutableRawPointer { base + Self.headerBytes + slot * stride }

    func sequence(_ slot: Int) -> UInt64 {
        UInt64(littleEndian: slotBase(slot).load(as: UInt64.self))
    }

    /// Marks the next slot as being written (odd sequence) and returns it. `write` is begin + copy + commit; the
    /// parts are separate so tests can hold a slot half-written.
    package func beginWrite() -> Int {
        precondition(isWriter && !closed, "ParameterSlotRing.beginWrite on a reader or a closed ring")
        let slot = nextSlot
        nextSlot = (nextSlot + 1) % slotCount
        let s = slotBase(slot)
        s.storeBytes(of: (sequence(slot) | 1).littleEndian, toByteOffset: 0, as: UInt64.self)
        Self.fence()
        return slot
    }

    /// Copies `values` into `slot` (begun by `beginWrite`), records version and checksum, and closes the slot
    /// (even sequence). Returns the checksum.
    package func finishWrite(slot: Int, values: UnsafeBufferPointer<Float>, version: UInt64) -> UInt64 {
        precondition(values.count * 4 == byteCapacity, "ParameterSlotRing: \(values.count) floats, ring holds \(byteCapacity / 4)")
        let s = slotBase(slot)
        let data = s + Self.slotHeaderBytes
        let sum = values.withMemoryRebound(to: UInt32.self) { words in
            Self.copyAndChecksum(from: UnsafeRawPointer(words.baseAddress ?? UnsafePointer(bitPattern: 64)!), to: data,
                                 words: words.count).checksum
        }
        s.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt64.self)
        s.storeBytes(of: UInt64(byteCapacity).littleEndian, toByteOffset: 16, as: UInt64.self)
        s.storeBytes(of: sum.littleEndian, toByteOffset: 24, as: UInt64.self)
        Self.fence()
        s.storeBytes(of: (sequence(slot) &+ 1).littleEndian, toByteOffset: 0, as: UInt64.self)   // odd → even
        Self.fence()
        return sum
    }

    /// Writes `values` as `version` into the next slot; the notice to broadcast.
    package func write(_ values: UnsafeBufferPointer<Float>, version: UInt64, hostIdentity: String) -> Notice {
        let slot = beginWrite()
        let sum = finishWrite(slot: slot, values: values, version: version)
        return Notice(version: version, layoutHash: layoutHash, byteLength: UInt64(byteCapacity), slot: UInt32(slot),
                      checksum: sum, fileName: fileName, hostIdentity: hostIdentity)
    }

    /// Removes ring files of run `runID` in `directory` left by learners that are gone (not this process; owned by
    /// this user). `allPIDs`: remove every ring file of the run (the supervisor after its roles have exited).
    /// Returns the removed names.
    @discardableResult
    package static func removeStale(directory: String, runID: String, allPIDs: Bool = false) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where isRingFileName(name, runID: runID) {
            guard let pid = pid(inRingFileName: name), pid != getpid() else { continue }
            if !allPIDs, kill(pid, 0) == 0 || errno != ESRCH { continue }   // its learner is alive (or not ours to ask)
            var st = stat()
            let path = directory + "/" + name
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == getuid() else { continue }
            if unlink(path) == 0 { removed.append(name) }
        }
        return removed
    }

    // MARK: Reader (actor)

    /// Maps the ring file `fileName` of run `runID` in `directory` for a model of `parameterCount` floats with
    /// `layoutHash`, after checking it is what a learner of this run and user creates.
    package static func open(directory: String, fileName: String, runID: String, layoutHash: UInt64,
                             parameterCount: Int) throws(Rejection) -> ParameterSlotRing {
        guard isRingFileName(fileName, runID: runID) else { throw .badFileName }
        let path = directory + "/" + fileName
        let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw errno == ENOENT ? .fileMissing : .fileInvalid }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == getuid(), st.st_mode & 0o077 == 0,
              st.st_size >= off_t(headerBytes) else { throw .fileInvalid }
        let size = Int(st.st_size)
        guard let map = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), map != MAP_FAILED else { throw .fileInvalid }
        let slots = Int(UInt32(littleEndian: map.load(fromByteOffset: 8, as: UInt32.self)))
        let capacity = UInt64(littleEndian: map.load(fromByteOffset: 16, as: UInt64.self))
        let hash = UInt64(littleEndian: map.load(fromByteOffset: 24, as: UInt64.self))
        guard UInt64(littleEndian: map.load(as: UInt64.self)) == magic, (2...64).contains(slots),
              capacity <= UInt64(Int.max / 128), size == fileBytes(byteCapacity: Int(capacity), slots: slots) else {
            munmap(map, size)
            throw .fileInvalid
        }
        guard hash == layoutHash, capacity == UInt64(parameterCount) * 4 else {
            munmap(map, size)
            throw .shapeMismatch
        }
        return ParameterSlotRing(fileName: fileName, path: path, slotCount: slots, byteCapacity: Int(capacity),
                                 layoutHash: hash, base: map, mappedBytes: size, isWriter: false)
    }

    /// Copies the parameters `notice` announces into `values` (resized to the parameter count; its storage is
    /// reused when uniquely held), checking slot, version, byte count, checksum and finiteness in the same pass
    /// and the slot's sequence before and after; every value must be finite with |x| ≤ `bound`. On a rejection
    /// `values` holds garbage: never install it.
    package func read(_ notice: Notice, into values: inout [Float], bound: Float = 1e6) -> Rejection? {
        precondition(!closed, "ParameterSlotRing.read on a closed ring")
        guard notice.fileName == fileName else { return .badFileName }
        guard notice.layoutHash == layoutHash, notice.byteLength == UInt64(byteCapacity) else { return .shapeMismatch }
        guard let slot = Int(exactly: notice.slot), slot < slotCount else { return .fileInvalid }
        let s = slotBase(slot)
        let before = sequence(slot)
        Self.fence()
        guard before & 1 == 0 else { return .torn }
        guard UInt64(littleEndian: s.load(fromByteOffset: 8, as: UInt64.self)) == notice.version,
              UInt64(littleEndian: s.load(fromByteOffset: 16, as: UInt64.self)) == notice.byteLength else {
            return .versionMismatch
        }
        let count = byteCapacity / 4
        if values.count != count {
            values = [Float](unsafeUninitializedCapacity: count) { _, n in n = count }   // every word is written below
        }
        let (sum, within) = values.withUnsafeMutableBytes { dst in
            Self.copyAndChecksum(from: UnsafeRawPointer(s + Self.slotHeaderBytes), to: dst.baseAddress, words: count,
                                 bound: bound)
        }
        Self.fence()
        guard sequence(slot) == before else { return .torn }
        guard sum == notice.checksum else { return .checksumMismatch }
        guard within else { return .nonFinite }
        return nil
    }

    // MARK: Checksum

    /// The ring's checksum of `words` 32-bit words at `src`: 16 interleaved Fletcher lanes (lane k sums words
    /// i ≡ k mod 16: a += w, b += a, mod 2³²), mixed with the word count into 64 bits. Any single changed word
    /// changes it; reordered or mixed versions almost surely do.
    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        precondition(bytes.count % 4 == 0, "ParameterSlotRing.checksum: \(bytes.count) bytes is not whole words")
        guard let p = bytes.baseAddress else { return copyAndChecksum(from: UnsafeRawPointer(bitPattern: 64)!, to: nil, words: 0).checksum }
        return copyAndChecksum(from: p, to: nil, words: bytes.count / 4).checksum
    }

    /// One pass over `words` words: copies them to `dst` (when given), computes the checksum and whether every
    /// word, read as a float, is finite with |x| ≤ `bound`. Only SSE2-width integer operations (add, and, subtract,
    /// or) so it vectorises on baseline x86-64: |x|'s bits as a non-negative Int32 are ≤ the bound's bits exactly
    /// when |x| ≤ bound (NaN and infinity have larger bits than any finite bound), and `boundBits − bits` is
    /// negative exactly when one is over; OR-ing those differences keeps any sign bit. (A UInt32 max over the bits,
    /// as `WireParameters.largestMagnitudeBits` does, needs SSE4.1 and made this pass twice as slow as a memcpy.)
    ///
    /// The fast path runs the body in C (`Kernels.copyFletcher16`: the same lanes, with non-temporal stores — a 40 MB
    /// copy that neither reads the destination in first nor evicts the caches); `copyAndChecksumPlain` is its Swift
    /// twin, which the tests compare it with.
    /// `nonTemporal` (default: copies of at least `nonTemporalBytes`) bypasses the caches: a copy that fits in them is
    /// better left there for the actor's next pass over its weights.
    package static func copyAndChecksum(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer?, words n: Int,
                                        bound: Float = .greatestFiniteMagnitude,
                                        nonTemporal: Bool? = nil) -> (checksum: UInt64, withinBound: Bool) {
        var a = SIMD16<UInt32>(repeating: 0), b = SIMD16<UInt32>(repeating: 0), over = SIMD16<Int32>(repeating: 0)
        let boundBits = Int32(bitPattern: min(bound.magnitude.bitPattern, Float.greatestFiniteMagnitude.bitPattern))
        let done = Kernels.copyFletcher16(to: dst, from: src, words: n, boundBits: boundBits, a: &a, b: &b, over: &over,
                                          nonTemporal: nonTemporal ?? (n * 4 >= nonTemporalBytes))
        return finish(from: src, to: dst, words: n, start: done, boundBits: boundBits, a: &a, b: &b, over: &over)
    }

    /// Copies at least this large use non-temporal stores (40 MB: 5.5 → 3.5 ms for the copy alone here). Below it the
    /// copy takes under a millisecond either way, and a parameter set that fits in the caches (tiny, small) is better
    /// left there: the actor reads all of it again right after (the sampler packs its weights).
    package static let nonTemporalBytes = 8 << 20

    /// The plain twin of `copyAndChecksum` (the whole body in Swift SIMD).
    package static func copyAndChecksumPlain(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer?, words n: Int,
                                     bound: Float = .greatestFiniteMagnitude) -> (checksum: UInt64, withinBound: Bool) {
        var a = SIMD16<UInt32>(repeating: 0), b = SIMD16<UInt32>(repeating: 0), over = SIMD16<Int32>(repeating: 0)
        let mask = SIMD16<UInt32>(repeating: 0x7FFF_FFFF)
        let boundBits = Int32(bitPattern: min(bound.magnitude.bitPattern, Float.greatestFiniteMagnitude.bitPattern))
        let limit = SIMD16<Int32>(repeating: boundBits)
        let body = n / 16 * 16
        var i = 0
        if let dst {
            while i < body {
                let w = src.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<UInt32>.self)
                dst.storeBytes(of: w, toByteOffset: i * 4, as: SIMD16<UInt32>.self)
                a &+= w; b &+= a
                over |= limit &- SIMD16<Int32>(truncatingIfNeeded: w & mask)
                i += 16
            }
        } else {
            while i < body {
                let w = src.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<UInt32>.self)
                a &+= w; b &+= a
                over |= limit &- SIMD16<Int32>(truncatingIfNeeded: w & mask)
                i += 16
            }
        }
        return finish(from: src, to: dst, words: n, start: i, boundBits: boundBits, a: &a, b: &b, over: &over)
    }

    /// The words from `start` on (fewer than 16) one at a time, then the lanes mixed into 64 bits.
    private static func finish(from src: UnsafeRawPointer, to dst: UnsafeMutableRawPointer?, words n: Int, start: Int,
                               boundBits: Int32, a: inout SIMD16<UInt32>, b: inout SIMD16<UInt32>,
                               over: inout SIMD16<Int32>) -> (checksum: UInt64, withinBound: Bool) {
        var i = start
        while i < n {
            let w = src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)
            dst?.storeBytes(of: w, toByteOffset: i * 4, as: UInt32.self)
            let k = i % 16
            a[k] &+= w; b[k] &+= a[k]
            over[k] |= boundBits &- Int32(bitPattern: w & 0x7FFF_FFFF)
            i += 1
        }
        var h = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n)
        for k in 0..<16 { h = mix(h ^ (UInt64(a[k]) << 32 | UInt64(b[k]))) }
        return (h, over.min() >= 0)
    }

    /// splitmix64's finaliser.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A full memory fence (compiler and CPU) between the sequence and the data accesses.
    static func fence() {
        #if canImport(Synchronization)
        if #available(macOS 15, *) { atomicMemoryFence(ordering: .sequentiallyConsistent) }
        #endif
    }
}
