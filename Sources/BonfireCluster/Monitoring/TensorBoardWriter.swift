// TensorBoard event files written by Bonfire itself (no TensorFlow, no Python at runtime):
//
//   <run.dir>/tensorboard/<role>/events.out.tfevents.<unix seconds>.<host>
//
// one file per role (TensorBoard shows each folder as a run: learner, actor-0, coordinator, eval), opened lazily on
// the role's first record. Every call appends ONE framed record (TFRecord, masked CRC32C; see
// BonfireWire/TensorBoard+Wire.swift) with ONE write(2) on an O_APPEND descriptor, so a killed process leaves at most
// a truncated final record, which readers skip. Steps are policy versions (the same `version` as metrics.jsonl).
//
// Two ways in:
//   - live: the coordinator (which receives every role's metrics) calls `record(role:step:values:)` beside each
//     metrics.jsonl line and `record(eval:)` beside each eval table;
//   - offline: `TensorBoardWriter.export(runDirectory:)` converts an existing metrics.jsonl + eval/ into event files
//     (what `bonfire report --tensorboard` does for runs that predate the live writer).
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the monitoring outputs take a role's scalars and the evaluation tables.
package protocol MetricsSink: AnyObject {
    /// One set of scalars of `role` at `step` (policy version). Non-finite values are kept (TensorBoard shows them).
    func record(role: String, step: Int, values: [String: Double], time: Date) throws
    /// One evaluation table (all temperatures and N).
    func record(eval table: EvalTable) throws
}

/// An operational monitoring error (file, port, config); the message says what to do next.
package struct MonitoringError: Error, CustomStringConvertible, Equatable {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}

package final class TensorBoardWriter: MetricsSink, @unchecked Sendable {
    /// Role folder that receives the evaluation tables.
    package static let evalRole = "eval"

    package let directory: URL
    private let host: String
    private let lock = NSLock()
    private var files: [String: (fd: Int32, url: URL)] = [:]

    /// `runDirectory`/tensorboard is created on the first record.
    package init(runDirectory: URL, host: String = ProcessInfo.processInfo.hostName) {
        self.directory = runDirectory.appendingPathComponent("tensorboard", isDirectory: true)
        self.host = Self.safeName(host.isEmpty ? "localhost" : host)
    }

    deinit { close() }

    /// Closes every file (later records reopen new files).
    package func close() {
        lock.lock(); defer { lock.unlock() }
        for (_, f) in files { Glibc.close(f.fd) }
        files = [:]
    }

    /// The events file of `role`, once something was recorded for it.
    package func fileURL(role: String) -> URL? {
        lock.lock(); defer { lock.unlock() }
        return files[Self.safeName(role)]?.url
    }

    package func record(role: String, step: Int, values: [String: Double], time: Date = Date()) throws {
        guard !values.isEmpty else { return }
        let scalars = values.keys.sorted().map { TensorBoardEvent.Scalar(tag: $0, value: Float(values[$0]!)) }
        try append(role: role, TensorBoardEvent(wallTime: time.timeIntervalSince1970, step: Int64(step), what: .scalars(scalars)))
    }

    /// Tags `eval/T<temperature>/pass@<N>` and `eval/T<temperature>/bo<N>` at step = the table's version, in the
    /// `eval` folder.
    package func record(eval table: EvalTable) throws {
        guard let event = Self.event(eval: table) else { return }
        try append(role: Self.evalRole, event)
    }

    static func event(eval table: EvalTable) -> TensorBoardEvent? {
        guard !table.rows.isEmpty else { return nil }
        var scalars: [TensorBoardEvent.Scalar] = []
        for r in table.rows {
            let t = "T" + Self.compact(r.temperature)
            scalars.append(.init(tag: "eval/\(t)/pass@\(r.n)", value: Float(r.passAtN)))
            scalars.append(.init(tag: "eval/\(t)/bo\(r.n)", value: Float(r.boN)))
        }
        let wall = table.time.isFinite ? table.time : Date().timeIntervalSince1970
        return TensorBoardEvent(wallTime: wall, step: Int64(table.version), what: .scalars(scalars))
    }

    private func append(role: String, _ event: TensorBoardEvent) throws {
        let bytes = event.framed()
        lock.lock(); defer { lock.unlock() }
        let fd = try openFile(role: Self.safeName(role), wallTime: event.wallTime)
        try Self.writeAll(fd.fd, bytes, path: fd.url.path)
    }

    private func openFile(role: String, wallTime: Double) throws -> (fd: Int32, url: URL) {
        if let f = files[role] { return f }
        let dir = directory.appendingPathComponent(role, isDirectory: true)
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw MonitoringError("cannot create \(dir.path) for TensorBoard event files (\(error.localizedDescription)); "
                                  + "check free space and permissions of the run directory")
        }
        let seconds = wallTime.isFinite && wallTime > 0 && wallTime < 1e12 ? Int(wallTime) : Int(Date().timeIntervalSince1970)
        var name = "events.out.tfevents.\(seconds).\(host)"
        var n = 0
        while FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path) {
            n += 1
            name = "events.out.tfevents.\(seconds).\(host).\(getpid()).\(n)"
        }
        let url = dir.appendingPathComponent(name)
        let fd = Glibc.open(url.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw MonitoringError("cannot open \(url.path) for writing: \(String(cString: strerror(errno)))")
        }
        let header = TensorBoardEvent(wallTime: Double(seconds), step: 0, what: .fileVersion(TensorBoardEvent.fileVersionString))
        do { try Self.writeAll(fd, header.framed(), path: url.path) } catch { Glibc.close(fd); throw error }
        files[role] = (fd, url)
        return (fd, url)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw MonitoringError("writing \(path) failed: \(String(cString: strerror(errno))); check free disk space")
            }
            off += n
        }
    }

    /// A role or host name as one safe path component: [A-Za-z0-9._-], anything else → "_", never "." or "..".
    package static func safeName(_ s: String) -> String {
        var out = String(s.unicodeScalars.prefix(64).map { c -> Character in
            (c.isASCII && (CharacterSet.alphanumerics.contains(c) || c == "-" || c == "_" || c == ".")) ? Character(c) : "_"
        })
        if out.isEmpty || out.allSatisfy({ $0 == "." }) { out = "_" + out }
        return out
    }

    /// 1 → "1", 0.5 → "0.5", 0.25 → "0.25".
    static func compact(_ x: Double) -> String {
        guard x.isFinite else { return "\(x)" }
        if x == x.rounded(), abs(x) < 1e9 { return String(Int(x)) }
        return String(format: "%g", x)
    }

    // MARK: Offline export

    /// Writes event files for an existing run directory from metrics.jsonl (malformed lines skipped and counted) and
    /// eval/*.json. Returns (records written, malformed lines). Files go to a fresh set of names beside any existing ones.
    @discardableResult
    package static func export(runDirectory url: URL) throws -> (records: Int, malformed: Int) {
        let dir = try RunDirectory.open(at: url)
        let (records, malformed) = try dir.readMetrics()
        let writer = TensorBoardWriter(runDirectory: url)
        defer { writer.close() }
        var n = 0
        for r in records where !r.values.isEmpty {
            try writer.record(role: r.role, step: r.version, values: r.values,
                              time: Date(timeIntervalSince1970: r.time.isFinite ? r.time : 0))
            n += 1
        }
        for (_, evalURL) in RunDirectory.versionedFiles(in: dir.evalURL, suffix: ".json") {
            guard let data = try? Data(contentsOf: evalURL),
                  let table = try? JSONDecoder().decode(EvalTable.self, from: data) else { continue }
            try writer.record(eval: table)
            n += 1
        }
        return (n, malformed)
    }
}
