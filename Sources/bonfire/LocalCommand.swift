// `bonfire local`: the whole job on this machine as separate OS processes (coordinator, learner, K actors) over
// tcp://127.0.0.1, with their log lines prefixed by role. Ctrl-C stops every child (SIGTERM, then SIGKILL after a
// grace period); the exit status is non-zero if a role failed.
import ArgumentParser
import BonfireCluster
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct LocalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Run a whole job on this machine as separate processes (default: math task, BoN-RL-S, tiny model).",
        discussion: """
        With no arguments this runs the built-in default job (RunConfig defaults; see docs/cluster.md) and writes
        the run directory runs/latest (config.json, metrics.jsonl, checkpoints/, eval/, logs/). Watch it with
        `bonfire status runs/latest`. Ports: the defaults 5555–5558; if one is busy, free ports are chosen and printed.
        """)
    @OptionGroup var options: ConfigOptions
    @Option(help: "Number of actor processes (overrides actors.count).")
    var actors: Int?
    @Flag(help: "Resume the learner from the latest checkpoint in the run directory.")
    var resume = false
    @Flag(help: "Fail instead of choosing other ports when a configured port is busy.")
    var strictPorts = false

    func run() throws {
        var config = try options.load(freshRunID: !resume)
        if let actors {
            guard actors >= 1 else { throw ValidationError("--actors must be ≥ 1, got \(actors)") }
            config.actors.count = actors
        }
        let ports = [config.endpoints.coordinatorPort, config.endpoints.rolloutPort,
                     config.endpoints.paramsPort, config.endpoints.paramsRequestPort]
        if let busy = ports.first(where: { !portIsFree($0) }) {
            if strictPorts {
                throw ValidationError("port \(busy) on 127.0.0.1 is busy (another run?); stop it or set endpoints.*Port")
            }
            let fresh = freePorts(4)
            (config.endpoints.coordinatorPort, config.endpoints.rolloutPort,
             config.endpoints.paramsPort, config.endpoints.paramsRequestPort) = (fresh[0], fresh[1], fresh[2], fresh[3])
            say("bonfire local: port \(busy) is busy; using ports \(fresh.map(String.init).joined(separator: ", ")) instead")
        }
        // A busy Prometheus port can never succeed: say so now instead of restarting the coordinator forever.
        try PrometheusServer.checkAvailable(config.monitoring)
        let dir = try RunDirectory.create(at: URL(fileURLWithPath: config.run.dir), config: config)
        let configPath = dir.configURL.path
        let exe = currentExecutable()
        say("bonfire local: run \(config.run.id): coordinator, learner, \(config.actors.count) actors; " +
              "run directory \(dir.url.path) (watch: bonfire status \(dir.url.path))")
        // Every role is restarted when it fails (actors: their work moves to the live ones meanwhile; the learner
        // resumes from its newest checkpoint; the coordinator's peers re-register), with a doubling backoff.
        let a = config.actors
        let policy = RestartPolicy(initialDelayMs: a.restartInitialMs, maxDelayMs: a.restartMaxMs)
        var learnerPolicy = policy
        learnerPolicy.extraArguments = ["--resume-if-any"]
        var children = [
            ChildSpec(name: "coordinator", executable: exe, arguments: ["coordinator", "--config", configPath],
                      endsJob: true, restart: policy),
            ChildSpec(name: "learner", executable: exe, arguments: ["learner", "--config", configPath] + (resume ? ["--resume"] : []),
                      restart: learnerPolicy),
        ]
        for k in 0..<config.actors.count {
            children.append(ChildSpec(name: "actor-\(k)", executable: exe,
                                      arguments: ["actor", "--id", String(k), "--config", configPath], required: false,
                                      restart: policy))
        }
        let supervisor = Supervisor(children: children, logDirectory: dir.logsURL)
        let code = supervisor.run()
        // A learner that was killed leaves its shared-memory parameter ring behind; every role has exited now.
        let removed = ParameterSlotRing.removeStale(directory: ParameterSlotRing.directory(fallback: config.run.dir),
                                                    runID: config.run.id, allPIDs: true)
        if !removed.isEmpty { say("bonfire local: removed \(removed.count) shared-memory parameter file(s) a stopped learner left") }
        if code != 0 { throw ExitCode(code) }
    }
}

/// Unbuffered line on stdout (children's prefixed lines go to the same stream).
func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

/// This executable's path (children are the same binary with a role subcommand).
func currentExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
