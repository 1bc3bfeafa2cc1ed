// `bonfire train-env`: single-process actor-critic (V-trace) training on a multi-step environment.
//   bonfire train-env --env gridworld --seed 1 --seconds 180
// Prints the resolved config, progress lines and a final evaluation against the environment's reference returns;
// `--out result.json` writes the EnvTrainingResult (curve included).
import ArgumentParser
import BonfireAlgorithms
import BonfireTasks
import Foundation

struct TrainEnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-env",
        abstract: "Train an actor-critic with V-trace on a multi-step environment (single process).",
        discussion: """
        gridworld and keydoor use an MLP policy/value network; guess (multi-turn text) uses the transformer policy with its
        scalar head as the value (TextEnvTraining.swift); for guess, --steps counts updates of 32 episodes.
        """)

    @Option(help: "Environment: gridworld, keydoor or guess.")
    var env: String = "gridworld"
    @Option(help: "Run seed.") var seed: UInt64 = 1
    @Option(help: "Stop after this many environment steps (default: per-environment default).") var steps: Int?
    @Option(help: "Stop after this many seconds (0 = no limit).") var seconds: Double = 0
    @Option(help: "Parallel environments.") var numEnvs: Int?
    @Option(help: "Unroll length T.") var unroll: Int?
    @Option(help: "Learner updates between actor refreshes.") var syncInterval: Int?
    @Option(help: "Learning rate.") var lr: Float?
    @Option(help: "Entropy coefficient.") var entropy: Float?
    @Option(help: "Discount γ.") var gamma: Double?
    @Option(help: "Evaluation episodes.") var evalEpisodes: Int?
    @Option(help: "Seconds between progress lines.") var logInterval: Double = 5
    @Option(help: "Write the result (JSON) here.") var out: String?

    func run() throws {
        guard let kind = EnvironmentKind(rawValue: env) else {
            throw ValidationError("unknown --env '\(env)': choose gridworld, keydoor or guess")
        }
        let enc = JSONEncoder()
        if kind == .guess {
            var t = TextEnvTrainingConfig()
            t.seed = seed
            if let steps { t.updates = steps }
            if let lr { t.learningRate = lr }
            if let entropy { t.entropyCoefficient = entropy }
            if let gamma { t.vtrace.gamma = gamma }
            if let evalEpisodes { t.evalEpisodes = evalEpisodes }
            let result = try TextEnvTraining.run(t) { line in print(line); fflush(nil) }
            if let out {
                enc.outputFormatting = [.sortedKeys, .prettyPrinted]
                try enc.encode(result).write(to: URL(fileURLWithPath: out))
            }
            return
        }
        var c = EnvTrainingConfig.defaults(for: kind)
        c.seed = seed
        if let steps { c.totalEnvSteps = steps }
        c.maxSeconds = seconds
        if let numEnvs { c.numEnvs = numEnvs }
        if let unroll { c.unrollLength = unroll }
        if let syncInterval { c.actorSyncInterval = syncInterval }
        if let lr { c.learner.learningRate = lr }
        if let entropy { c.learner.entropyCoefficient = entropy }
        if let gamma { c.learner.vtrace.gamma = gamma }
        if let evalEpisodes { c.evalEpisodes = evalEpisodes }
        c.logIntervalSeconds = logInterval
        enc.outputFormatting = [.sortedKeys]
        print("config \(String(decoding: try enc.encode(c), as: UTF8.self))")
        let result = try EnvTraining.run(c) { line in print(line); fflush(nil) }
        if let out {
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            try enc.encode(result).write(to: URL(fileURLWithPath: out))
        }
    }
}
