// Incremental reader of metrics.jsonl for `bonfire status --follow`: each `poll()` reads only the bytes appended
// since the last call, parses complete lines, keeps a partial last line for later (a role may be mid-write), and
// counts malformed lines. A file that shrank (replaced or truncated) is read again from the start.
import Foundation

package final class MetricsTail {
    package let url: URL
    package private(set) var records: [MetricsRecord] = []
    package private(set) var malformed = 0
    private var offset: UInt64 = 0
    private var partial: [UInt8] = []
    /// Bytes read per poll at most (a huge file is caught up over several polls).
    package var maxBytesPerPoll = 64 << 20
    /// Keep every record in `records` (false: `poll()` only returns the new ones; memory stays flat on long runs).
    package var keepsRecords = true

    package init(url: URL) { self.url = url }

    /// Starts after what the file holds now (a reused run directory's earlier lines are not read).
    package func skipToEnd() {
        guard let h = try? FileHandle(forReadingFrom: url) else { return }
        defer { try? h.close() }
        offset = (try? h.seekToEnd()) ?? 0
        partial = []
    }

    /// Reads what was appended; returns the new records.
    @discardableResult
    package func poll() -> [MetricsRecord] {
        guard let h = try? FileHandle(forReadingFrom: url) else { return [] }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        if size < offset { offset = 0; partial = []; records = []; malformed = 0 }
        guard size > offset else { return [] }
        try? h.seek(toOffset: offset)
        let data = (try? h.read(upToCount: Int(min(size - offset, UInt64(maxBytesPerPoll))))) ?? nil
        guard let data, !data.isEmpty else { return [] }
        offset += UInt64(data.count)
        var bytes = partial + [UInt8](data)
        var fresh: [MetricsRecord] = []
        var start = 0
        for i in bytes.indices where bytes[i] == 10 {
            let line = bytes[start..<i]
            start = i + 1
            if line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
            if let r = MetricsRecord(jsonLine: Substring(String(decoding: line, as: UTF8.self))) { fresh.append(r) } else { malformed += 1 }
        }
        bytes.removeFirst(start)
        partial = bytes
        if partial.count > 1 << 20 { malformed += 1; partial = [] }   // a "line" of > 1 MiB is not ours
        if keepsRecords { records += fresh }
        return fresh
    }

    /// Bytes of an unfinished last line (no newline yet).
    package var pendingBytes: Int { partial.count }
}
