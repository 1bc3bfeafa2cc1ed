// `bonfire status <run-dir>`: summarises a running or finished run from its run directory (config.json,
// metrics.jsonl, checkpoints/, eval/): state (running / finished / stalled), version, throughput, roles and their
// liveness, dropped and stale rollouts, staleness histogram, last loss, r vs R, latest checkpoint and eval table.
//   bonfire status runs/latest
//   bonfire status runs/latest --follow           # live view redrawn in place until the run finishes or Ctrl-C
//   bonfire status runs/latest --watch 2          # plain summaries every 2 s (logs, no terminal control)
// --follow fits every line to the terminal width (ioctl TIOCGWINSZ, else $COLUMNS, else 80), so it works in narrow
// terminals and over ssh; on a non-terminal it prints plain frames. It restores the cursor on exit.
import ArgumentParser
import BonfireCluster
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Summarise a running or finished run from its run directory (--follow: live view).")

    @Argument(help: "The run directory (run.dir of the run, e.g. runs/latest).")
    var runDir: String

    @Flag(help: "Live view redrawn in place until the run finishes or Ctrl-C.")
    var follow = false

    @Option(help: "Seconds between refreshes of --follow.")
    var interval: Double = 1

    @Option(help: "Print the summary again every this many seconds until the run is no longer running (0 = once).")
    var watch: Double = 0

    func validate() throws {
        guard interval.isFinite, interval >= 0.05, interval <= 3600 else {
            throw ValidationError("--interval must be between 0.05 and 3600 seconds, got \(interval)")
        }
        guard watch.isFinite, watch >= 0, watch <= 86400 else {
            throw ValidationError("--watch must be between 0 and 86400 seconds, got \(watch)")
        }
    }

    func run() throws {
        let url = URL(fileURLWithPath: runDir)
        if follow { return try followRun(url) }
        while true {
            let report: StatusReport
            do { report = try StatusReport.load(runDirectory: url) } catch let e as ConfigError {
                FileHandle.standardError.write(Data("bonfire status: \(e.message)\n".utf8))
                throw ExitCode(1)
            }
            print(report.render())
            guard watch > 0, report.looksAlive else { return }
            print("")
            Thread.sleep(forTimeInterval: watch)
        }
    }

    /// Terminal width and height of stdout (nil when stdout is not a terminal).
    static func terminalSize() -> (width: Int, height: Int)? {
        var ws = winsize()
        guard isatty(STDOUT_FILENO) == 1 else { return nil }
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0 {
            return (Int(ws.ws_col), Int(ws.ws_row > 0 ? ws.ws_row : 24))
        }
        let cols = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 80
        let rows = ProcessInfo.processInfo.environment["LINES"].flatMap(Int.init) ?? 24
        return (max(10, cols), max(3, rows))
    }

    static func write(_ s: String) {
        let bytes = Array(s.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return }
            off += n
        }
    }

    func followRun(_ url: URL) throws {
        do { try StatusReport.diagnose(url) } catch let e as ConfigError {
            FileHandle.standardError.write(Data("bonfire status: \(e.message)\n".utf8))
            throw ExitCode(1)
        }
        StopFlag.install()
        let tty = Self.terminalSize() != nil
        let tail = MetricsTail(url: url.appendingPathComponent("metrics.jsonl"))
        if tty { Self.write("\u{1B}[?25l\u{1B}[2J\u{1B}[H") }   // hide cursor, clear
        defer { if tty { Self.write("\u{1B}[?25h") } }            // always restore the cursor
        var finished = false
        while !StopFlag.isSet {
            tail.poll()
            let report = StatusReport.build(runDirectory: url, records: tail.records,
                                            malformed: tail.malformed + (tail.pendingBytes > 0 ? 1 : 0))
            let size = Self.terminalSize()
            let cols = size?.width ?? ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init) ?? 80
            let lines = StatusView.frame(report, width: cols, height: size.map { $0.height - 1 })
            if tty {
                Self.write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
            } else {
                Self.write(lines.joined(separator: "\n") + "\n\n")
            }
            if report.state == .finished { finished = true; break }
            let until = Date().addingTimeInterval(interval)
            while Date() < until && !StopFlag.isSet { usleep(50_000) }
        }
        Self.write(tty ? "\r\n" : "")
        if !finished { Self.write("bonfire status: stopped following (signal \(StopFlag.signalNumber)); the run itself is not affected\n") }
    }
}
