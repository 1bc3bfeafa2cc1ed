// The learner's algorithm step: turns the BoN groups actors sent into one update of the configured algorithm
// (Sources/BonfireAlgorithms, one file each). BoN-aware algorithms train for N′ = algorithm.trainN: each group of
// sampling.groupSize responses is cut into groupSize/N′ disjoint BoN groups of N′ responses (each an independent
// draw of N′ samples from the same behaviour policy, so the per-group estimators stay unbiased).
import BonfireAlgorithms
import BonfireMath
import BonfireModel
import BonfireTasks
import Foundation

package final class PolicyUpdater {
    let config: RunConfig
    let task: any VerifiableTask
    let verifier: any Verifier
    package var optimizer: AdamW
    package var step = 0
    let learner: (any GroupLearner)?
    let sft: SFT
    let bonSFT: BoNSFT

    package init(config: RunConfig, task: any VerifiableTask, layout: ParameterLayout) throws {
        self.config = config
        self.task = task
        self.verifier = try makeVerifier(name: config.actors.verifier, task: task, seed: config.run.seed)
        self.optimizer = AdamW(learningRate: Float(config.algorithm.learningRate), layout: layout)  // decay only ≥2-D weights
        var update = UpdateConfig()
        update.temperature = Float(config.sampling.temperature)
        update.entropyCoefficient = Float(config.algorithm.entropyCoefficient)
        update.maxGradNorm = Float(config.algorithm.clipGradNorm)
        update.importance = ImportanceConfig(mode: .perSequence, rhoBar: config.learner.importanceClip)
        var sftConfig = SFT.Config()
        sftConfig.update.maxGradNorm = update.maxGradNorm
        self.sft = SFT(config: sftConfig)
        var bs = BoNSFT.Config()
        bs.n = config.algorithm.trainN
        bs.samplesPerPrompt = config.sampling.groupSize
        bs.update = update
        self.bonSFT = BoNSFT(config: bs)
        switch config.algorithm.name {
        case "rl-v", "rl-s":
            var c = RL.Config(); c.reward = config.algorithm.name == "rl-v" ? .verifier : .system; c.update = update
            learner = RL(config: c)
        case "bon-rl-v", "bon-rl-s":
            var c = BoNRL.Config(); c.variant = config.algorithm.name == "bon-rl-v" ? .verifier : .system; c.update = update
            learner = BoNRL(config: c)
        case "bon-rlb":
            var c = BoNRLB.Config(); c.update = update
            learner = BoNRLB(config: c)
        case "bon-rlb-p":
            var c = BoNRLB.Config.positiveOnlyDefaults; c.update = update
            learner = BoNRLB(config: c)
        case "sft", "bon-sft":
            learner = nil
        default:
            throw ClusterError("unknown algorithm.name \"\(config.algorithm.name)\"; use one of sft, bon-sft, rl-v, rl-s, bon-rl-v, bon-rl-s, bon-rlb, bon-rlb-p")
        }
    }

    func demonstration(_ item: TaskItem) throws -> Demonstration {
        Demonstration(promptTokens: try Tokenizer.encode(item.prompt),
                      response: try Tokenizer.encode(item.reference) + [Tokenizer.eos])
    }

    /// SFT on reference solutions of the train split (the starting policy when no init checkpoint is given).
    package func warmup(model: GPT, steps: Int, batchSize: Int = 16, tick: () -> Void = {}, log: (String) -> Void) throws {
        var warm = AdamW(learningRate: Float(config.algorithm.sftWarmupLearningRate), layout: model.layout)
        let started = Date()
        for s in 0..<steps {
            let demos = try (0..<batchSize).map { try demonstration(task.item(split: .train, index: 1_000_000 + s * batchSize + $0)) }
            let st = sft.step(demonstrations: demos, model: model, optimizer: &warm)
            tick()
            if (s + 1) % max(1, steps / 5) == 0 || s + 1 == steps {
                let dt = Date().timeIntervalSince(started)
                log(String(format: "step %d/%d loss %.4f (%.1f steps/s)", s + 1, steps, st.loss, Double(s + 1) / max(dt, 1e-3)))
            }
        }
    }

    /// One update; returns namespaced metrics.
    package func update(model: GPT, groups: [BoNGroup], currentVersion: Int) throws -> [String: Double] {
        let stats: UpdateStats
        switch config.algorithm.name {
        case "sft":
            let demos = try groups.map { try demonstration(task.item(split: .train, index: Int($0.itemID) ?? 0)) }
            stats = sft.step(demonstrations: demos, model: model, optimizer: &optimizer)
        case "bon-sft":
            let examples = try groups.map { g -> BoNSFTExample in
                let item = task.item(split: .train, index: Int(g.itemID) ?? 0)
                let score = verifier.scores(item: item, responses: [item.reference])[0]
                return BoNSFTExample(demonstration: try demonstration(item), expertScore: score, samples: g)
            }
            stats = bonSFT.step(examples: examples, model: model, optimizer: &optimizer, currentVersion: currentVersion)
        default:
            let batch = BoNBatch(groups: groups.flatMap { split($0, size: config.algorithm.trainN) })
            stats = learner!.step(batch: batch, model: model, optimizer: &optimizer, currentVersion: currentVersion)
        }
        step += 1
        let rewards = groups.flatMap(\.rewards)
        let bestOf = groups.map { g in g.rewards.max() ?? 0 }
        return [
            "loss/policy": Double(stats.loss),
            "train/grad_norm": Double(stats.gradNorm),
            "train/entropy": Double(stats.meanEntropy),
            "train/importance_ratio": stats.meanImportanceRatio,
            "train/reward_mean": rewards.reduce(0, +) / Double(max(1, rewards.count)),
            "train/group_pass_rate": bestOf.reduce(0, +) / Double(max(1, bestOf.count)),
            "learner/step": Double(step),
        ]
    }

    /// Disjoint sub-groups of `size` responses (RL with N′ = 1 keeps the whole group for its leave-one-out baseline).
    func split(_ g: BoNGroup, size: Int) -> [BoNGroup] {
        guard learner is BoNRL || learner is BoNRLB, size >= 1, size < g.n else { return [g] }
        return stride(from: 0, to: g.n - size + 1, by: size).map { s in
            let r = s..<(s + size)
            return BoNGroup(promptTokens: g.promptTokens, responses: Array(g.responses[r]),
                            behaviourLogProbs: Array(g.behaviourLogProbs[r]), behaviourVersion: g.behaviourVersion,
                            scores: Array(g.scores[r]), rewards: Array(g.rewards[r]), itemID: g.itemID)
        }
    }
}
