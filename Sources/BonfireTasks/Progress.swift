// Progress with rate and ETA for long commands (SFT warm-up, train, eval, train-verifier, reproduce):
//
//   on a terminal:  one line redrawn in place with "\r" (cut to the terminal width so it never wraps)
//       sft warm-up  120/2000   6.0%  12.3 steps/s  ETA 2m33s  loss 0.412
//   in a log (stderr not a terminal): a plain line every `logInterval` seconds, plus the final line
//
//   let p = Progress("sft warm-up", total: steps, unit: "steps")
//   for s in 0..<steps { …; p.advance(detail: String(format: "loss %.3f", loss)) }
//   p.finish()
//
// Rate = (completed − initial) / elapsed since start (stable, honest for steady loops; `initial` is where a resumed
// job started). The clock and the output are injectable for tests.
//
// Log lines and the progress line share one terminal: while a progress line is on screen, `TerminalLine.log` (every
// role's log line goes through it) erases it, writes the log line, and redraws it below, so the terminal shows the
// log scrolling above a single progress line instead of both tangled on one row.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class Progress {
    package let label: String
    package let total: Int?
    package let unit: String
    package let isTerminal: Bool
    /// Seconds between redraws on a terminal / between plain lines in a log.
    package var terminalInterval: Double = 0.2
    package var logInterval: Double = 10
    package private(set) var completed = 0
    package private(set) var finished = false
    /// Completed units when the progress began (a resumed job); the rate counts only what was done since.
    package let initial: Int

    private let output: (String) -> Void
    /// Writing to the process's stderr (default output): terminal lines are registered with `TerminalLine`.
    private let sharesTerminal: Bool
    private let clock: () -> Double
    private let width: () -> Int
    private let start: Double
    private var lastDraw = -Double.infinity
    private var detail = ""

    /// `total` nil or ≤ 0: unknown (no percentage, no ETA). `initial` (clamped to ≥ 0): units already done when the
    /// progress begins. Without `output`, writes to stderr and detects a terminal there.
    package init(_ label: String, total: Int?, unit: String = "steps", initial: Int = 0,
                 isTerminal: Bool = isatty(STDERR_FILENO) == 1,
                 output: ((String) -> Void)? = nil,
                 clock: @escaping () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 },
                 width: @escaping () -> Int = Progress.terminalWidth) {
        self.label = label
        self.total = total.flatMap { $0 > 0 ? $0 : nil }
        self.unit = unit
        self.initial = max(0, initial)
        self.completed = self.initial
        self.isTerminal = isTerminal
        self.sharesTerminal = output == nil
        self.output = output ?? { TerminalLine.writeStderr($0) }
        self.clock = clock
        self.width = width
        self.start = clock()
    }

    /// Adds `n` (≥ 0) completed units; redraws when the interval has passed.
    package func advance(by n: Int = 1, detail: String? = nil) {
        precondition(n >= 0, "Progress.advance: n must be ≥ 0, got \(n)")
        update(completed: completed.addingReportingOverflow(n).overflow ? Int.max : completed + n, detail: detail)
    }

    /// Sets the completed count (never moves backwards).
    package func update(completed c: Int, detail: String? = nil) {
        guard !finished else { return }
        completed = max(completed, c)
        if let detail { self.detail = detail }
        let now = clock()
        if now - lastDraw >= (isTerminal ? terminalInterval : logInterval) {
            lastDraw = now
            draw(now, final: false)
        }
    }

    /// Draws the final line (and ends the terminal line). Idempotent.
    package func finish(detail: String? = nil) {
        guard !finished else { return }
        if let detail { self.detail = detail }
        draw(clock(), final: true)
        finished = true
    }

    private func draw(_ now: Double, final: Bool) {
        let line = Self.line(label: label, completed: completed, total: total, unit: unit,
                             elapsed: now - start, detail: detail, final: final, initial: initial)
        if isTerminal {
            let w = max(20, width())
            let cut = line.count >= w ? String(line.prefix(w - 2)) + "…" : line
            if sharesTerminal {
                TerminalLine.draw(cut, final: final)
            } else {
                output("\r" + cut + "\u{1B}[K" + (final ? "\n" : ""))
            }
        } else {
            output(line + "\n")
        }
    }

    /// "label  120/2000   6.0%  12.3 steps/s  ETA 2m33s  detail" (final: "done in 1m02s" instead of the ETA).
    package static func line(label: String, completed: Int, total: Int?, unit: String, elapsed: Double,
                             detail: String, final: Bool, initial: Int = 0) -> String {
        var s = "\(label)  \(completed)"
        if let total { s += "/\(total)" + String(format: "  %5.1f%%", 100 * Double(completed) / Double(total)) }
        let done = Double(completed) - Double(min(initial, completed))
        let rate = elapsed > 0 && elapsed.isFinite ? done / elapsed : .nan
        s += rate.isFinite ? "  " + formatRate(rate) + " \(unit)/s" : "  – \(unit)/s"
        if final {
            s += "  done in " + duration(elapsed)
        } else if let total, rate.isFinite, rate > 0 {
            s += "  ETA " + duration(Double(max(0, total - completed)) / rate)
        } else if total != nil {
            s += "  ETA –"
        }
        if !detail.isEmpty { s += "  " + detail }
        return s
    }

    static func formatRate(_ r: Double) -> String {
        r >= 100 ? String(format: "%.0f", r) : r >= 10 ? String(format: "%.1f", r) : String(format: "%.2f", r)
    }

    /// 42s, 2m33s, 1h05m, > 99h.
    package static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "–" }
        if seconds >= 99 * 3600 { return "> 99h" }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    /// Width of the terminal on stderr (ioctl), else $COLUMNS, else 80.
    package static func terminalWidth() -> Int {
        var ws = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 { return Int(ws.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 80
    }
}


/// The one progress line a process shows on its terminal (stderr), and the log lines written around it.
package enum TerminalLine {
    private static let lock = NSLock()
    /// The progress line on screen now (already cut to the width), nil when none.
    nonisolated(unsafe) private static var active: String?

    /// Draws `line` in place on stderr (`final`: ends it with a newline; it is no longer redrawn).
    static func draw(_ line: String, final: Bool) {
        lock.lock(); defer { lock.unlock() }
        active = final ? nil : line
        writeAll(STDERR_FILENO, "\r" + line + "\u{1B}[K" + (final ? "\n" : ""))
    }

    /// Writes a whole log line (newline included) to `fd`; if a progress line is on the same terminal, it is erased
    /// first and redrawn after, so the log scrolls above it.
    package static func log(_ text: String, fd: Int32 = STDOUT_FILENO) {
        lock.lock(); defer { lock.unlock() }
        guard let line = active, isatty(fd) == 1 else { writeAll(fd, text); return }
        writeAll(STDERR_FILENO, "\r\u{1B}[K")
        writeAll(fd, text)
        writeAll(STDERR_FILENO, "\r" + line + "\u{1B}[K")
    }

    /// Whether a progress line is on screen (tests, diagnostics).
    package static var isActive: Bool { lock.lock(); defer { lock.unlock() }; return active != nil }

    static func writeStderr(_ s: String) {
        lock.lock(); defer { lock.unlock() }
        writeAll(STDERR_FILENO, s)
    }

    /// write(2) until done: EINTR retried, other errors (a closed descriptor) end the write without trapping.
    private static func writeAll(_ fd: Int32, _ s: String) {
        let bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return }
            if n == 0 { return }
            off += n
        }
    }
}
