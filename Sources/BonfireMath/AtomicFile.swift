// Crash-safe file writes for run files (checkpoints, config.json, eval tables): the bytes go to a temporary file in
// the same directory (".<name>.tmp-<pid>-<random>"), which is fsynced, renamed over the target and then the
// directory is fsynced, so after a crash at any point the target is either the old complete file or the new
// complete file, never a prefix. Temporary files left by a crash start with "." and end in no known suffix, so
// directory listings that look for "v<digits>.safetensors" ignore them (`AtomicFile.removeStaleTemporaries` cleans).
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package struct AtomicFileError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}

#if canImport(Glibc)
private let sysWrite = Glibc.write
#else
private let sysWrite = Darwin.write
#endif

package enum AtomicFile {
    static let marker = ".tmp-"

    /// Writes `data` to `url` atomically and durably (see the file header). Throws with the failing call and errno.
    package static func write(_ data: Data, to url: URL, permissions: mode_t = 0o644) throws {
        let dir = url.deletingLastPathComponent()
        let tmp = dir.appendingPathComponent(".\(url.lastPathComponent)\(marker)\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        func fail(_ what: String) -> AtomicFileError {
            let e = errno
            return AtomicFileError(message: "cannot write \(url.path): \(what) failed: \(String(cString: strerror(e))) (errno \(e)); check free disk space and permissions of \(dir.path)")
        }
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw fail("open(\(tmp.lastPathComponent))") }
        var ok = false
        defer {
            if !ok { unlink(tmp.path) }
        }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws in
                var off = 0
                while off < raw.count {
                    let n = sysWrite(fd, raw.baseAddress! + off, raw.count - off)
                    if n < 0 { if errno == EINTR { continue }; throw fail("write") }
                    off += n
                }
            }
            while fsync(fd) != 0 { if errno != EINTR { throw fail("fsync") } }
        }
        guard rename(tmp.path, url.path) == 0 else { throw fail("rename") }
        ok = true
        syncDirectory(dir)
    }

    /// fsyncs a directory so a rename in it survives a power loss (best effort: some filesystems refuse).
    package static func syncDirectory(_ dir: URL) {
        let dfd = open(dir.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Removes temporaries a crashed writer left in `dir` (names ".<target>.tmp-<pid>-<n>"). Returns what it removed.
    @discardableResult
    package static func removeStaleTemporaries(in dir: URL) -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        var removed: [URL] = []
        for n in names where n.hasPrefix(".") && n.contains(marker) {
            let u = dir.appendingPathComponent(n)
            if (try? FileManager.default.removeItem(at: u)) != nil { removed.append(u) }
        }
        return removed
    }
}

/// `AtomicFile.write(data, to: url)`: for config.json, eval tables and other run files.
package func atomicWrite(data: Data, to url: URL) throws { try AtomicFile.write(data, to: url) }
