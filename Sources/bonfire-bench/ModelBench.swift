// `bonfire-bench model`: speed of the policy model (not a timed test; see docs/performance.md).
//   train step  = forwardBackward (mean token cross-entropy over B full-length sequences) + grad clip + AdamW
//   sampling    = KV-cache decoding of one prompt (8 tokens) × 32 samples × 48 new tokens (temperature 1)
// Configs: tiny (L4 d128 h4 ctx64 vocab32, batch 32) and small (L6 d256 h8 ctx128 vocab64, batch 32).
// Prints one `RESULT …` line per config for Scripts/bench-model.sh, which compares with Scripts/bench_pytorch.py.

import ArgumentParser
import Foundation
import BonfireMath
import BonfireModel

struct ModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Train-step and KV-cache sampling speed of the GPT policy (tiny and small configs).")

    @Option(help: "OpenBLAS threads (default: leave as the environment sets it).")
    var threads: Int?
    @Option(help: "Timed train steps per config (after 2 warm-up steps).")
    var trainSteps = 10
    @Option(help: "Timed sampling rounds per config (after 1 warm-up round).")
    var sampleRounds = 5
    @Option(help: "Comma-separated configs to run: tiny, small.")
    var configs = "tiny,small"

    static let batch = 32, samples = 32, promptLength = 8, newTokens = 48

    func run() throws {
        if let threads { BLAS.setNumThreads(threads) }
        print("bonfire-bench model: OpenBLAS core \(BLAS.coreName), threads \(BLAS.numThreads)")
        for name in configs.split(separator: ",").map(String.init) {
            let cfg: GPTConfig
            switch name {
            case "tiny": cfg = GPTConfig(vocabSize: 32, contextLength: 64, layers: 4, heads: 4, dim: 128)
            case "small": cfg = GPTConfig(vocabSize: 64, contextLength: 128, layers: 6, heads: 8, dim: 256)
            default: throw ValidationError("unknown config \(name): use tiny or small")
            }
            bench(name, cfg)
        }
    }

    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

    func bench(_ name: String, _ cfg: GPTConfig) {
        let model = GPT(config: cfg, seed: 1)
        var opt = AdamW(learningRate: 3e-4, layout: model.layout)
        var rng = RNG(seed: 2)
        let B = Self.batch, T = cfg.contextLength
        let batch = (0..<B).map { _ in (0..<T).map { _ in rng.int(cfg.vocabSize) } }
        let w = 1 / Float(B * (T - 1))
        var times: [Double] = []
        var loss: Float = 0
        for i in 0..<(trainSteps > 0 ? trainSteps + 2 : 0) {
            let t0 = now()
            model.zeroGrad()
            loss = model.forwardBackward(batch) { $0.map { $0.map { _ in w } } }.loss
            clipGradNorm(&model.grads, maxNorm: 1)
            opt.update(params: &model.params, grads: model.grads)
            if i >= 2 { times.append(now() - t0) }
        }
        let trainMs = times.isEmpty ? 0 : median(times) * 1e3
        let trainTokS = times.isEmpty ? 0 : Double(B * T) / median(times)

        let prompt = (0..<Self.promptLength).map { _ in rng.int(cfg.vocabSize) }
        let sc = SamplingConfig(temperature: 1, maxNewTokens: Self.newTokens, stopToken: -1)
        var stimes: [Double] = []
        var produced = 0
        for i in 0..<(sampleRounds + 1) {
            var srng = RNG(seed: UInt64(i))
            let t0 = now()
            let out = model.sample(prompts: [prompt], samplesPerPrompt: Self.samples, config: sc, rng: &srng)
            let dt = now() - t0
            produced = out[0].reduce(0) { $0 + $1.tokens.count }
            if i >= 1 { stimes.append(dt) }
        }
        let sampleTokS = Double(produced) / median(stimes)
        print(String(format: "%-5@ L%d d%d h%d ctx%d V%d  train step %.1f ms (%.0f tok/s, loss %.3f)  sampling %.0f tok/s (%d×%d tokens in %.1f ms)",
                     name, cfg.layers, cfg.dim, cfg.heads, cfg.contextLength, cfg.vocabSize, trainMs, trainTokS, loss,
                     sampleTokS, Self.samples, Self.newTokens, median(stimes) * 1e3))
        print(String(format: "RESULT impl=bonfire config=%@ threads=%d train_ms=%.2f train_tok_s=%.0f sample_tok_s=%.0f",
                     name, BLAS.numThreads, trainMs, trainTokS, sampleTokS))
    }
}
