// `bonfire report <run-dir>`: one self-contained HTML page (inline SVG, no network fetches) with learning curves,
// pass@N / Bo-N against N and temperature, per-actor throughput, staleness, r vs R and the resolved config.
//   bonfire report runs/latest                       # writes runs/latest/report.html
//   bonfire report runs/latest --output /tmp/r.html
//   bonfire report runs/latest --tensorboard         # also converts metrics.jsonl + eval/ into TensorBoard files
//   bash Scripts/render-report.sh runs/latest/report.html out.png   # headless Chromium screenshot
import ArgumentParser
import BonfireCluster
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML report (inline SVG charts) of a run from its run directory.")

    @Argument(help: "The run directory (run.dir of the run, e.g. runs/latest).")
    var runDir: String

    @Option(help: "Where to write the page (default: <run-dir>/report.html).")
    var output: String?

    @Flag(help: "Also write TensorBoard event files under <run-dir>/tensorboard/ from metrics.jsonl and eval/.")
    var tensorboard = false

    func run() throws {
        let url = URL(fileURLWithPath: runDir)
        do {
            let out = try RunReport.write(runDirectory: url, to: output.map { URL(fileURLWithPath: $0) })
            print("bonfire report: wrote \(out.path)")
            if tensorboard {
                let (n, malformed) = try TensorBoardWriter.export(runDirectory: url)
                print("bonfire report: wrote \(n) TensorBoard records under \(url.appendingPathComponent("tensorboard").path)"
                      + (malformed > 0 ? " (\(malformed) malformed metrics lines skipped)" : "")
                      + "; view with: tensorboard --logdir \(url.appendingPathComponent("tensorboard").path)")
            }
        } catch let e as ConfigError {
            FileHandle.standardError.write(Data("bonfire report: \(e.message)\n".utf8))
            throw ExitCode(1)
        } catch let e as MonitoringError {
            FileHandle.standardError.write(Data("bonfire report: \(e.message)\n".utf8))
            throw ExitCode(1)
        }
    }
}
