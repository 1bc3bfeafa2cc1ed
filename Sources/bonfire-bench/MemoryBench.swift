// `bonfire-bench memory`: peak resident memory (RSS) of what each role holds, per model config (not a timed test).
//   learner = GPT (params + grads + activations) + AdamW moments, after one train step over `--learner-batch`
//             sequences of `--learner-tokens` tokens (the activations are sized by that batch);
//   actor   = GPT + KV-cache decoder state, after sampling `--prompts` × `--samples` responses of `--new-tokens`.
// Each (config, role) runs in a fresh child process (peak RSS is per process), which prints `RESULT memory …`.
// Configs: tiny and small as in `bonfire-bench model`, gpt2-124m = L12 d768 h12 ctx1024 vocab 50257 (124 M params).

import ArgumentParser
import Foundation
import BonfireMath
import BonfireModel

struct MemoryBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory",
        abstract: "Peak RSS per role (learner, actor) for the tiny, small and 124M-parameter GPT configs.")

    @Option(help: "Comma-separated configs: tiny, small, gpt2-124m.") var configs = "tiny,small,gpt2-124m"
    @Option(help: "Comma-separated roles: learner, actor.") var roles = "learner,actor"
    @Option(help: "Learner batch: sequences per train step.") var learnerBatch = 8
    @Option(help: "Learner batch: tokens per sequence (capped at the context length).") var learnerTokens = 128
    @Option(help: "Actor: prompts per sample() call.") var prompts = 8
    @Option(help: "Actor: samples per prompt.") var samples = 8
    @Option(help: "Actor: new tokens per sample.") var newTokens = 64
    @Option(help: ArgumentHelp("Run one config:role in this process (used by the parent).", visibility: .hidden))
    var only: String?

    static func config(_ name: String) throws -> GPTConfig {
        switch name {
        case "tiny": return GPTConfig(vocabSize: 32, contextLength: 64, layers: 4, heads: 4, dim: 128)
        case "small": return GPTConfig(vocabSize: 64, contextLength: 128, layers: 6, heads: 8, dim: 256)
        case "gpt2-124m": return GPTConfig(vocabSize: 50257, contextLength: 1024, layers: 12, heads: 12, dim: 768)
        default: throw ValidationError("unknown config \(name): use tiny, small or gpt2-124m")
        }
    }

    static func peakRSSMiB() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_maxrss) / 1024   // ru_maxrss is in KiB on Linux
    }

    func run() throws {
        if let only {
            let parts = only.split(separator: ":").map(String.init)
            guard parts.count == 2 else { throw ValidationError("--only wants config:role, got \(only)") }
            try measure(parts[0], parts[1])
            return
        }
        print("bonfire-bench memory: learner \(learnerBatch)×\(learnerTokens) tokens; actor \(prompts)×\(samples) samples of \(newTokens) tokens")
        let me = URL(fileURLWithPath: CommandLine.arguments[0])
        for c in configs.split(separator: ",") {
            for r in roles.split(separator: ",") {
                let p = Process()
                p.executableURL = me
                p.arguments = ["memory", "--only", "\(c):\(r)", "--learner-batch", "\(learnerBatch)",
                               "--learner-tokens", "\(learnerTokens)", "--prompts", "\(prompts)",
                               "--samples", "\(samples)", "--new-tokens", "\(newTokens)"]
                try p.run()
                p.waitUntilExit()
                if p.terminationStatus != 0 { print("memory \(c):\(r) failed with status \(p.terminationStatus)") }
            }
        }
    }

    func measure(_ name: String, _ role: String) throws {
        let cfg = try Self.config(name)
        let model = GPT(config: cfg, seed: 1)
        var rng = RNG(seed: 2)
        switch role {
        case "learner":
            var opt = AdamW(learningRate: 1e-4, layout: model.layout)
            let T = min(learnerTokens, cfg.contextLength)
            let batch = (0..<learnerBatch).map { _ in (0..<T).map { _ in rng.int(cfg.vocabSize) } }
            model.zeroGrad()
            model.forwardBackward(batch) { $0.map { $0.map { _ in 1 / Float(batch.count * (T - 1)) } } }
            clipGradNorm(&model.grads, maxNorm: 1)
            opt.update(params: &model.params, grads: model.grads)
        case "actor":
            let prompt = (0..<8).map { _ in rng.int(cfg.vocabSize) }
            let sc = SamplingConfig(temperature: 1, maxNewTokens: min(newTokens, cfg.contextLength - 8), stopToken: -1)
            _ = model.sample(prompts: Array(repeating: prompt, count: prompts), samplesPerPrompt: samples, config: sc, rng: &rng)
        default:
            throw ValidationError("unknown role \(role): use learner or actor")
        }
        let paramsMiB = Double(model.params.count * 4) / 1_048_576
        print(String(format: "memory %-9@ %-7@ params %6.1f M (%7.1f MiB as float32)  peak RSS %8.1f MiB",
                     name, role, Double(model.params.count) / 1e6, paramsMiB, Self.peakRSSMiB()))
        print(String(format: "RESULT memory config=%@ role=%@ params=%d peak_rss_mib=%.1f", name, role,
                     model.params.count, Self.peakRSSMiB()))
    }
}
