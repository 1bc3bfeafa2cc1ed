// The frame `bonfire status --follow` redraws: the StatusReport's lines under a one-line header, each cut to the
// terminal width (no line ever wraps, so redrawing in place never scrolls) and the whole frame cut to its height.
// Pure text: the command owns the terminal (cursor, escapes, signals).
import Foundation

package enum StatusView {
    /// Lines of one frame, each at most `width` characters (≥ 10), at most `height` lines (≥ 3) when given.
    package static func frame(_ report: StatusReport, width: Int, height: Int? = nil, now: Date = Date()) -> [String] {
        let w = max(10, width)
        let clock = ISO8601DateFormatter().string(from: now)
        var lines = ["bonfire status --follow  \(clock)  (Ctrl-C quits)"]
        lines += report.render().split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if report.state == .finished { lines.append("run finished: stopped following") }
        lines = lines.map { fit($0, w) }
        if let height, lines.count > max(3, height) {
            let h = max(3, height)
            lines = Array(lines.prefix(h - 1)) + [fit("… \(lines.count - h + 1) more lines (enlarge the terminal)", w)]
        }
        return lines
    }

    /// `s` cut to `width` characters, with "…" marking a cut; tabs become spaces, control characters are dropped
    /// (role names and paths come from files).
    package static func fit(_ s: String, _ width: Int) -> String {
        let clean = String(s.unicodeScalars.compactMap { c -> Character? in
            if c == "\t" { return " " }
            if c.value < 0x20 || c.value == 0x7F || (0x80..<0xA0).contains(c.value) { return nil }
            return Character(c)
        })
        guard clean.count > width else { return clean }
        return String(clean.prefix(max(0, width - 1))) + "…"
    }
}
