// `bonfire coordinator | learner | actor --id K`: one process per role, sharing one option group. The same
// commands run on one machine (`bonfire local` starts them for you) and across hosts (Cluster/slurm/*.sbatch);
// only the endpoints in the config differ.
import ArgumentParser
import BonfireCluster
import BonfireWire
import Foundation

/// Options every role (and `bonfire local`) shares: config files and `--set` overrides.
struct ConfigOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp(
        "A JSON override file (see Cluster/ and docs/cluster.md); repeat to layer several, later wins.",
        valueName: "file"))
    var configFiles: [String] = []

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override one config value, e.g. --set learner.maxSteps=50 or --set eval.n=1,2,4 (repeatable).",
        valueName: "key=value"))
    var sets: [String] = []

    /// The resolved config. An empty run id is the run directory's random one (`RunDirectory.sharedRunID`: created
    /// by the first role, kept by later roles and on resume); `freshRunID` starts a new one (a new run in the same
    /// directory). Roles on hosts that do not share the run directory need `--set run.id=…` (the Slurm scripts pass it).
    func load(freshRunID: Bool = false) throws -> RunConfig {
        var config: RunConfig
        do {
            config = try RunConfig.load(overrides: configFiles.map { URL(fileURLWithPath: $0) }, sets: sets)
            try config.validate()
        } catch let e as ConfigError {
            throw ValidationError("config: \(e.message)")
        }
        if config.run.id.isEmpty {
            do { config.run.id = try RunDirectory.sharedRunID(dir: URL(fileURLWithPath: config.run.dir), fresh: freshRunID) }
            catch let e as ConfigError { throw ValidationError("config: \(e.message)") }
        }
        return config
    }
}

/// Runs a role body with the stop-signal handlers installed and a ZeroMQ context; maps failures to exit codes.
func runRole(_ name: String, _ body: (ZMQContext) throws -> Int32) throws {
    StopFlag.install()
    WireMemory.configureForLargeMessages()  // parameter blobs and rollouts are MB-sized: no mmap/trim per message
    let context = try ZMQContext()
    let code: Int32
    do { code = try body(context) } catch let e as ClusterError {
        FileHandle.standardError.write(Data("bonfire \(name): \(e.message)\n".utf8))
        context.shutdown()
        throw ExitCode(2)
    }
    context.shutdown()
    if code != 0 { throw ExitCode(code) }
}

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: registry, liveness, evaluation schedule, run log and metrics.jsonl.")
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let config = try options.load()
        let dir = try RunDirectory.create(at: URL(fileURLWithPath: config.run.dir), config: config)
        roleLog("coordinator: resolved config:\n" + config.resolvedJSON())
        try runRole("coordinator") { try Coordinator(config: config, runDir: dir).run(context: $0) }
    }
}

struct LearnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "learner",
        abstract: "Run the learner: consume rollouts, update the policy, publish versioned parameters, checkpoint.")
    @OptionGroup var options: ConfigOptions
    @Flag(help: "Continue from the newest usable checkpoint in <run.dir>/checkpoints (same parameter version sequence); fails if there is none.")
    var resume = false
    @Flag(help: "Resume when the run directory holds a checkpoint, else start fresh (what `bonfire local` uses to restart a failed learner).")
    var resumeIfAny = false

    func run() throws {
        let config = try options.load()
        let dir = try RunDirectory.create(at: URL(fileURLWithPath: config.run.dir), config: config)
        roleLog("learner: run \(config.run.id), job \(config.jobKind.rawValue)")
        let resuming = resume || (resumeIfAny && !dir.checkpoints().isEmpty)
        try runRole("learner") { try Job.runLearner(config: config, runDir: dir, resume: resuming, context: $0) }
    }
}

struct ActorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "actor",
        abstract: "Run an actor: roll out with the latest parameters (BoN groups or environment episodes) and push them to the learner.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "This actor's id (0, 1, …); a restarted actor reuses its id and re-registers.")
    var id: Int
    @Option(help: "Restart count of this actor id (default: $BONFIRE_INCARNATION, which bonfire local sets, else 0): a restarted actor does not replay its rollouts.")
    var incarnation: Int = Int(ProcessInfo.processInfo.environment["BONFIRE_INCARNATION"] ?? "") ?? 0

    func validate() throws {
        guard id >= 0, id <= 1_000_000 else { throw ValidationError("--id must be in 0…1000000, got \(id)") }
        guard incarnation >= 0 else { throw ValidationError("--incarnation must be ≥ 0, got \(incarnation)") }
    }

    func run() throws {
        let config = try options.load()
        let source: any RolloutSource
        do { source = try Job.source(config: config, actorID: id, incarnation: incarnation) } catch {
            throw ValidationError("actor-\(id): \(error)")
        }
        roleLog("actor-\(id): run \(config.run.id), job \(config.jobKind.rawValue): \(source.detail)")
        try runRole("actor-\(id)") { try ActorRuntime(config: config, id: id, incarnation: incarnation, source: source).run(context: $0) }
    }
}
