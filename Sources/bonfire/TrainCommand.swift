// `bonfire train` / `bonfire train-env`: the whole job in ONE process — coordinator, learner and actors as threads
// over in-process ZeroMQ endpoints, the same role code `bonfire local` runs as processes (InProcessJob). The flags
// are shorthands for config keys; `--config` / `--set` set anything else. Default schedule: synchronous, so a seed
// gives a bit-reproducible run.
//   bonfire train --algo sft --task math --steps 300 --out runs/sft-math
//   bonfire train --algo bon-rl-v --n 8 --init runs/sft-math/checkpoints/v000300.safetensors --out runs/bonrlv
//   bonfire train --algo bon-rl-s --init ~/models/SmolLM-135M --data problems.jsonl --out runs/smol   (→ runs/smol/hf)
//   bonfire train-env --env keydoor --steps 2000 --out runs/keydoor
import ArgumentParser
import BonfireAlgorithms
import BonfireCluster
import BonfireWire
import Foundation

/// Options both single-process commands share.
struct SingleProcessOptions: ParsableArguments {
    @OptionGroup var config: ConfigOptions
    @Option(help: "Learner updates (learner.maxSteps).") var steps: Int?
    @Option(help: "Run seed (run.seed).") var seed: UInt64?
    @Option(help: "Output run directory (run.dir): config, metrics.jsonl, checkpoints/, eval/.") var out: String?
    @Option(help: "Actor threads (actors.count).") var actors: Int = 1
    @Option(help: "Schedule: sync (bit-reproducible) or async (learner.schedule).") var schedule: String = "sync"
    @Option(help: "Evaluation items per evaluation (eval.prompts; episodes for environments).") var evalPrompts: Int?
    @Option(help: "Checkpoint every K updates (learner.checkpointEvery; 0 = only the final one).") var checkpointEvery: Int?

    func sets() -> [String] {
        var s: [String] = ["actors.count=\(actors)", "learner.schedule=\(schedule)"]
        if let steps { s.append("learner.maxSteps=\(steps)") }
        if let seed { s.append("run.seed=\(seed)") }
        if let out { s.append("run.dir=\(out)") }
        if let evalPrompts { s.append("eval.prompts=\(evalPrompts)") }
        if let checkpointEvery { s.append("learner.checkpointEvery=\(checkpointEvery)") }
        return s
    }

    /// Loads the config (flags first, then --set, which win), creates the run directory and runs the job.
    func run(_ flagSets: [String]) throws {
        var o = config
        o.sets = sets() + flagSets + o.sets
        let c = try o.load()
        try PrometheusServer.checkAvailable(c.monitoring)   // before any role starts (a warm-up can take minutes)
        let dir = try RunDirectory.create(at: URL(fileURLWithPath: c.run.dir), config: c)
        print("bonfire: run \(c.run.id) in one process (\(c.actors.count) actor thread(s), schedule \(c.learner.schedule.rawValue)); run directory \(dir.url.path)")
        print("config " + c.resolvedJSON().replacingOccurrences(of: "\n", with: " "))
        fflush(nil)
        StopFlag.install()
        WireMemory.configureForLargeMessages()
        // Learner steps against learner.maxSteps with rate and ETA, read from the run's metrics.jsonl (stderr).
        let progress = RunProgress(metricsURL: dir.metricsURL, maxSteps: c.learner.maxSteps)
        progress.start()
        let code: Int32
        do { code = try InProcessJob.run(config: c, runDir: dir) } catch { progress.stop(); throw error }
        progress.stop()
        if code != 0 { throw ExitCode(code) }
        // A Hugging Face policy goes back to its own layout: <run.dir>/hf loads with transformers' from_pretrained.
        if !c.model.path.isEmpty, let last = dir.latestCheckpoint() {
            let out = dir.url.appendingPathComponent("hf", isDirectory: true)
            do { try HFExport.write(checkpoint: last.url, modelPath: c.model.path, to: out) } catch {
                throw ValidationError("training finished, but exporting \(last.url.path) to \(out.path) failed: \(error)")
            }
            print("bonfire: fine-tuned weights (version \(last.version)) in Hugging Face layout: \(out.path)")
        }
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune the policy with SFT, RL or a BoN-aware algorithm on a task, in one process.",
        discussion: "Algorithms: " + AlgorithmKind.allCases.map(\.rawValue).joined(separator: ", ")
            + ". N′ = 1 baselines: sft, rl-v, rl-s. Runs the same actor and learner code as `bonfire local`; see docs/algorithms.md.")

    @OptionGroup var common: SingleProcessOptions
    @Option(help: "Algorithm (algorithm.name): \(AlgorithmKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var algo: String?
    @Option(help: "Task (task.name): math, code or jsonl.") var task: String?
    @Option(help: ArgumentHelp("Problems from a JSON Lines file (task.name=jsonl, task.path=FILE; docs/data.md).",
                               valueName: "file"))
    var data: String?
    @Option(help: "N′ (algorithm.trainN); also the responses sampled per prompt (sampling.groupSize; bon-sft samples algorithm.bonSFTSamples, default 4N′ in [8, 32]).") var n: Int?
    @Option(help: "Prompts per update (learner.groupsPerStep).") var promptsPerStep: Int?
    @Option(help: "Learning rate (algorithm.learningRate).") var lr: Double?
    @Option(help: "Sampling temperature (sampling.temperature).") var temperature: Double?
    @Option(help: "Verifier (actors.verifier): oracle, noisy or learned.") var verifier: String?
    @Option(help: "Learned verifier checkpoint (actors.verifierPath).") var verifierPath: String?
    @Option(name: .customLong("init"), help: ArgumentHelp(
        "Start from a Hugging Face model directory (model.path: its weights, config and tokenizer.json; the run ends by " +
        "writing <out>/hf) or from a Bonfire checkpoint file (algorithm.initCheckpoint). Without it a fresh model gets the SFT warm-up.",
        valueName: "dir-or-file"))
    var initPath: String?
    @Option(help: "Initial policy checkpoint (algorithm.initCheckpoint); the same as --init with a file.")
    var initCheckpoint: String?
    @Option(help: "SFT warm-up steps of a fresh model (algorithm.sftWarmupSteps).") var warmup: Int?
    @Option(help: "k3 KL coefficient to the starting policy for rl-* (algorithm.klCoefficient).") var kl: Double?
    @Option(help: "PPO ratio clip ε for rl-* (algorithm.ppoClip; 0 = off).") var ppoClip: Double?
    @Option(help: "λ_N rule (algorithm.lambdaRule): klMatched or linearised.") var lambdaRule: String?
    @Option(help: "BoN-RL estimator (algorithm.bonRLEstimator): leaveOneOut, nSample, selectedOnly, variational.")
    var estimator: String?

    func run() throws {
        var s: [String] = []
        if let algo { s.append("algorithm.name=\(algo)") }
        if let task { s.append("task.name=\(task)") }
        if let data { s += ["task.name=jsonl", "task.path=\(data)"] }
        if let n { s += ["algorithm.trainN=\(n)", "sampling.groupSize=\(max(n, 2))"] }
        if let promptsPerStep { s.append("learner.groupsPerStep=\(promptsPerStep)") }
        if let lr { s.append("algorithm.learningRate=\(lr)") }
        if let temperature { s.append("sampling.temperature=\(temperature)") }
        if let verifier { s.append("actors.verifier=\(verifier)") }
        if let verifierPath { s.append("actors.verifierPath=\(verifierPath)") }
        if let initCheckpoint { s.append("algorithm.initCheckpoint=\(initCheckpoint)") }
        if let initPath {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: initPath, isDirectory: &isDir) else {
                throw ValidationError("--init \(initPath): no such file or directory; give a Hugging Face model directory " +
                                      "(config.json, model.safetensors, tokenizer.json) or a Bonfire checkpoint file")
            }
            s.append(isDir.boolValue ? "model.path=\(initPath)" : "algorithm.initCheckpoint=\(initPath)")
        }
        if let warmup { s.append("algorithm.sftWarmupSteps=\(warmup)") }
        if let kl { s.append("algorithm.klCoefficient=\(kl)") }
        if let ppoClip { s.append("algorithm.ppoClip=\(ppoClip)") }
        if let lambdaRule { s.append("algorithm.lambdaRule=\(lambdaRule)") }
        if let estimator { s.append("algorithm.bonRLEstimator=\(estimator)") }
        try common.run(s)
    }
}

struct TrainEnvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-env",
        abstract: "Train an actor-critic with V-trace on a multi-step environment, in one process.",
        discussion: """
        gridworld and keydoor use an MLP policy/value network; guess (multi-turn text) uses the transformer policy with its
        scalar head as the value. The same actor and learner code as `bonfire local --set env.name=E`.
        """)

    @OptionGroup var common: SingleProcessOptions
    @Option(help: "Environment (env.name): gridworld, keydoor or guess.") var env: String = "gridworld"
    @Option(help: "Learning rate (env.learningRate).") var lr: Double?
    @Option(help: "Entropy coefficient (env.entropyCoefficient).") var entropy: Double?
    @Option(help: "Discount γ (env.gamma; 0 = the environment's default).") var gamma: Double?

    func run() throws {
        var s = ["env.name=\(env)"]
        if let lr { s.append("env.learningRate=\(lr)") }
        if let entropy { s.append("env.entropyCoefficient=\(entropy)") }
        if let gamma { s.append("env.gamma=\(gamma)") }
        try common.run(s)
    }
}
