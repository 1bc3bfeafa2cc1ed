// Best-of-N evaluation: for each temperature, sample n responses per prompt, compute R (task) and r (verifier), and
// report per N in nList the unbiased estimators of Estimators.swift averaged over prompts, with standard errors over
// prompts (sd of the per-prompt estimates / √prompts):
//   pass@N   1 − C(n−c, N)/C(n, N)                  (c = #responses with R = 1)
//   Bo-N     Σ_s [C(a_s+m_s, N) − C(a_s, N)]/C(n, N) · R̄_s   (uniform tie-breaking, expected value)
//   maj@N    expected reward of the majority answer of N (task answer keys; ties expected value)
//   mean R   pass@1 (the same for every N; reported for convenience)
// and per temperature (the same on every N row) two diversity measures of the n samples, mean ± s.e. over prompts:
//   distinct  number of distinct final answers among a prompt's n samples: distinct `answerKey`s (math: the
//             normalised final answer, so "1.0", "1" and "\frac{2}{2}" are one answer; built-in code task: the
//             program's outputs on the hidden tests, i.e. distinct behaviour; JSONL code: the program text without
//             fences and surrounding white space). Malformed responses have no final answer and are not counted, so
//             a prompt whose samples are all malformed has 0.
//   entropy   mean token entropy (nats): at each generated token, the entropy of the distribution the token was
//             drawn from — softmax(logits / T) at the sampling temperature T of the row (after top-k / top-p; 0 for
//             greedy T = 0) — averaged over the response's tokens, then over the prompt's samples (responses with
//             no tokens are skipped). nil when the sampler does not report entropies.
// The sampler is a closure, so this file does not depend on how a policy samples; `Evaluator.sampler(model:…)` adapts
// any LanguageModel (GPT, a Hugging Face model) with its TextFormat (tokenizer, BOS, EOS). Progress (Progress.swift)
// goes to stderr: prompts done / total, rate, ETA, samples/s.

import BonfireMath
import BonfireModel
import Foundation

package struct EvalRow: Codable, Sendable, Equatable {
    package var n: Int
    package var temperature: Double
    package var passAtN: Double
    package var passAtNStdErr: Double
    package var boN: Double
    package var boNStdErr: Double
    /// nil when majority voting was not computed (EvalSettings.majority = false).
    package var majority: Double?
    package var majorityStdErr: Double?
    package var meanReward: Double
    package var numPrompts: Int
    /// Mean number of distinct final answers per prompt among its n samples, and its standard error over prompts
    /// (the same for every N of a temperature). nil in reports written before it existed.
    package var distinctAnswers: Double? = nil
    package var distinctAnswersStdErr: Double? = nil
    /// Mean token entropy (nats) of the sampling distribution at this temperature, averaged over tokens then
    /// samples, then prompts (± s.e. over prompts). nil when the sampler does not report entropies.
    package var tokenEntropy: Double? = nil
    package var tokenEntropyStdErr: Double? = nil
}

package struct EvalReport: Codable, Sendable {
    package var task: String
    package var split: String
    package var verifier: String
    package var checkpoint: String?
    /// n: samples per prompt the estimators draw N-subsets from.
    package var samples: Int
    package var nList: [Int]
    package var temperatures: [Double]
    package var numPrompts: Int
    package var rows: [EvalRow]
    package var seconds: Double
    package var samplesPerSecond: Double

    /// The row for (N, T), if present.
    package func row(n: Int, temperature: Double) -> EvalRow? {
        rows.first { $0.n == n && $0.temperature == temperature }
    }

    /// A fixed-width text table, one line per (T, N).
    package func table() -> String {
        func f(_ m: Double, _ se: Double) -> String {
            let s = String(format: "%.3f±%.3f", m, se)
            return s.padding(toLength: 13, withPad: " ", startingAt: 0)
        }
        let dash = "-".padding(toLength: 13, withPad: " ", startingAt: 0)
        var lines = ["task=\(task) split=\(split) verifier=\(verifier) prompts=\(numPrompts) samples=\(samples)",
                     "T      N     pass@N        Bo-N          maj@N         meanR  distinct      entropy"]
        for r in rows {
            lines.append(String(format: "%-6.2f %-5d ", r.temperature, r.n) + f(r.passAtN, r.passAtNStdErr) + " "
                         + f(r.boN, r.boNStdErr) + " "
                         + (r.majority.map { f($0, r.majorityStdErr ?? 0) } ?? dash) + " "
                         + String(format: "%.3f  ", r.meanReward)
                         + (r.distinctAnswers.map { f($0, r.distinctAnswersStdErr ?? 0) } ?? dash) + " "
                         + (r.tokenEntropy.map { String(format: "%.3f±%.3f", $0, r.tokenEntropyStdErr ?? 0) } ?? "-"))
        }
        lines.append("distinct: distinct final answers per prompt among its \(samples) samples; entropy: mean token "
                     + "entropy (nats) of the sampling distribution at T (both the same for every N)")
        return lines.joined(separator: "\n")
    }
}

package struct EvalSettings: Codable, Sendable, Equatable {
    /// n: responses sampled per prompt (must be ≥ every N in nList). Default 64.
    package var samples = 64
    /// The N values reported. Default 1, 2, 4, 8, 16, 32.
    package var nList = [1, 2, 4, 8, 16, 32]
    /// Sampling temperatures, one table block each. Default 0.1, 0.5, 1.0, 1.5.
    package var temperatures = [0.1, 0.5, 1.0, 1.5]
    /// Prompts sampled together in one sampler call. Default 8.
    package var promptsPerBatch = 8
    /// Print progress lines to stderr. Default true.
    package var progress = true
    /// Compute majority vote (costs a small DP per prompt and N). Default true.
    package var majority = true

    package init(samples: Int = 64, nList: [Int] = [1, 2, 4, 8, 16, 32], temperatures: [Double] = [0.1, 0.5, 1.0, 1.5],
                 promptsPerBatch: Int = 8, progress: Bool = true, majority: Bool = true) {
        self.samples = samples; self.nList = nList; self.temperatures = temperatures
        self.promptsPerBatch = promptsPerBatch; self.progress = progress; self.majority = majority
    }

    /// Throws with a message saying what to change.
    package func validate() throws {
        guard samples >= 1 else { throw TaskError("eval: samples must be ≥ 1 (got \(samples))") }
        guard !nList.isEmpty, nList.allSatisfy({ $0 >= 1 }) else {
            throw TaskError("eval: the N list must be non-empty with every N ≥ 1 (got \(nList)), e.g. --n 1,2,4,8")
        }
        guard let maxN = nList.max(), maxN <= samples else {
            throw TaskError("eval: every N must be ≤ samples per prompt (N max \(nList.max() ?? 0) > samples \(samples));"
                            + " raise --samples or drop the large N")
        }
        guard !temperatures.isEmpty, temperatures.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw TaskError("eval: temperatures must be non-empty and ≥ 0 (got \(temperatures)), e.g. --temperatures 0.5,1.0")
        }
        guard promptsPerBatch >= 1 else { throw TaskError("eval: promptsPerBatch must be ≥ 1") }
    }
}

/// One sampled response as the evaluator sees it.
package struct EvalSample: Sendable, Equatable {
    /// The response text, without EOS.
    package var text: String
    /// Per generated token, the entropy (nats) of the distribution it was drawn from; nil when unknown.
    package var tokenEntropies: [Float]?
    package init(text: String, tokenEntropies: [Float]? = nil) { self.text = text; self.tokenEntropies = tokenEntropies }
}

package struct Evaluator {
    /// Samples `samplesPerPrompt` responses (text, without EOS) for each item at a temperature: result [item][sample].
    package typealias Sampler = (_ items: [TaskItem], _ samplesPerPrompt: Int, _ temperature: Double) -> [[String]]
    /// The same with each response's token entropies (what `Evaluator.sampler(model:…)` returns).
    package typealias EntropySampler = (_ items: [TaskItem], _ samplesPerPrompt: Int, _ temperature: Double) -> [[EvalSample]]

    package let task: any VerifiableTask
    package let verifier: any Verifier
    package let settings: EvalSettings

    package init(task: any VerifiableTask, verifier: any Verifier, settings: EvalSettings = EvalSettings()) {
        self.task = task; self.verifier = verifier; self.settings = settings
    }

    /// Per-prompt estimates for one BoN group of n responses: (pass@N, Bo-N, maj@N) for each N in nList.
    package func estimates(item: TaskItem, responses: [String]) -> [(pass: Double, bon: Double, maj: Double)] {
        let rewards = responses.map { task.reward(item: item, response: $0).reward }
        let answers = settings.majority ? responses.map { task.answerKey(item: item, response: $0) } : []
        return estimates(item: item, responses: responses, rewards: rewards, answers: answers)
    }

    /// The same from the group's rewards and answer keys (computed once per group by `run`).
    func estimates(item: TaskItem, responses: [String], rewards: [Double], answers: [String?])
        -> [(pass: Double, bon: Double, maj: Double)] {
        let scores = verifier.scores(item: item, responses: responses)
        let c = rewards.filter { $0 >= 0.5 }.count
        return settings.nList.map { N in
            (Estimators.passAtK(n: responses.count, c: c, k: N),
             Estimators.bestOfN(scores: scores, rewards: rewards, n: N),
             settings.majority ? Estimators.majorityVote(answers: answers, rewards: rewards, k: N) : 0)
        }
    }

    /// Number of distinct final answers (non-nil answer keys) among one prompt's samples.
    package static func distinctAnswers(_ answers: [String?]) -> Int {
        Set(answers.compactMap { $0 }).count
    }

    /// Mean over samples of each sample's mean token entropy; nil when no sample has a known, non-empty entropy list.
    package static func meanTokenEntropy(_ samples: [EvalSample]) -> Double? {
        let perSample = samples.compactMap { s -> Double? in
            guard let h = s.tokenEntropies, !h.isEmpty else { return nil }
            return h.reduce(0.0) { $0 + Double($1) } / Double(h.count)
        }
        return perSample.isEmpty ? nil : perSample.reduce(0, +) / Double(perSample.count)
    }

    /// Runs the evaluation over `items` with a text-only sampler (no token entropies: `tokenEntropy` is nil).
    package func run(items: [TaskItem], checkpoint: String? = nil, sampler: Sampler) throws -> EvalReport {
        try run(items: items, checkpoint: checkpoint, entropySampler: { items, n, T in
            sampler(items, n, T).map { $0.map { EvalSample(text: $0) } }
        })
    }

    /// Runs the evaluation over `items`. Throws if the settings are invalid or the sampler returns the wrong shape.
    package func run(items: [TaskItem], checkpoint: String? = nil, entropySampler sampler: EntropySampler) throws -> EvalReport {
        try settings.validate()
        guard !items.isEmpty else { throw TaskError("eval: no prompts to evaluate; use --prompts ≥ 1") }
        let start = Date()
        var rows: [EvalRow] = []
        var totalSamples = 0
        let totalWork = items.count * settings.temperatures.count
        // Prompts × temperatures done, with rate and ETA (stderr: in place on a terminal, plain lines in a log).
        let progress = settings.progress ? Progress("eval \(task.name)", total: totalWork, unit: "prompts") : nil
        for T in settings.temperatures {
            var perN = [[(pass: Double, bon: Double, maj: Double)]](repeating: [], count: settings.nList.count)
            var meanRewards: [Double] = []
            var distinct: [Double] = [], entropy: [Double] = []
            var b = 0
            while b < items.count {
                let batch = Array(items[b..<min(items.count, b + settings.promptsPerBatch)])
                let responses = sampler(batch, settings.samples, T)
                guard responses.count == batch.count, responses.allSatisfy({ $0.count == settings.samples }) else {
                    throw TaskError("eval: sampler returned \(responses.map { $0.count }) responses for \(batch.count)"
                                    + " prompts × \(settings.samples) samples (sampler bug)")
                }
                for (item, samples) in zip(batch, responses) {
                    let group = samples.map(\.text)
                    let R = group.map { task.reward(item: item, response: $0).reward }
                    let answers = group.map { task.answerKey(item: item, response: $0) }
                    for (j, e) in estimates(item: item, responses: group, rewards: R, answers: answers).enumerated() {
                        perN[j].append(e)
                    }
                    meanRewards.append(R.reduce(0, +) / Double(R.count))
                    distinct.append(Double(Evaluator.distinctAnswers(answers)))
                    if let h = Evaluator.meanTokenEntropy(samples) { entropy.append(h) }
                }
                totalSamples += batch.count * settings.samples
                b += batch.count
                let rate = Double(totalSamples) / max(Date().timeIntervalSince(start), 1e-9)
                progress?.advance(by: batch.count, detail: String(format: "T=%.2f  prompts %d/%d  %.1f samples/s", T, b, items.count, rate))
            }
            let meanR = meanRewards.reduce(0, +) / Double(meanRewards.count)
            let dv = Estimators.meanAndStandardError(distinct)
            let hv = entropy.isEmpty ? nil : Estimators.meanAndStandardError(entropy)
            for (j, N) in settings.nList.enumerated() {
                let p = Estimators.meanAndStandardError(perN[j].map { $0.pass })
                let bo = Estimators.meanAndStandardError(perN[j].map { $0.bon })
                let mj = Estimators.meanAndStandardError(perN[j].map { $0.maj })
                rows.append(EvalRow(n: N, temperature: T, passAtN: p.mean, passAtNStdErr: p.standardError,
                                    boN: bo.mean, boNStdErr: bo.standardError,
                                    majority: settings.majority ? mj.mean : nil,
                                    majorityStdErr: settings.majority ? mj.standardError : nil,
                                    meanReward: meanR, numPrompts: items.count,
                                    distinctAnswers: dv.mean, distinctAnswersStdErr: dv.standardError,
                                    tokenEntropy: hv?.mean, tokenEntropyStdErr: hv?.standardError))
            }
        }
        progress?.finish()
        let seconds = Date().timeIntervalSince(start)
        return EvalReport(task: task.name, split: items[0].split.rawValue, verifier: verifier.name,
                          checkpoint: checkpoint, samples: settings.samples, nList: settings.nList,
                          temperatures: settings.temperatures, numPrompts: items.count, rows: rows, seconds: seconds,
                          samplesPerSecond: Double(totalSamples) / max(seconds, 1e-9))
    }

    /// A sampler over a policy: prompt tokens are [BOS] + prompt; responses are decoded up to EOS, with the entropy of
    /// the sampling distribution at each token. The RNG is advanced deterministically, so a fixed seed replays the
    /// evaluation.
    package static func sampler(model: any LanguageModel, text: TextFormat = .character, maxNewTokens: Int = 32,
                                topK: Int = 0, topP: Float = 1, seed: UInt64) -> EntropySampler {
        var rng = RNG(seed: seed, stream: 0x6576_616C)  // "eval"
        return { items, samplesPerPrompt, temperature in
            let prompts = items.map { [text.bos] + ((try? text.tokenizer.encode($0.prompt)) ?? []) }
            let longest = prompts.map { $0.count }.max() ?? 0
            let budget = max(1, min(maxNewTokens, model.contextLength - longest))
            let sc = SamplingConfig(temperature: Float(temperature), topK: topK, topP: topP, maxNewTokens: budget,
                                    stopToken: text.eos, recordEntropy: true)
            let out = model.sample(prompts: prompts, samplesPerPrompt: samplesPerPrompt, config: sc, rng: &rng)
            return out.map { group in
                group.map { EvalSample(text: text.decodeResponse($0.tokens), tokenEntropies: $0.entropies) }
            }
        }
    }

    /// Convenience: evaluate a policy.
    package func run(model: any LanguageModel, text: TextFormat = .character, items: [TaskItem], maxNewTokens: Int = 32,
                     seed: UInt64 = 0, checkpoint: String? = nil) throws -> EvalReport {
        try run(items: items, checkpoint: checkpoint,
                entropySampler: Evaluator.sampler(model: model, text: text, maxNewTokens: maxNewTokens, seed: seed))
    }
}

/// Entry point the cluster's actors call (rows for each (N, T); no progress output).
package func evaluatePolicy(model: any LanguageModel, text: TextFormat = .character, task: any VerifiableTask,
                            verifier: any Verifier, items: [TaskItem],
                            samples: Int, nList: [Int], temperatures: [Double], maxNewTokens: Int,
                            rng: inout RNG) -> [EvalRow] {
    let settings = EvalSettings(samples: max(samples, nList.max() ?? 1), nList: nList.isEmpty ? [1] : nList,
                                temperatures: temperatures.isEmpty ? [1.0] : temperatures, progress: false)
    let seed = rng.next()
    let evaluator = Evaluator(task: task, verifier: verifier, settings: settings)
    do {
        return try evaluator.run(model: model, text: text, items: items, maxNewTokens: maxNewTokens, seed: seed).rows
    } catch {
        preconditionFailure("evaluatePolicy: \(error)")
    }
}
