// Single-process BoN-aware training on a verifiable task: the library loop behind `bonfire train --algo …`.
//
// One step (all algorithms use `promptsPerStep` train-split prompts, taken in order from `startIndex`):
//   sft       demonstrations = (prompt, reference + EOS)                                          → SFT.step
//   bon-sft   demonstrations + M policy samples per prompt scored by the verifier (and the reference's score)
//                                                                                                 → BoNSFT.step
//   rl-*, bon-rl-*, bon-rlb*   N responses per prompt from the current policy (temperature T), verifier scores r and
//             rewards R → BoNBatch → GroupLearner.step (the same BoNBatch actors send in the distributed runtime)
// Progress lines every `logEvery` steps: step, loss, reward/mean (R of samples), score/mean, pass@N in-group,
// samples/s, ETA. Checkpoints to <out>/checkpoint.safetensors every `checkpointEvery` steps and at the end (metadata:
// algo, task, n, step). Final evaluation on the test split with the task's Evaluator (pass@N, Bo-N, maj@N ± s.e.).

import BonfireMath
import BonfireModel
import BonfireTasks
import Foundation

package struct BoNTrainingConfig: Codable, Sendable, Equatable {
    package enum Algorithm: String, Codable, Sendable, CaseIterable {
        case sft, bonSFT = "bon-sft", rlV = "rl-v", rlS = "rl-s", bonRLV = "bon-rl-v", bonRLS = "bon-rl-s"
        case bonRLB = "bon-rlb", bonRLBP = "bon-rlb-p"
    }
    package enum VerifierKind: String, Codable, Sendable, CaseIterable { case oracle, noisy, learned }

    /// Algorithm. Default bon-rl-v.
    package var algorithm: Algorithm = .bonRLV
    /// Task name (math, code). Default math.
    package var task = "math"
    /// N′: the N the BoN objective assumes and the group size sampled per prompt (RL-* use the same group size for
    /// RLOO, so N′ = 1 methods see the same number of samples). Default 8.
    package var n = 8
    /// Training steps. Default 200.
    package var steps = 200
    /// Prompts per step. Default 8.
    package var promptsPerStep = 8
    /// First train-split item index (resume / disjoint runs). Default 0.
    package var startIndex = 0
    /// Peak learning rate (cosine decay to 10%, 5% warmup). Default 1e-4.
    package var learningRate: Float = 1e-4
    /// AdamW weight decay. Default 0.
    package var weightDecay: Float = 0
    /// Sampling temperature for training samples. Default 1.
    package var temperature: Float = 1
    /// Verifier the BoN selection uses (and RL-V/BoN-RL-V train on). Default noisy for math, oracle for code.
    package var verifier: VerifierKind = .noisy
    /// Path of a learned verifier checkpoint (verifier = learned).
    package var verifierPath: String? = nil
    /// Noisy verifier false-positive / false-negative rates. Default 0.2 / 0.2.
    package var noisyFalsePositive = 0.2
    package var noisyFalseNegative = 0.2
    /// Initial policy checkpoint; nil = a fresh GPT (`model`). Default nil.
    package var initCheckpoint: String? = nil
    /// Model config used without an init checkpoint. Default GPTConfig.tiny.
    package var model = GPTConfig.tiny
    /// Output directory (checkpoint, eval.json). nil = none written. Default nil.
    package var outDir: String? = nil
    /// Run seed. Default 1.
    package var seed: UInt64 = 1
    /// Steps between progress lines. Default 10.
    package var logEvery = 10
    /// Steps between checkpoints (0 = only at the end). Default 0.
    package var checkpointEvery = 0
    /// Final evaluation: test prompts (0 = skip), samples per prompt, N list, temperatures.
    package var evalPrompts = 64
    package var evalSamples = 32
    package var evalNList = [1, 4, 8, 16, 32]
    package var evalTemperatures = [1.0]
    /// KL(π‖π_init) coefficient for rl-* (0 = off). Default 0.
    package var klCoefficient: Double = 0
    /// PPO clip for rl-* (0 = off). Default 0.
    package var ppoClip: Double = 0
    /// BoN-SFT λ_N rule. Default klMatched.
    package var lambdaRule: ExactBoN.LambdaRule = .klMatched
    /// BoN-RL estimator. Default leaveOneOut.
    package var bonRLEstimator: BoNRL.Config.Estimator = .leaveOneOut
    /// Gradient-norm clip. Default 1.
    package var maxGradNorm: Float = 1
    package init() {}
}

package struct BoNTrainingResult: Codable, Sendable {
    package var config: BoNTrainingConfig
    package var steps: Int
    package var seconds: Double
    /// Mean sample reward R over the last 10% of steps (sampling algorithms; nil for SFT).
    package var finalMeanReward: Double?
    package var eval: EvalReport?
}

package enum BoNTraining {
    package static func makeVerifier(_ c: BoNTrainingConfig, task: any VerifiableTask) throws -> any Verifier {
        switch c.verifier {
        case .oracle: return OracleVerifier(task: task)
        case .noisy:
            return NoisyVerifier(task: task, falsePositiveRate: c.noisyFalsePositive, falseNegativeRate: c.noisyFalseNegative,
                                 continuous: true, seed: c.seed)
        case .learned:
            guard let p = c.verifierPath else {
                throw TaskError("--verifier learned needs --verifier-path <checkpoint> (train one with `bonfire train-verifier`)")
            }
            return try LearnedVerifier.load(path: p)
        }
    }

    /// Samples N responses for each item and scores them: the BoN groups of one step.
    package static func collect(model: GPT, task: any VerifiableTask, verifier: any Verifier, items: [TaskItem], n: Int,
                                temperature: Float, version: Int, rng: inout RNG) -> BoNBatch {
        let prompts = items.map { (try? Tokenizer.encode($0.prompt)) ?? [] }
        let longest = prompts.map(\.count).max() ?? 0
        let budget = max(1, min(task.maxResponseLength + 1, model.config.contextLength - longest - 1))
        let sc = SamplingConfig(temperature: temperature, maxNewTokens: budget)
        let out = model.sample(prompts: prompts.map { [Tokenizer.bos] + $0 }, samplesPerPrompt: n, config: sc, rng: &rng)
        return BoNBatch(groups: items.indices.map { i in
            let texts = out[i].map { Tokenizer.decode($0.tokens) }
            return BoNGroup(promptTokens: prompts[i], responses: out[i].map(\.tokens),
                            behaviourLogProbs: out[i].map(\.logProbs), behaviourVersion: version,
                            scores: verifier.scores(item: items[i], responses: texts),
                            rewards: texts.map { task.reward(item: items[i], response: $0).reward }, itemID: items[i].id)
        })
    }

    package static func groupLearner(_ c: BoNTrainingConfig) -> (any GroupLearner)? {
        var u = UpdateConfig()
        u.temperature = c.temperature
        u.maxGradNorm = c.maxGradNorm
        switch c.algorithm {
        case .sft, .bonSFT: return nil
        case .rlV, .rlS:
            var r = RL.Config()
            r.reward = c.algorithm == .rlV ? .verifier : .system
            u.ppoClip = c.ppoClip; u.klCoefficient = c.klCoefficient
            r.update = u
            return RL(config: r)
        case .bonRLV, .bonRLS:
            var b = BoNRL.Config()
            b.variant = c.algorithm == .bonRLV ? .verifier : .system
            b.estimator = c.bonRLEstimator; b.lambdaRule = c.lambdaRule; b.update = u
            return BoNRL(config: b)
        case .bonRLB, .bonRLBP:
            var b = c.algorithm == .bonRLBP ? BoNRLB.Config.positiveOnlyDefaults : BoNRLB.Config()
            b.update = u
            return BoNRLB(config: b)
        }
    }

    package static func run(_ c: BoNTrainingConfig, log: (String) -> Void) throws -> BoNTrainingResult {
        guard c.n >= 1, c.steps >= 0, c.promptsPerStep >= 1 else {
            throw TaskError("train: need --n ≥ 1, --steps ≥ 0, --prompts-per-step ≥ 1")
        }
        let task = try TaskRegistry.make(name: c.task, seed: 0)
        let verifier = try makeVerifier(c, task: task)
        let model: GPT
        if let p = c.initCheckpoint {
            guard FileManager.default.fileExists(atPath: p) else {
                throw TaskError("--init \(p) does not exist; train an SFT checkpoint first (`bonfire train --algo sft --out DIR`)")
            }
            model = try Checkpoint.load(from: URL(fileURLWithPath: p)).model
        } else {
            model = GPT(config: c.model, seed: c.seed)
        }
        let reference: GPT? = c.klCoefficient > 0 ? {
            let r = GPT(config: model.config, seed: 0); r.params = model.params; return r
        }() : nil
        var opt = AdamW(learningRate: c.learningRate, weightDecay: c.weightDecay)
        let schedule = LRSchedule(peak: c.learningRate, warmupSteps: max(1, c.steps / 20), totalSteps: c.steps,
                                  minRate: c.learningRate / 10)
        var rng = RNG(seed: c.seed, stream: 0x7472_6169)   // "trai"
        let learner = groupLearner(c)
        let start = Date()
        var samples = 0
        var rewardHistory: [Double] = []
        var lossAcc = 0.0, rAcc = 0.0, sAcc = 0.0, passAcc = 0.0, acc = 0
        if let dir = c.outDir { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        func save(_ step: Int) throws {
            guard let dir = c.outDir else { return }
            try Checkpoint.save(model: model, optimizer: opt, step: step,
                                metadata: ["algo": c.algorithm.rawValue, "task": c.task, "n": "\(c.n)"],
                                to: URL(fileURLWithPath: dir).appendingPathComponent("checkpoint.safetensors"))
        }
        for step in 0..<c.steps {
            let items = (0..<c.promptsPerStep).map { task.item(split: .train, index: c.startIndex + step * c.promptsPerStep + $0) }
            let lr = schedule.rate(at: step)
            var stats = UpdateStats()
            switch c.algorithm {
            case .sft:
                let demos = items.map { Demonstration(promptTokens: (try? Tokenizer.encode($0.prompt)) ?? [],
                                                      response: ((try? Tokenizer.encode($0.reference)) ?? []) + [Tokenizer.eos]) }
                stats = SFT(config: { var s = SFT.Config(); s.update.maxGradNorm = c.maxGradNorm; return s }())
                    .step(demonstrations: demos, model: model, optimizer: &opt, learningRate: lr)
                samples += demos.count
            case .bonSFT:
                var bc = BoNSFT.Config()
                bc.n = c.n; bc.samplesPerPrompt = max(2, c.n); bc.lambdaRule = c.lambdaRule
                bc.update.maxGradNorm = c.maxGradNorm; bc.update.temperature = c.temperature
                let batch = collect(model: model, task: task, verifier: verifier, items: items, n: bc.samplesPerPrompt,
                                    temperature: c.temperature, version: step, rng: &rng)
                let ex = zip(items, batch.groups).map { item, g in
                    BoNSFTExample(demonstration: Demonstration(promptTokens: g.promptTokens,
                                                               response: ((try? Tokenizer.encode(item.reference)) ?? []) + [Tokenizer.eos]),
                                  expertScore: verifier.scores(item: item, responses: [item.reference])[0], samples: g)
                }
                stats = BoNSFT(config: bc).step(examples: ex, model: model, optimizer: &opt, currentVersion: step, learningRate: lr)
                samples += batch.sampleCount
                let R = batch.groups.flatMap(\.rewards), S = batch.groups.flatMap(\.scores)
                rAcc += R.reduce(0, +) / Double(max(1, R.count))
                sAcc += S.reduce(0, +) / Double(max(1, S.count))
                passAcc += Double(batch.groups.filter { $0.rewards.contains { $0 >= 0.5 } }.count) / Double(batch.groups.count)
            default:
                let batch = collect(model: model, task: task, verifier: verifier, items: items, n: c.n,
                                    temperature: c.temperature, version: step, rng: &rng)
                stats = learner!.step(batch: batch, model: model, optimizer: &opt, currentVersion: step,
                                      reference: reference, learningRate: lr)
                samples += batch.sampleCount
                let R = batch.groups.flatMap(\.rewards), S = batch.groups.flatMap(\.scores)
                let meanR = R.reduce(0, +) / Double(max(1, R.count))
                rAcc += meanR; sAcc += S.reduce(0, +) / Double(max(1, S.count))
                passAcc += Double(batch.groups.filter { $0.rewards.contains { $0 >= 0.5 } }.count) / Double(batch.groups.count)
                rewardHistory.append(meanR)
            }
            lossAcc += Double(stats.loss); acc += 1
            if (step + 1) % max(1, c.logEvery) == 0 || step + 1 == c.steps {
                let el = Date().timeIntervalSince(start)
                let eta = el / Double(step + 1) * Double(c.steps - step - 1)
                log(String(format: "step %d/%d  loss %.4f  reward/mean %.3f  score/mean %.3f  pass@%d/in-group %.3f  "
                           + "lr %.2e  throughput/samples_per_s %.1f  ETA %.0fs",
                           step + 1, c.steps, lossAcc / Double(acc), rAcc / Double(acc), sAcc / Double(acc), c.n,
                           passAcc / Double(acc), Double(lr), Double(samples) / max(el, 1e-9), eta))
                lossAcc = 0; rAcc = 0; sAcc = 0; passAcc = 0; acc = 0
            }
            if c.checkpointEvery > 0 && (step + 1) % c.checkpointEvery == 0 { try save(step + 1) }
        }
        try save(c.steps)
        let seconds = Date().timeIntervalSince(start)
        var report: EvalReport? = nil
        if c.evalPrompts > 0 {
            let settings = EvalSettings(samples: c.evalSamples, nList: c.evalNList.filter { $0 <= c.evalSamples },
                                        temperatures: c.evalTemperatures, progress: false, majority: false)
            let items = task.items(split: .test, range: 0..<c.evalPrompts)
            report = try Evaluator(task: task, verifier: verifier, settings: settings)
                .run(model: model, items: items, maxNewTokens: task.maxResponseLength + 1, seed: c.seed,
                     checkpoint: c.outDir)
            log(report!.table())
        }
        let tail = rewardHistory.suffix(max(1, rewardHistory.count / 10))
        let result = BoNTrainingResult(config: c, steps: c.steps, seconds: seconds,
                                       finalMeanReward: tail.isEmpty ? nil : tail.reduce(0, +) / Double(tail.count),
                                       eval: report)
        if let dir = c.outDir {
            let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            try enc.encode(result).write(to: URL(fileURLWithPath: dir).appendingPathComponent("result.json"))
        }
        return result
    }
}
