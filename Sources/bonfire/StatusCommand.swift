// `bonfire status <run-dir>`: summarises a running or finished run from its run directory (config.json,
// metrics.jsonl, checkpoints/, eval/): state (running / finished / stalled), version, throughput, live actors,
// dropped and stale rollouts, last loss, latest checkpoint and evaluation table.
//   bonfire status runs/latest
//   bonfire status runs/latest --watch 2      # refresh every 2 s until the run finishes or stops
import ArgumentParser
import BonfireCluster
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Summarise a running or finished run from its run directory.")

    @Argument(help: "The run directory (run.dir of the run, e.g. runs/latest).")
    var runDir: String

    @Option(help: "Print the summary again every this many seconds until the run is no longer running (0 = once).")
    var watch: Double = 0

    func run() throws {
        let url = URL(fileURLWithPath: runDir)
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
}
