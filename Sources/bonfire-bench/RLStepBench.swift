// `bonfire-bench rl-step`: one BoN-aware RL update on the tiny policy, end to end (not a timed test).
//   8 math prompts × N = 8 sampled completions of ≤ 16 tokens (KV cache, temperature 1), scoring (oracle verifier +
//   environment reward), BoN-RL leave-one-out weights, one forwardBackward + grad clip + AdamW.
// Model: L4 d128 h4 ctx64 vocab64 (GPTConfig.tiny). Reports the median ms per step and completions/s, and the split
// between sampling, scoring and the update, at each requested OpenBLAS thread count. Scripts/bench_trl.py measures
// TRL's GRPOTrainer on the same shape for comparison (see docs/performance.md).

import ArgumentParser
import Foundation
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireAlgorithms

struct RLStepBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rl-step",
        abstract: "One BoN-aware RL step (8 prompts × 8 completions ≤ 16 tokens, scoring, update) on the tiny GPT.")

    @Option(help: "Comma-separated OpenBLAS thread counts.") var threads = "1,2"
    @Option(help: "Timed steps per thread count (after 2 warm-up steps).") var steps = 10
    @Option(help: "Prompts per step.") var prompts = 8
    @Option(help: "Completions per prompt (N).") var n = 8
    @Option(help: "Max new tokens per completion.") var maxNewTokens = 16

    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    func run() throws {
        let task = try TaskRegistry.make(name: "math", seed: 0)
        let verifier = OracleVerifier(task: task)
        let learner = BoNRL()
        print("bonfire-bench rl-step: OpenBLAS core \(BLAS.coreName); \(prompts) prompts × N=\(n), ≤ \(maxNewTokens) tokens")
        for t in threads.split(separator: ",").compactMap({ Int($0) }) {
            BLAS.setNumThreads(t)
            let model = GPT(config: .tiny, seed: 1)
            var opt = AdamW(learningRate: 1e-4, weightDecay: 0)
            var rng = RNG(seed: 3)
            var total: [Double] = [], sampling: [Double] = [], scoring: [Double] = [], update: [Double] = []
            for s in 0..<(steps + 2) {
                let items = (0..<prompts).map { task.item(split: .train, index: s * prompts + $0) }
                let t0 = now()
                let ptoks = items.map { (try? Tokenizer.encode($0.prompt)) ?? [] }
                let out = model.sample(prompts: ptoks.map { [Tokenizer.bos] + $0 }, samplesPerPrompt: n,
                                       config: SamplingConfig(temperature: 1, maxNewTokens: maxNewTokens), rng: &rng)
                let t1 = now()
                let groups = items.indices.map { i -> BoNGroup in
                    let texts = out[i].map { Tokenizer.decode($0.tokens) }
                    return BoNGroup(promptTokens: ptoks[i], responses: out[i].map(\.tokens),
                                    behaviourLogProbs: out[i].map(\.logProbs), behaviourVersion: s,
                                    scores: verifier.scores(item: items[i], responses: texts),
                                    rewards: texts.map { task.reward(item: items[i], response: $0).reward }, itemIndex: items[i].index)
                }
                let t2 = now()
                // Benchmark the full update even when a random policy earns no reward: weights from identity 1
                // plus a constant keep every sequence in the backward pass (the same cost as a dense batch).
                let batch = BoNBatch(groups: groups)
                let w = batch.groups.map { g in learner.groupWeights(g).map { $0 + 0.01 } }
                let seqs = PolicyGradient.sequences(batch: batch, weights: w, currentVersion: s)
                PolicyGradient.update(model: model, optimizer: &opt, sequences: seqs, config: learner.update)
                let t3 = now()
                if s >= 2 {
                    total.append(t3 - t0); sampling.append(t1 - t0); scoring.append(t2 - t1); update.append(t3 - t2)
                }
            }
            func med(_ x: [Double]) -> Double { x.sorted()[x.count / 2] * 1000 }
            let ms = med(total)
            print(String(format: "RESULT rl-step threads=%d ms_per_step=%.1f completions_per_s=%.0f sample_ms=%.1f score_ms=%.1f update_ms=%.1f",
                         t, ms, Double(prompts * n) / (ms / 1000), med(sampling), med(scoring), med(update)))
        }
    }
}
