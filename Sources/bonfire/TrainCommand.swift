// `bonfire train`: single-process (no network) BoN-aware fine-tuning of the policy on a verifiable task.
//   bonfire train --algo sft --task math --steps 300 --out runs/sft-math
//   bonfire train --algo bon-rl-v --task math --n 8 --init runs/sft-math/checkpoint.safetensors --out runs/bonrlv
// Prints the resolved config, progress lines (step, loss, reward, samples/s, ETA), writes <out>/checkpoint.safetensors
// and <out>/result.json, and ends with an evaluation table on the test split (pass@N, Bo-N ± standard error).
// The library loop is BonfireAlgorithms/BoNTraining.swift.
import ArgumentParser
import BonfireAlgorithms
import BonfireModel
import Foundation

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Fine-tune the policy with SFT, RL or a BoN-aware algorithm on a task (single process).",
        discussion: "Algorithms: " + BoNTrainingConfig.Algorithm.allCases.map(\.rawValue).joined(separator: ", ")
            + ". N′ = 1 baselines: sft, rl-v, rl-s. See docs/algorithms.md.")

    @Option(help: "Algorithm: sft, bon-sft, rl-v, rl-s, bon-rl-v, bon-rl-s, bon-rlb, bon-rlb-p.")
    var algo: String = "bon-rl-v"
    @Option(help: "Task: math or code.") var task: String = "math"
    @Option(help: "N′: the N the objective assumes; also the samples per prompt per step.") var n: Int = 8
    @Option(help: "Training steps.") var steps: Int = 200
    @Option(help: "Prompts per step.") var promptsPerStep: Int = 8
    @Option(help: "Peak learning rate.") var lr: Float = 1e-4
    @Option(help: "Sampling temperature during training.") var temperature: Float = 1
    @Option(help: "Verifier: oracle, noisy or learned (default: noisy for math, oracle for code).") var verifier: String?
    @Option(help: "Learned verifier checkpoint (with --verifier learned).") var verifierPath: String?
    @Option(help: "Noisy verifier false-positive and false-negative rate.") var noise: Double = 0.2
    @Option(name: .customLong("init"), help: "Initial policy checkpoint (default: a fresh tiny GPT).")
    var initCheckpoint: String?
    @Option(help: "Output directory for checkpoint.safetensors and result.json.") var out: String?
    @Option(help: "Run seed.") var seed: UInt64 = 1
    @Option(help: "First train-split item index.") var startIndex: Int = 0
    @Option(help: "KL coefficient to the initial policy (rl-v, rl-s).") var kl: Double = 0
    @Option(help: "PPO ratio clip ε (rl-v, rl-s; 0 = off).") var ppoClip: Double = 0
    @Option(help: "λ_N rule for bon-sft / variational bon-rl: klMatched or linearised.") var lambdaRule: String = "klMatched"
    @Option(help: "BoN-RL estimator: leaveOneOut (unbiased), nSample, selectedOnly (biased), variational (biased).")
    var estimator: String = "leaveOneOut"
    @Option(help: "Steps between progress lines.") var logEvery: Int = 10
    @Option(help: "Steps between checkpoints (0 = end only).") var checkpointEvery: Int = 0
    @Option(help: "Test prompts in the final evaluation (0 = skip).") var evalPrompts: Int = 64
    @Option(help: "Samples per test prompt in the final evaluation.") var evalSamples: Int = 32
    /// Environment mode: `--env gridworld|keydoor` runs `bonfire train-env` with its defaults and this seed.
    @Option(help: "Train on a multi-step environment (gridworld, keydoor) with actor-critic + V-trace instead of a task; same as `bonfire train-env --env E --seed S` (use that command for its other options).")
    var env: String?

    func run() throws {
        if let env {
            let command = try TrainEnvCommand.parse(["--env", env, "--seed", String(seed)])
            try command.run()
            return
        }
        guard let a = BoNTrainingConfig.Algorithm(rawValue: algo) else {
            throw ValidationError("unknown --algo '\(algo)': choose one of "
                                  + BoNTrainingConfig.Algorithm.allCases.map(\.rawValue).joined(separator: ", "))
        }
        var c = BoNTrainingConfig()
        c.algorithm = a; c.task = task; c.n = n; c.steps = steps; c.promptsPerStep = promptsPerStep
        c.learningRate = lr; c.temperature = temperature; c.seed = seed; c.startIndex = startIndex
        let vname = verifier ?? (task == "code" ? "oracle" : "noisy")
        guard let v = BoNTrainingConfig.VerifierKind(rawValue: vname) else {
            throw ValidationError("unknown --verifier '\(vname)': choose oracle, noisy or learned")
        }
        c.verifier = v; c.verifierPath = verifierPath
        c.noisyFalsePositive = noise; c.noisyFalseNegative = noise
        c.initCheckpoint = initCheckpoint; c.outDir = out
        c.klCoefficient = kl; c.ppoClip = ppoClip
        guard let rule = ExactBoN.LambdaRule(rawValue: lambdaRule) else {
            throw ValidationError("unknown --lambda-rule '\(lambdaRule)': choose klMatched or linearised")
        }
        c.lambdaRule = rule
        guard let est = BoNRL.Config.Estimator(rawValue: estimator) else {
            throw ValidationError("unknown --estimator '\(estimator)': choose "
                                  + BoNRL.Config.Estimator.allCases.map(\.rawValue).joined(separator: ", "))
        }
        c.bonRLEstimator = est
        c.logEvery = logEvery; c.checkpointEvery = checkpointEvery
        c.evalPrompts = evalPrompts; c.evalSamples = evalSamples
        c.evalNList = [1, 2, 4, 8, 16, 32].filter { $0 <= evalSamples }
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
        print("config \(String(decoding: try enc.encode(c), as: UTF8.self))")
        _ = try BoNTraining.run(c) { line in print(line); fflush(nil) }
    }
}
