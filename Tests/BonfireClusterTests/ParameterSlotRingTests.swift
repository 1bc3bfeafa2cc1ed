// The shared-memory parameter ring (ParameterSlotRing.swift) without sockets: what the learner writes an actor reads
// back exactly; every hostile or broken case — a name that is a path or another run's, a missing, truncated,
// world-readable or resized file, a flipped byte, NaN, a replayed or future version, a slot overwritten or being
// written during the copy — is rejected with its reason and never handed out as parameters; files are created 0600
// with O_EXCL and removed by their writer, and stale files of a dead learner are cleaned up.
import BonfireCluster
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class ParameterSlotRingTests: XCTestCase {
    var dir = ""
    let runID = "ring-test"

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "bonfire-ring-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func values(_ n: Int, seed: Float) -> [Float] { (0..<n).map { Float($0) * 0.001 + seed } }

    func write(_ ring: ParameterSlotRing, _ v: [Float], version: UInt64) -> ParameterSlotRing.Notice {
        v.withUnsafeBufferPointer { ring.write($0, version: version, hostIdentity: "h") }
    }

    func testWhatTheLearnerWritesTheActorReadsBackExactlyAcrossTheRing() throws {
        let n = 1003   // not a multiple of the checksum's 16 lanes
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 42, parameterCount: n)
        defer { writer.close() }
        let reader = try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: runID, layoutHash: 42,
                                                parameterCount: n)
        defer { reader.close() }
        var out: [Float] = []
        for version in UInt64(1)...5 {
            let v = values(n, seed: Float(version))
            let notice = write(writer, v, version: version)
            XCTAssertEqual(notice.slot, UInt32((version - 1) % 2), "consecutive versions alternate slots")
            XCTAssertEqual(notice.byteLength, UInt64(4 * n))
            XCTAssertNil(reader.read(notice, into: &out))
            XCTAssertEqual(out, v)
        }
    }

    func testFileIsCreatedExclusivelyWithMode0600AndRemovedByItsWriter() throws {
        let writer = try ParameterSlotRing.create(directory: dir, runID: "run/../x y", layoutHash: 1, parameterCount: 16)
        var st = stat()
        XCTAssertEqual(lstat(writer.path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        XCTAssertEqual(st.st_uid, getuid())
        XCTAssertFalse(writer.fileName.contains("/"), writer.fileName)
        XCTAssertTrue(ParameterSlotRing.isRingFileName(writer.fileName, runID: "run/../x y"))
        let other = try ParameterSlotRing.create(directory: dir, runID: "run/../x y", layoutHash: 1, parameterCount: 16)
        XCTAssertNotEqual(other.fileName, writer.fileName, "names are unpredictable, never reused")
        writer.close(); other.close()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    func testNamesThatArePathsOrOtherRunsAreRefusedBeforeAnyFileIsOpened() throws {
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 1, parameterCount: 4)
        defer { writer.close() }
        for name in ["../" + writer.fileName, "/etc/passwd", writer.fileName + "/x", "",
                     writer.fileName.replacingOccurrences(of: runID.replacingOccurrences(of: "-", with: "_"), with: "other_run"),
                     "bonfire-params-ring_test-1-ZZZZ"] {
            XCTAssertThrowsError(try ParameterSlotRing.open(directory: dir, fileName: name, runID: runID, layoutHash: 1,
                                                            parameterCount: 4), name) {
                XCTAssertEqual($0 as? ParameterSlotRing.Rejection, .badFileName, name)
            }
        }
        XCTAssertThrowsError(try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: "other-run",
                                                        layoutHash: 1, parameterCount: 4)) {
            XCTAssertEqual($0 as? ParameterSlotRing.Rejection, .badFileName)
        }
    }

    func testMissingTruncatedWorldReadableOrWrongShapeFilesAreRejected() throws {
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 9, parameterCount: 64)
        defer { writer.close() }
        func opening(hash: UInt64 = 9, count: Int = 64, name: String? = nil) -> ParameterSlotRing.Rejection? {
            do {
                let r = try ParameterSlotRing.open(directory: dir, fileName: name ?? writer.fileName, runID: runID,
                                                   layoutHash: hash, parameterCount: count)
                r.close()
                return nil
            } catch { return error }
        }
        XCTAssertNil(opening())
        XCTAssertEqual(opening(hash: 8), .shapeMismatch)
        XCTAssertEqual(opening(count: 63), .shapeMismatch)
        let missing = String(writer.fileName.dropLast(32)) + String(repeating: "0", count: 32)
        XCTAssertEqual(opening(name: missing), .fileMissing)
        XCTAssertEqual(chmod(writer.path, 0o644), 0)
        XCTAssertEqual(opening(), .fileInvalid, "readable by others: not a file our learner made")
        XCTAssertEqual(chmod(writer.path, 0o600), 0)
        XCTAssertEqual(truncate(writer.path, 100), 0)
        XCTAssertEqual(opening(), .fileInvalid, "truncated")
        XCTAssertEqual(truncate(writer.path, 0), 0)
        XCTAssertEqual(opening(), .fileInvalid, "empty")
    }

    func testAFileWithAForgedHeaderOrASymlinkIsRejected() throws {
        let name = "bonfire-params-ring_test-1-" + String(repeating: "a", count: 32)
        let path = dir + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(repeating: 0, count: 64 + 2 * (64 + 16)),
                                       attributes: [.posixPermissions: 0o600])
        XCTAssertThrowsError(try ParameterSlotRing.open(directory: dir, fileName: name, runID: runID, layoutHash: 0,
                                                        parameterCount: 4)) {
            XCTAssertEqual($0 as? ParameterSlotRing.Rejection, .fileInvalid, "no magic")
        }
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 0, parameterCount: 4)
        defer { writer.close() }
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: writer.path)
        XCTAssertThrowsError(try ParameterSlotRing.open(directory: dir, fileName: name, runID: runID, layoutHash: 0,
                                                        parameterCount: 4)) {
            XCTAssertEqual($0 as? ParameterSlotRing.Rejection, .fileInvalid, "symlinks are not followed")
        }
    }

    func testHostileNoticesAreRejectedWithTheirReason() throws {
        let n = 40
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 5, parameterCount: n)
        defer { writer.close() }
        let reader = try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: runID, layoutHash: 5,
                                                parameterCount: n)
        defer { reader.close() }
        let good = write(writer, values(n, seed: 1), version: 7)
        var out: [Float] = []
        func reading(_ change: (inout ParameterSlotRing.Notice) -> Void) -> ParameterSlotRing.Rejection? {
            var notice = good
            change(&notice)
            return reader.read(notice, into: &out)
        }
        XCTAssertNil(reading { _ in })
        XCTAssertEqual(reading { $0.version = 6 }, .versionMismatch, "replayed version")
        XCTAssertEqual(reading { $0.version = 9 }, .versionMismatch, "future version")
        XCTAssertEqual(reading { $0.slot = 1 }, .versionMismatch, "a slot never written")
        XCTAssertEqual(reading { $0.slot = 2 }, .fileInvalid, "slot out of range")
        XCTAssertEqual(reading { $0.slot = .max }, .fileInvalid)
        XCTAssertEqual(reading { $0.byteLength = UInt64(4 * n - 4) }, .shapeMismatch)
        XCTAssertEqual(reading { $0.layoutHash = 6 }, .shapeMismatch)
        XCTAssertEqual(reading { $0.checksum ^= 1 }, .checksumMismatch)
        XCTAssertEqual(reading { $0.fileName = "other" }, .badFileName)
    }

    func testAFlippedByteInTheFileIsCaughtByTheChecksum() throws {
        let n = 100
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 5, parameterCount: n)
        defer { writer.close() }
        let reader = try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: runID, layoutHash: 5,
                                                parameterCount: n)
        defer { reader.close() }
        let notice = write(writer, values(n, seed: 2), version: 1)
        // Flip one bit of value 57 in place (as another process of this user could).
        let fd = open(writer.path, O_RDWR)
        XCTAssertGreaterThanOrEqual(fd, 0)
        let offset = off_t(64 + 64 + 57 * 4 + 1)
        var byte: UInt8 = 0
        XCTAssertEqual(pread(fd, &byte, 1, offset), 1)
        byte ^= 0x10
        XCTAssertEqual(pwrite(fd, &byte, 1, offset), 1)
        close(fd)
        var out: [Float] = []
        XCTAssertEqual(reader.read(notice, into: &out), .checksumMismatch)
    }

    func testNaNOrInfinityIsNeverHandedOutEvenWithAMatchingChecksum() throws {
        for bad in [Float.nan, .infinity, -.infinity] {
            let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 5, parameterCount: 33)
            defer { writer.close() }
            let reader = try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: runID, layoutHash: 5,
                                                    parameterCount: 33)
            defer { reader.close() }
            var v = values(33, seed: 0)
            v[32] = bad   // in the tail past the 16-lane body
            var out: [Float] = []
            XCTAssertEqual(reader.read(write(writer, v, version: 1), into: &out), .nonFinite, "\(bad)")
            v[32] = 0; v[3] = bad
            XCTAssertEqual(reader.read(write(writer, v, version: 2), into: &out), .nonFinite, "\(bad)")
        }
    }

    func testValuesAboveTheParameterBoundAreRejectedLikeAFullBroadcastsAndTheBoundIsExact() throws {
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 5, parameterCount: 40)
        defer { writer.close() }
        let reader = try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: runID, layoutHash: 5,
                                                parameterCount: 40)
        defer { reader.close() }
        var out: [Float] = []
        var version: UInt64 = 0
        // The plain definition (ValidationContext.validate(WireParameters)): finite and |x| ≤ bound, at every index
        // (body and tail), for special and boundary values.
        let specials: [Float] = [1e6, -1e6, Float(1e6).nextUp, -Float(1e6).nextUp, 2e6, .greatestFiniteMagnitude, -0.0,
                                 .leastNonzeroMagnitude, Float(bitPattern: 0x7FC0_0001), Float(bitPattern: 0xFF80_0000), 0.5]
        for x in specials {
            for at in [0, 15, 16, 39] {
                var v = values(40, seed: 0)
                v[at] = x
                version += 1
                let notice = v.withUnsafeBufferPointer { writer.write($0, version: version, hostIdentity: "h") }
                let plain = x.isFinite && abs(x) <= 1e6
                XCTAssertEqual(reader.read(notice, into: &out, bound: 1e6) == nil, plain, "\(x) at \(at)")
            }
        }
    }

    func testASlotOverwrittenOrBeingWrittenDuringTheCopyIsTornNotInstalled() throws {
        let n = 64
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 5, parameterCount: n)
        defer { writer.close() }
        let reader = try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: runID, layoutHash: 5,
                                                parameterCount: n)
        defer { reader.close() }
        var out: [Float] = []
        let v1 = write(writer, values(n, seed: 1), version: 1)
        _ = write(writer, values(n, seed: 2), version: 2)
        // The learner starts version 3 in v1's slot: mid-write the sequence is odd.
        let slot = writer.beginWrite()
        XCTAssertEqual(UInt32(slot), v1.slot)
        XCTAssertEqual(reader.read(v1, into: &out), .torn)
        // Finished: the slot now holds version 3; the notice of version 1 no longer matches.
        let v3Values = values(n, seed: 3)
        let sum = v3Values.withUnsafeBufferPointer { writer.finishWrite(slot: slot, values: $0, version: 3) }
        XCTAssertEqual(reader.read(v1, into: &out), .versionMismatch)
        var v3 = v1
        v3.version = 3; v3.checksum = sum
        XCTAssertNil(reader.read(v3, into: &out))
        XCTAssertEqual(out, v3Values)
    }

    func testTornCopiesUnderAConcurrentWriterAreAlwaysDetected() throws {
        // A writer thread rewrites the ring as fast as it can; every read the reader accepts must be exactly one
        // version's values (each version's values are all equal to its number).
        let n = 4096
        let writer = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 5, parameterCount: n)
        defer { writer.close() }
        let reader = try ParameterSlotRing.open(directory: dir, fileName: writer.fileName, runID: runID, layoutHash: 5,
                                                parameterCount: n)
        defer { reader.close() }
        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var notices: [ParameterSlotRing.Notice] = []
            let writer: ParameterSlotRing
            init(_ writer: ParameterSlotRing) { self.writer = writer }
        }
        let shared = Shared(writer)
        let done = DispatchSemaphore(value: 0)
        Thread {
            for version in UInt64(1)...3000 {
                let notice = [Float](repeating: Float(version), count: n).withUnsafeBufferPointer {
                    shared.writer.write($0, version: version, hostIdentity: "h")
                }
                shared.lock.lock(); shared.notices.append(notice); shared.lock.unlock()
            }
            done.signal()
        }.start()
        var out: [Float] = []
        var accepted = 0, rejected = 0
        while done.wait(timeout: .now()) == .timedOut {
            shared.lock.lock(); let notice = shared.notices.randomElement(); shared.lock.unlock()
            guard let notice else { continue }
            if let why = reader.read(notice, into: &out) {
                XCTAssertTrue([.torn, .versionMismatch, .checksumMismatch].contains(why), "\(why)")
                rejected += 1
            } else {
                accepted += 1
                XCTAssertEqual(Set(out), [Float(notice.version)], "accepted a torn copy")
            }
        }
        XCTAssertGreaterThan(accepted + rejected, 0)
    }

    func testStaleFilesOfADeadLearnerAreRemovedAndLiveOnesKept() throws {
        // A file named after a pid that does not exist (pid_max is at most 2^22) is stale; our own is kept.
        let stale = "bonfire-params-ring_test-\(4_194_305)-" + String(repeating: "b", count: 32)
        FileManager.default.createFile(atPath: dir + "/" + stale, contents: Data([1]), attributes: [.posixPermissions: 0o600])
        let otherRun = "bonfire-params-other-\(4_194_305)-" + String(repeating: "b", count: 32)
        FileManager.default.createFile(atPath: dir + "/" + otherRun, contents: Data([1]), attributes: [.posixPermissions: 0o600])
        let live = try ParameterSlotRing.create(directory: dir, runID: runID, layoutHash: 0, parameterCount: 4)
        defer { live.close() }
        XCTAssertEqual(ParameterSlotRing.removeStale(directory: dir, runID: runID), [stale])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), [live.fileName, otherRun])
    }

    /// The C body (SSE2 lanes, non-temporal or plain stores) against its Swift twin: same checksum, same verdict,
    /// same bytes, for every tail length, aligned and misaligned destinations, both store kinds, no destination, and
    /// values at, above and beyond the bound (NaN, ±infinity, −0, denormals).
    func testTheFastCopyAndChecksumEqualsItsPlainTwin() {
        var rng = SystemRandomNumberGenerator()
        let specials: [Float] = [.nan, .infinity, -.infinity, -0.0, .leastNonzeroMagnitude, 1e6, -1e6, 1.0000001e6,
                                 .greatestFiniteMagnitude]
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 255, 1024, 4099] {
            for offset in [0, 1, 2, 3, 4] {   // in words: dst alignment 0, 4, 8, 12, 16 bytes past a 64-byte line
                for special in [nil] + specials.map(Optional.some) {
                    var src = (0..<n).map { _ in Float.random(in: -2...2, using: &rng) }
                    if let special, n > 0 { src[Int.random(in: 0..<n, using: &rng)] = special }
                    let bound: Float = [Float(1e6), .greatestFiniteMagnitude].randomElement(using: &rng)!
                    let fastDst = UnsafeMutableRawPointer.allocate(byteCount: (n + 8) * 4, alignment: 64)
                    let plainDst = UnsafeMutableRawPointer.allocate(byteCount: (n + 8) * 4, alignment: 64)
                    defer { fastDst.deallocate(); plainDst.deallocate() }
                    fastDst.initializeMemory(as: UInt8.self, repeating: 0xA5, count: (n + 8) * 4)
                    plainDst.initializeMemory(as: UInt8.self, repeating: 0xA5, count: (n + 8) * 4)
                    src.withUnsafeBytes { s in
                        let base = s.baseAddress ?? UnsafeRawPointer(fastDst)
                        let nonTemporal = Bool.random(using: &rng)
                        let fast = ParameterSlotRing.copyAndChecksum(from: base, to: fastDst + offset * 4, words: n, bound: bound,
                                                                     nonTemporal: nonTemporal)
                        let plain = ParameterSlotRing.copyAndChecksumPlain(from: base, to: plainDst + offset * 4, words: n,
                                                                          bound: bound)
                        let noCopy = ParameterSlotRing.copyAndChecksum(from: base, to: nil, words: n, bound: bound)
                        XCTAssertEqual(fast.checksum, plain.checksum, "n \(n) offset \(offset) special \(String(describing: special))")
                        XCTAssertEqual(fast.withinBound, plain.withinBound, "n \(n) special \(String(describing: special)) bound \(bound)")
                        XCTAssertEqual(noCopy.checksum, plain.checksum)
                        XCTAssertEqual(noCopy.withinBound, plain.withinBound)
                        if let special, special.isNaN || special.isInfinite || special.magnitude > bound, n > 0 {
                            XCTAssertFalse(fast.withinBound, "\(special) above bound \(bound) passed")
                        }
                    }
                    XCTAssertEqual(memcmp(fastDst, plainDst, (n + 8) * 4), 0, "copied bytes differ: n \(n) offset \(offset)")
                }
            }
        }
    }

    func testChecksumChangesWithAnyWordAndWithOrder() {
        var words: [UInt32] = (0..<37).map { UInt32($0) &* 2_654_435_761 }
        let base = words.withUnsafeBytes { ParameterSlotRing.checksum($0) }
        for i in [0, 15, 16, 31, 36] {
            var w = words
            w[i] ^= 1 << UInt32(i % 32)
            XCTAssertNotEqual(w.withUnsafeBytes { ParameterSlotRing.checksum($0) }, base, "word \(i)")
        }
        words.swapAt(0, 16)   // same lane, swapped order
        XCTAssertNotEqual(words.withUnsafeBytes { ParameterSlotRing.checksum($0) }, base)
        XCTAssertNotEqual([UInt32(0)].withUnsafeBytes { ParameterSlotRing.checksum($0) },
                          [UInt32(0), 0].withUnsafeBytes { ParameterSlotRing.checksum($0) }, "length counts")
    }

    func testHostIdentityNamesBootUserAndHostAndDirectoryPrefersDevShm() throws {
        guard let id = ParameterSlotRing.hostIdentity() else { throw XCTSkip("no /proc/sys/kernel/random/boot_id") }
        let parts = id.split(separator: "/")
        XCTAssertEqual(parts.count, 3, id)
        XCTAssertEqual(String(parts[1]), "\(getuid())")
        XCTAssertEqual(ParameterSlotRing.hostIdentity(), id, "stable within a boot")
        if FileManager.default.fileExists(atPath: "/dev/shm") {
            XCTAssertEqual(ParameterSlotRing.directory(fallback: dir), "/dev/shm")
        }
        XCTAssertEqual(ParameterSlotRing.directory(fallback: dir) == dir, !FileManager.default.fileExists(atPath: "/dev/shm"))
    }
}
