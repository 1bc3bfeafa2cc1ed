// `bonfire train-verifier`: trains a learned verifier (scalar-head transformer; BCE on labels R plus a within-prompt
// pairwise ranking loss, LearnedVerifier.swift's header says why) and reports on held-out prompts: the pooled AUC, the
// within-prompt AUC (mean over prompts with both labels — what Best-of-N depends on) and the Bo-N accuracy it achieves
// against pass@N (the oracle's Bo-N). Training data: samples of a policy checkpoint labelled with R (--policy); the
// verifier's trunk starts from that policy's (--trunk policy, the default then). With --policy none: the task's
// reference solutions plus corrupted copies labelled with R (a stand-in until a policy exists; stated in the output).
import ArgumentParser
import BonfireMath
import BonfireModel
import BonfireTasks
import Foundation

/// Where the verifier's transformer trunk starts.
enum VerifierTrunk: String, ExpressibleByArgument, CaseIterable {
    /// A copy of the --policy checkpoint's trunk (embeddings, blocks, final LayerNorm); only the scalar head is new.
    case policy
    /// A fresh GPT-2 initialisation of the shape --layers/--dim/--heads.
    case fresh
}

struct TrainVerifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-verifier",
        abstract: "Train a learned verifier on labelled samples; report held-out AUC and Bo-N accuracy.")

    @Option(help: "Task: math or code.")
    var task = "math"
    @Option(help: "Task seed.")
    var taskSeed: UInt64 = 0
    @Option(help: "Policy checkpoint whose samples are labelled, or 'none' (references + corrupted copies).")
    var policy = "none"
    @Option(help: "Training prompts (train split).")
    var prompts = 500
    @Option(help: "Samples per training prompt (policy mode) or corrupted copies per reference (none mode).")
    var samples = 4
    @Option(help: "Held-out prompts (validation split).")
    var heldOutPrompts = 100
    @Option(help: "Sampling temperature for policy samples.")
    var temperature = 1.0
    @Option(help: "Verifier trunk: policy (a copy of --policy's; the default with a policy) or fresh (the default with --policy none).")
    var trunk: VerifierTrunk?
    @Option(help: "Weight of the within-prompt ranking loss added to BCE (0 = BCE only).")
    var rankingWeight: Float = 1
    @Option(help: "Within-prompt ranking loss: pairwise (positive/negative pairs) or listwise (softmax over each prompt's samples).")
    var rankingLoss: VerifierRankingLoss = .pairwise
    @Option(help: "Verifier model (--trunk fresh): layers. Default 2.")
    var layers: Int?
    @Option(help: "Verifier model (--trunk fresh): width. Default 64.")
    var dim: Int?
    @Option(help: "Verifier model (--trunk fresh): heads. Default 4.")
    var heads: Int?
    @Option(help: "Optimiser steps.")
    var steps = 300
    @Option(help: "Batch size.")
    var batchSize = 32
    @Option(help: "Learning rate.")
    var lr: Float = 1e-3
    @Option(help: "Seed.")
    var seed: UInt64 = 0
    @Option(help: "Output file (.safetensors).")
    var out = "verifier.safetensors"

    func run() throws {
        let t: any VerifiableTask
        do { t = try TaskRegistry.make(name: task, seed: taskSeed) } catch { throw ValidationError("--task: \(error)") }
        guard prompts >= 1, heldOutPrompts >= 1, samples >= 1, steps >= 1 else {
            throw ValidationError("--prompts, --held-out-prompts, --samples and --steps must all be ≥ 1")
        }
        guard rankingWeight.isFinite, rankingWeight >= 0 else {
            throw ValidationError("--ranking-weight must be a finite number ≥ 0 (0 = BCE only, 1 = the default), got \(rankingWeight)")
        }
        let trunkKind = trunk ?? (policy == "none" ? .fresh : .policy)
        if trunkKind == .policy && policy == "none" {
            throw ValidationError("--trunk policy needs a policy checkpoint: pass --policy CKPT, or use --trunk fresh")
        }
        if trunkKind == .policy && (layers != nil || dim != nil || heads != nil) {
            throw ValidationError("--layers/--dim/--heads set the shape of a fresh trunk; with --trunk policy the verifier has the policy's shape (drop them, or add --trunk fresh)")
        }
        let (l, d, h) = (layers ?? 2, dim ?? 64, heads ?? 4)
        guard l >= 1, d >= 1, h >= 1, d % h == 0 else {
            throw ValidationError("--layers, --dim, --heads must be ≥ 1 with --dim divisible by --heads, got \(l), \(d), \(h)")
        }
        let trainItems = t.items(split: .train, range: 0..<prompts)
        let heldItems = t.items(split: .validation, range: 0..<heldOutPrompts)
        let train: [VerifierExample], held: [VerifierExample]
        var policyModel: GPT?
        let heldGroupSize: Int
        var source: String
        if policy == "none" {
            source = "reference solutions + \(samples) corrupted copies each (no policy checkpoint), labelled by R"
            train = VerifierData.referenceAndCorrupted(task: t, items: trainItems, corruptionsPerItem: samples, seed: seed)
            held = VerifierData.referenceAndCorrupted(task: t, items: heldItems, corruptionsPerItem: samples, seed: seed &+ 1)
            heldGroupSize = samples + 1
        } else {
            guard FileManager.default.fileExists(atPath: policy) else {
                throw ValidationError("--policy \(policy) does not exist; pass a policy checkpoint or 'none'")
            }
            let loaded = try Checkpoint.load(from: URL(fileURLWithPath: policy))
            guard !loaded.config.scalarHead else {
                throw ValidationError("--policy \(policy) is a verifier (it has a scalar head); pass a policy checkpoint written by 'bonfire train'")
            }
            policyModel = loaded.model
            source = "\(samples) samples per prompt from \(policy) at T=\(temperature), labelled by R"
            train = VerifierData.policySamples(task: t, items: trainItems, model: loaded.model, samplesPerPrompt: samples,
                                               temperature: temperature, seed: seed,
                                               progress: BonfireTasks.Progress("train-verifier: sampling training prompts", total: trainItems.count, unit: "prompts"))
            held = VerifierData.policySamples(task: t, items: heldItems, model: loaded.model, samplesPerPrompt: samples,
                                              temperature: temperature, seed: seed &+ 1,
                                              progress: BonfireTasks.Progress("train-verifier: sampling held-out prompts", total: heldItems.count, unit: "prompts"))
            heldGroupSize = samples
        }
        let pos = train.filter { $0.label >= 0.5 }.count
        print("train-verifier: task \(task); data: \(source)")
        print("train-verifier: \(train.count) training examples (\(pos) with R = 1), \(held.count) held-out")
        if pos == 0 || pos == train.count {
            print("train-verifier: WARNING all training labels are \(pos == 0 ? 0 : 1); the verifier cannot learn to rank. "
                  + "Use a stronger policy, more samples, or --policy none")
        }
        let model: GPT
        if trunkKind == .policy, let policyModel {
            model = LearnedVerifier.makeModel(initialisedFrom: policyModel, seed: seed)
        } else {
            model = LearnedVerifier.makeModel(config: GPTConfig(vocabSize: Tokenizer.vocabSize, contextLength: 64, layers: l,
                                                                heads: h, dim: d, scalarHead: true), seed: seed)
        }
        let c = model.config
        print("train-verifier: trunk \(trunkKind.rawValue) (L\(c.layers) d\(c.dim) h\(c.heads)), loss BCE + \(rankingWeight) × within-prompt \(rankingLoss.rawValue)")
        let verifier = LearnedVerifier(model: model, source: out)
        let tc = VerifierTrainingConfig(steps: steps, batchSize: batchSize, learningRate: lr, rankingWeight: rankingWeight,
                                        rankingLoss: rankingLoss)
        fflush(nil)
        // Rate and ETA on stderr: one line in place on a terminal, a plain line every 10 s in a log.
        let progress = BonfireTasks.Progress("train-verifier", total: steps, unit: "steps")
        var lastLoss: Float = .nan
        let lossName = rankingWeight > 0 ? "loss/bce+\(rankingLoss == .pairwise ? "pair" : "list")" : "loss/bce"
        VerifierTrainer.train(verifier, examples: train, config: tc, seed: seed) { step, loss in
            lastLoss = loss
            progress.update(completed: step + 1, detail: "\(lossName) " + String(format: "%.4f", loss))
        }
        progress.finish(detail: "\(lossName) " + String(format: "%.4f", lastLoss))
        print("trained \(steps) steps, final \(lossName) " + String(format: "%.4f", lastLoss))
        // Held-out AUC and Bo-N over held-out BoN groups (consecutive examples share an item).
        let heldScores = held.map { verifier.scores(item: $0.item, responses: [$0.response])[0] }
        let auc = Estimators.auc(scores: heldScores, labels: held.map { $0.label })
        print("held-out AUC: " + (auc.map { String(format: "%.4f", $0) } ?? "undefined (one class only)"))
        let within = Estimators.withinPromptAUC(scores: heldScores, labels: held.map { $0.label }, groups: held.map { $0.item.id })
        print("held-out within-prompt AUC: " + (within.map {
            String(format: "%.4f ± %.4f (mean over the %d of %d prompts with both labels)", $0.mean, $0.standardError, $0.prompts, heldItems.count)
        } ?? "undefined (no held-out prompt has both a correct and a wrong sample)"))
        var bon: [Int: [Double]] = [:], pass: [Int: [Double]] = [:]
        let ns = [1, 2, 4, 8, 16, 32].filter { $0 <= heldGroupSize }
        var i = 0
        while i + heldGroupSize <= held.count {
            let group = Array(i..<i + heldGroupSize)
            let R = group.map { held[$0].label }, r = group.map { heldScores[$0] }
            for N in ns {
                bon[N, default: []].append(Estimators.bestOfN(scores: r, rewards: R, n: N))
                pass[N, default: []].append(Estimators.passAtK(n: R.count, c: R.filter { $0 >= 0.5 }.count, k: N))
            }
            i += heldGroupSize
        }
        for N in ns {
            let b = Estimators.meanAndStandardError(bon[N]!), p = Estimators.meanAndStandardError(pass[N]!)
            print(String(format: "held-out N=%-3d Bo-N (learned) %.3f±%.3f   pass@N (= oracle Bo-N) %.3f±%.3f",
                         N, b.mean, b.standardError, p.mean, p.standardError))
        }
        try verifier.save(path: out, metadata: ["task": task, "data": source,
                                                "heldout_auc": auc.map { String($0) } ?? "nan",
                                                "heldout_within_prompt_auc": within.map { String($0.mean) } ?? "nan",
                                                "trunk": trunkKind.rawValue, "ranking_weight": String(rankingWeight),
                                                "ranking_loss": rankingLoss.rawValue])
        print("wrote \(out) (use: bonfire eval --verifier learned:\(out))")
    }
}

extension VerifierRankingLoss: ExpressibleByArgument {}
