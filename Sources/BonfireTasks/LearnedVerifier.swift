// Learned verifier: a transformer with a scalar head (GPTConfig.scalarHead) that scores (prompt, response).
//
// Input: [BOS] + prompt + response + [EOS] (characters outside the vocabulary dropped; truncated to the context,
// keeping EOS last) — the policy's own sequence format. The head reads the final position: logit s(x, y); the verifier
// score is r = σ(s). Labels always come from the task's R; the verifier never sees R at scoring time, so it is
// imperfect by design (what RL against a verifier can hack).
//
// Objective (`VerifierTrainingConfig.rankingWeight` = w):
//     L = BCE + w · PAIR,
//     BCE  = Σ_b c_b [softplus(s_b) − R_b s_b] / Σ_b c_b          (class-balanced: c = #neg/#pos on positives, else 1)
//     PAIR = (1/P) Σ_{prompts} Σ_{i: R=1, j: R=0, same prompt} softplus(s_j − s_i)   (P = number of such pairs)
//     or, with `rankingLoss = .listwise`, LIST = (1/G) Σ_{prompts with both labels} −log Σ_{i: R=1} softmax_g(s)_i
// with batches of whole prompt groups (every sample of a prompt in the same batch) when w > 0.
// Why the pairwise term (issue 13): Best-of-N only ever compares responses *to the same prompt*, but BCE on pooled
// samples is minimised mostly by predicting the prompt's difficulty. The first verifier (BCE only, fresh L2 d64 trunk,
// 4 samples per prompt) had pooled held-out AUC 0.93 and a within-prompt AUC below ½ at the top: its Bo-N fell with N.
// PAIR has zero gradient along any function of the prompt alone (s_i − s_j cancels it), so every bit of its signal is
// about ranking within a prompt — the quantity Bo-N needs (a Bradley–Terry / RankNet loss, as in reward-model training
// on preference pairs). BCE stays in the objective so that σ(s) remains a usable absolute reward for RL-V's mean-score
// signal (PAIR alone leaves the per-prompt offset free).
// Why a policy-initialised trunk (`makeModel(initialisedFrom:)`, `bonfire train-verifier --trunk policy`, its default
// with a policy): deciding which of two answers to "17*3-5=" is right takes arithmetic, which a fresh 2-layer trunk
// cannot learn from a few thousand labels; the SFT policy's trunk already computes it (it produces the right answer a
// third of the time), so the verifier starts from those features and learns only the head and a correction — the
// standard reward-model recipe (RLHF reward models start from the SFT model).
// Within-prompt quality: `Estimators.withinPromptAUC` (mean over prompts that have both labels of the per-prompt AUC),
// reported by `bonfire train-verifier` next to the pooled AUC and the held-out Bo-N curve against pass@N.
//
// Training data without a policy (`VerifierData.referenceAndCorrupted`): each item's reference solution plus corrupted
// copies (a digit changed, an operator swapped, the final answer shifted, the tail cut), each labelled by R.

import BonfireMath
import BonfireModel
import Foundation

package final class LearnedVerifier: Verifier {
    package let model: GPT
    package let source: String

    package init(model: GPT, source: String = "memory") {
        precondition(model.config.scalarHead, "LearnedVerifier: model must have scalarHead = true")
        self.model = model
        self.source = source
    }

    package var name: String { "learned:\(source)" }

    /// A fresh verifier model (small by default: L2 d64 h4 ctx64).
    package static func makeModel(config: GPTConfig = GPTConfig(layers: 2, heads: 4, dim: 64, scalarHead: true),
                                  seed: UInt64) -> GPT {
        var c = config
        c.scalarHead = true
        return GPT(config: c, seed: seed)
    }

    /// A verifier whose trunk (embeddings, blocks, final LayerNorm) is a copy of `policy`'s; the scalar head is fresh
    /// (GPT-2 initialisation with `seed`). The policy must be a GPT without a scalar head.
    package static func makeModel(initialisedFrom policy: GPT, seed: UInt64) -> GPT {
        precondition(!policy.config.scalarHead, "LearnedVerifier.makeModel(initialisedFrom:): the policy already has a scalar head")
        var c = policy.config
        c.scalarHead = true
        let model = GPT(config: c, seed: seed)
        for entry in policy.layout.entries {
            guard let target = model.layout.entry(named: entry.name) else { continue }
            precondition(target.count == entry.count, "LearnedVerifier: \(entry.name) has \(entry.count) values in the policy, \(target.count) in the verifier")
            for k in 0..<entry.count { model.params[target.offset + k] = policy.params[entry.offset + k] }
        }
        return model
    }

    package static func load(path: String) throws -> LearnedVerifier {
        let url = URL(fileURLWithPath: path)
        guard FileManager.default.fileExists(atPath: path) else {
            throw TaskError("learned verifier \(path) does not exist; train one with `bonfire train-verifier --out \(path)`")
        }
        let loaded = try Checkpoint.load(from: url)
        guard loaded.config.scalarHead else {
            throw TaskError("\(path) is a policy checkpoint without a scalar head, not a verifier; "
                            + "train one with `bonfire train-verifier`")
        }
        return LearnedVerifier(model: loaded.model, source: path)
    }

    package func save(path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["kind"] = "verifier"
        try Checkpoint.save(model: model, optimizer: nil, step: 0, metadata: meta, to: URL(fileURLWithPath: path))
    }

    package static func sequence(prompt: String, response: String, contextLength: Int) -> [Int] {
        let p = (try? Tokenizer.encode(String(prompt.filter { Tokenizer.canEncode(String($0)) }))) ?? []
        let r = (try? Tokenizer.encode(String(response.filter { Tokenizer.canEncode(String($0)) }))) ?? []
        var seq = [Tokenizer.bos] + p + r
        if seq.count > contextLength - 1 { seq = Array(seq.prefix(contextLength - 1)) }
        return seq + [Tokenizer.eos]
    }

    /// Raw logits s(x, y), batched.
    package func logits(prompts: [String], responses: [String], batchSize: Int = 64) -> [Float] {
        precondition(prompts.count == responses.count, "LearnedVerifier.logits: \(prompts.count) prompts vs \(responses.count) responses")
        let seqs = zip(prompts, responses).map {
            LearnedVerifier.sequence(prompt: $0, response: $1, contextLength: model.config.contextLength)
        }
        var out: [Float] = []
        out.reserveCapacity(seqs.count)
        var i = 0
        while i < seqs.count {
            out += model.scalarForward(Array(seqs[i..<min(seqs.count, i + batchSize)]))
            i += batchSize
        }
        return out
    }

    package func scores(item: TaskItem, responses: [String]) -> [Double] {
        if responses.isEmpty { return [] }
        return logits(prompts: responses.map { _ in item.prompt }, responses: responses).map { 1 / (1 + exp(-Double($0))) }
    }
}

/// One labelled example for verifier training.
package struct VerifierExample: Sendable, Codable, Equatable {
    package var item: TaskItem
    package var response: String
    package var label: Double
    package init(item: TaskItem, response: String, label: Double) {
        self.item = item; self.response = response; self.label = label
    }
}

package enum VerifierData {
    /// Reference solutions and corrupted copies, labelled by the task's R. `corruptionsPerItem` corrupted copies
    /// per item (plus the reference itself).
    package static func referenceAndCorrupted(task: any VerifiableTask, items: [TaskItem], corruptionsPerItem: Int = 2,
                                              seed: UInt64) -> [VerifierExample] {
        var out: [VerifierExample] = []
        for item in items {
            out.append(VerifierExample(item: item, response: item.reference,
                                       label: task.reward(item: item, response: item.reference).reward))
            var rng = RNG(seed: seed, stream: 0x636F_7272, ContentHash.fnv1a64(item.id))
            for _ in 0..<corruptionsPerItem {
                let y = corrupt(item.reference, rng: &rng)
                out.append(VerifierExample(item: item, response: y, label: task.reward(item: item, response: y).reward))
            }
        }
        return out
    }

    /// One random corruption: change a digit, swap an operator, shift the final number, or cut the tail.
    package static func corrupt(_ s: String, rng: inout RNG) -> String {
        var chars = Array(s)
        if chars.isEmpty { return "0" }
        let digitIdx = chars.indices.filter { chars[$0].isNumber }
        let opIdx = chars.indices.filter { "+-*%/<>".contains(chars[$0]) }
        switch rng.int(4) {
        case 0 where !digitIdx.isEmpty:
            let i = digitIdx[rng.int(digitIdx.count)]
            let d = Int(String(chars[i]))!
            chars[i] = Character(String((d + 1 + rng.int(9)) % 10))
        case 1 where !opIdx.isEmpty:
            let i = opIdx[rng.int(opIdx.count)]
            let ops: [Character] = ["+", "-", "*"]
            chars[i] = ops.filter { $0 != chars[i] }[rng.int(2)]
        case 2 where !digitIdx.isEmpty:
            // Change the last digit (the final answer's units in math, a constant in code).
            let i = digitIdx.last!
            let d = Int(String(chars[i]))!
            chars[i] = Character(String((d + 1 + rng.int(9)) % 10))
        default:
            if chars.count > 1 { chars.removeLast(1 + rng.int(max(1, chars.count / 3))) }
            else { chars = ["x"] }
        }
        return String(chars)
    }

    /// Policy samples (n per item at temperature T), labelled by R.
    /// `progress`, when given, advances by the prompts of each sampled batch.
    package static func policySamples(task: any VerifiableTask, items: [TaskItem], model: GPT, samplesPerPrompt: Int,
                                      temperature: Double, maxNewTokens: Int = 32, seed: UInt64,
                                      progress: Progress? = nil) -> [VerifierExample] {
        let sampler = Evaluator.sampler(model: model, maxNewTokens: maxNewTokens, seed: seed)
        var out: [VerifierExample] = []
        var i = 0
        while i < items.count {
            let batch = Array(items[i..<min(items.count, i + 16)])
            for (item, group) in zip(batch, sampler(batch, samplesPerPrompt, temperature)) {
                for y in group.map(\.text) { out.append(VerifierExample(item: item, response: y, label: task.reward(item: item, response: y).reward)) }
            }
            i += 16
            progress?.advance(by: batch.count)
        }
        progress?.finish()
        return out
    }
}

/// The within-prompt ranking term of the verifier objective (LearnedVerifier.swift's header).
package enum VerifierRankingLoss: String, Codable, Sendable, CaseIterable {
    /// (1/P) Σ softplus(s_neg − s_pos) over the positive/negative pairs of each prompt (RankNet / Bradley–Terry).
    case pairwise
    /// (1/G) Σ_prompts −log Σ_{pos} softmax(s)_pos over each prompt's group: the probability that a pick drawn by
    /// the scores' softmax is correct, which weighs the top of the list — where Best-of-N picks — the most.
    case listwise
}

package struct VerifierTrainingConfig: Codable, Sendable {
    /// Optimiser steps. Default 300.
    package var steps = 300
    /// Examples per step. Default 32.
    package var batchSize = 32
    /// AdamW learning rate. Default 1e-3.
    package var learningRate: Float = 1e-3
    /// AdamW weight decay. Default 0.01.
    package var weightDecay: Float = 0.01
    /// Global gradient-norm clip. Default 1.
    package var gradClip: Float = 1
    /// Positive examples are up-weighted by (#neg/#pos) when true, so both classes count equally. Default true.
    package var balanceClasses = true
    /// Weight w of the within-prompt pairwise ranking loss (file header); 0 = BCE only, batches of independent
    /// examples. With w > 0 a batch holds whole prompt groups (examples sharing `item.id`) up to `batchSize`
    /// examples. Default 0 here (the library's plain BCE); `bonfire train-verifier` defaults to 1.
    package var rankingWeight: Float = 0
    /// The ranking term's form (file header): pairwise (RankNet over positive/negative pairs) or listwise (the
    /// log-probability that a softmax pick from the prompt's group is correct). Default pairwise.
    package var rankingLoss: VerifierRankingLoss = .pairwise
    package init(steps: Int = 300, batchSize: Int = 32, learningRate: Float = 1e-3, weightDecay: Float = 0.01,
                 gradClip: Float = 1, balanceClasses: Bool = true, rankingWeight: Float = 0,
                 rankingLoss: VerifierRankingLoss = .pairwise) {
        precondition(rankingWeight >= 0 && rankingWeight.isFinite, "VerifierTrainingConfig: rankingWeight must be a finite number ≥ 0, got \(rankingWeight)")
        self.steps = steps; self.batchSize = batchSize; self.learningRate = learningRate
        self.weightDecay = weightDecay; self.gradClip = gradClip; self.balanceClasses = balanceClasses
        self.rankingWeight = rankingWeight
        self.rankingLoss = rankingLoss
    }
}

package enum VerifierTrainer {
    /// Trains `verifier.model` in place on BCE; returns the mean loss of each step.
    @discardableResult
    package static func train(_ verifier: LearnedVerifier, examples: [VerifierExample], config: VerifierTrainingConfig,
                              seed: UInt64, log: ((Int, Float) -> Void)? = nil) -> [Float] {
        precondition(!examples.isEmpty, "VerifierTrainer.train: no examples")
        let model = verifier.model
        let ctx = model.config.contextLength
        let seqs = examples.map { LearnedVerifier.sequence(prompt: $0.item.prompt, response: $0.response, contextLength: ctx) }
        let positives = examples.filter { $0.label >= 0.5 }.count
        let negatives = examples.count - positives
        let posWeight: Float = (config.balanceClasses && positives > 0 && negatives > 0) ? Float(negatives) / Float(positives) : 1
        var opt = AdamW(learningRate: config.learningRate, weightDecay: config.weightDecay)
        var rng = RNG(seed: seed, stream: 0x7665_7269)  // "veri"
        // Prompt groups (examples sharing an item id, in first-seen order) for the pairwise term's batches.
        var groupIndex: [String: Int] = [:]
        var groups: [[Int]] = []
        for (k, e) in examples.enumerated() {
            if let g = groupIndex[e.item.id] { groups[g].append(k) } else { groupIndex[e.item.id] = groups.count; groups.append([k]) }
        }
        let ranking = config.rankingWeight > 0
        var losses: [Float] = []
        for step in 0..<config.steps {
            var idx: [Int] = []
            if ranking {
                // Whole groups until the batch is full (at least one group, so a group larger than the batch still fits).
                repeat { idx += groups[rng.int(groups.count)] } while idx.count < config.batchSize
            } else {
                idx = (0..<config.batchSize).map { _ in rng.int(examples.count) }
            }
            let batch = idx.map { seqs[$0] }
            let labels = idx.map { Float(examples[$0].label) }
            let weights = labels.map { $0 >= 0.5 ? posWeight : 1 }
            let wSum = weights.reduce(0, +)
            // Prompt groups of the batch (runs of examples sharing an item id) that have both labels, as positions.
            var mixed: [Range<Int>] = []
            if ranking {
                var start = 0
                while start < idx.count {
                    var end = start + 1
                    while end < idx.count && examples[idx[end]].item.id == examples[idx[start]].item.id { end += 1 }
                    let pos = labels[start..<end].filter { $0 >= 0.5 }.count
                    if pos > 0 && pos < end - start { mixed.append(start..<end) }
                    start = end
                }
            }
            // Pairs (positive i, negative j) of the same prompt (pairwise loss).
            var pairs: [(Int, Int)] = []
            if config.rankingLoss == .pairwise {
                for g in mixed { for i in g where labels[i] >= 0.5 { for j in g where labels[j] < 0.5 { pairs.append((i, j)) } } }
            }
            var loss: Float = 0
            model.zeroGrad()
            model.scalarForwardBackward(batch) { s in
                var d = [Float](repeating: 0, count: s.count)
                for b in 0..<s.count {
                    let sig = 1 / (1 + exp(-s[b]))
                    // softplus(s) − y s, computed stably.
                    let softplus = max(s[b], 0) + log1p(exp(-abs(s[b])))
                    loss += weights[b] * (softplus - labels[b] * s[b]) / wSum
                    d[b] = weights[b] * (sig - labels[b]) / wSum
                }
                if config.rankingLoss == .listwise && !mixed.isEmpty {
                    // −log Σ_{pos} softmax_g(s): logsumexp over the group minus logsumexp over its positives.
                    let w = config.rankingWeight / Float(mixed.count)
                    for g in mixed {
                        let m = g.map { s[$0] }.max()!
                        let eAll = g.map { exp(s[$0] - m) }
                        let zAll = eAll.reduce(0, +)
                        let zPos = zip(g, eAll).filter { labels[$0.0] >= 0.5 }.map { $0.1 }.reduce(0, +)
                        loss += w * log1p((zAll - zPos) / zPos)   // log(zAll / zPos); `log` is the callback here
                        for (k, e) in zip(g, eAll) {
                            d[k] += w * (e / zAll - (labels[k] >= 0.5 ? e / zPos : 0))
                        }
                    }
                }
                if !pairs.isEmpty {
                    let w = config.rankingWeight / Float(pairs.count)
                    for (i, j) in pairs {
                        let m = s[j] - s[i]   // softplus(s_j − s_i); its derivative is σ(s_j − s_i)
                        loss += w * (max(m, 0) + log1p(exp(-abs(m))))
                        let g = w / (1 + exp(-m))
                        d[j] += g; d[i] -= g
                    }
                }
                return d
            }
            _ = clipGradNorm(&model.grads, maxNorm: config.gradClip)
            opt.update(params: &model.params, grads: model.grads)
            losses.append(loss)
            log?(step, loss)
        }
        return losses
    }
}

extension Estimators {
    /// Area under the ROC curve: P(score of a random positive > score of a random negative), ties ½.
    /// nil if a class is empty.
    package static func auc(scores: [Double], labels: [Double]) -> Double? {
        precondition(scores.count == labels.count, "auc: \(scores.count) scores vs \(labels.count) labels")
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSumPos = 0.0
        var pos = 0
        var i = 0
        while i < order.count {
            var j = i
            while j < order.count && scores[order[j]] == scores[order[i]] { j += 1 }
            let avgRank = Double(i + j + 1) / 2  // ranks i+1 ... j
            for k in i..<j where labels[order[k]] >= 0.5 { rankSumPos += avgRank; pos += 1 }
            i = j
        }
        let neg = scores.count - pos
        guard pos > 0, neg > 0 else { return nil }
        return (rankSumPos - Double(pos * (pos + 1)) / 2) / Double(pos * neg)
    }

    /// Within-prompt AUC: the mean over groups (prompts) that have both labels of each group's AUC, with its standard
    /// error over those groups and their count. This is what Best-of-N depends on (it only compares responses to the
    /// same prompt); the pooled `auc` also rewards telling easy prompts from hard ones. nil if no group has both labels.
    package static func withinPromptAUC(scores: [Double], labels: [Double], groups: [String])
        -> (mean: Double, standardError: Double, prompts: Int)? {
        precondition(scores.count == labels.count && scores.count == groups.count,
                     "withinPromptAUC: \(scores.count) scores, \(labels.count) labels, \(groups.count) group ids")
        var members: [String: [Int]] = [:]
        var order: [String] = []
        for (k, g) in groups.enumerated() {
            if members[g] == nil { order.append(g) }
            members[g, default: []].append(k)
        }
        let aucs = order.compactMap { g -> Double? in
            let ks = members[g]!
            return auc(scores: ks.map { scores[$0] }, labels: ks.map { labels[$0] })
        }
        guard !aucs.isEmpty else { return nil }
        let m = meanAndStandardError(aucs)
        return (m.mean, m.standardError, aucs.count)
    }
}
