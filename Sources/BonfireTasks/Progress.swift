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
// Rate = completed / elapsed since start (stable, honest for steady loops). The clock and the output are injectable
// for tests.
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

    private let output: (String) -> Void
    private let clock: () -> Double
    private let width: () -> Int
    private let start: Double
    private var lastDraw = -Double.infinity
    private var detail = ""

    /// `total` nil or ≤ 0: unknown (no percentage, no ETA). Defaults write to stderr and detect a terminal there.
    package init(_ label: String, total: Int?, unit: String = "steps",
                 isTerminal: Bool = isatty(STDERR_FILENO) == 1,
                 output: @escaping (String) -> Void = { s in FileHandle.standardError.write(Data(s.utf8)) },
                 clock: @escaping () -> Double = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 },
                 width: @escaping () -> Int = Progress.terminalWidth) {
        self.label = label
        self.total = total.flatMap { $0 > 0 ? $0 : nil }
        self.unit = unit
        self.isTerminal = isTerminal
        self.output = output
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
                             elapsed: now - start, detail: detail, final: final)
        if isTerminal {
            let w = max(20, width())
            let cut = line.count >= w ? String(line.prefix(w - 2)) + "…" : line
            output("\r" + cut + "\u{1B}[K" + (final ? "\n" : ""))
        } else {
            output(line + "\n")
        }
    }

    /// "label  120/2000   6.0%  12.3 steps/s  ETA 2m33s  detail" (final: "done in 1m02s" instead of the ETA).
    package static func line(label: String, completed: Int, total: Int?, unit: String, elapsed: Double,
                             detail: String, final: Bool) -> String {
        var s = "\(label)  \(completed)"
        if let total { s += "/\(total)" + String(format: "  %5.1f%%", 100 * Double(completed) / Double(total)) }
        let rate = elapsed > 0 && elapsed.isFinite ? Double(completed) / elapsed : .nan
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
