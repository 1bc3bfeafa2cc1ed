// `bonfire-bench hf`: a GPT-2-small-sized (≈124 M parameters) Llama-family model (not a timed test; docs/models.md).
//   train     = forwardBackward (mean next-token cross-entropy over B sequences of T tokens) + grad clip + AdamW
//   sample    = KV-cache decoding of one 8-token prompt × S samples × K new tokens (temperature 1)
//   checkpoint= HF directory write (config.json + model.safetensors) and read back, f32 and bf16
// Scripts/bench_hf_pytorch.py runs the same work with transformers' LlamaForCausalLM; both print RESULT lines.
// `bonfire-bench hf-roundtrip --in DIR --out DIR`: load a HF directory, take a few AdamW steps, save it back in the
// same layout and write Bonfire's logits on fixed sequences to OUT/bonfire_logits.safetensors, for
// `python3 Scripts/make-hf-fixtures.py --check-export OUT` (transformers must reproduce them).

import ArgumentParser
import Foundation
import BonfireMath
import BonfireModel

struct HFBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hf",
        abstract: "Train-step, KV-cache sampling and checkpoint speed of a 124 M Llama-family model.")

    @Option(help: "OpenBLAS threads (default: leave as the environment sets it).")
    var threads: Int?
    @Option(help: "What to run: comma-separated train, sample, checkpoint.")
    var modes = "train,sample"
    @Option(help: "Timed train steps (after 1 warm-up step).")
    var trainSteps = 3
    @Option(help: "Sequences per train step.")
    var batch = 4
    @Option(help: "Tokens per sequence in a train step.")
    var seqLen = 128
    @Option(help: "Samples per prompt when sampling.")
    var samples = 8
    @Option(help: "New tokens per sample.")
    var newTokens = 32
    @Option(help: "Timed sampling rounds (after 1 warm-up round).")
    var sampleRounds = 2
    @Option(help: "Key/value heads (12 = multi-head; 4 = grouped-query).")
    var kvHeads = 12
    @Option(help: "Decode-time linear layers: xwt (inp·Wᵀ) or wxt (W·inpᵀ, as GPT's sampler).")
    var decodeLinear = "xwt"
    @Option(help: "Scratch directory for the checkpoint mode.")
    var dir = "/tmp/bonfire-hf-bench"

    /// vocab 50257, d768, 12 layers, 12 heads, SwiGLU hidden 2048, ctx 1024, tied head: 123.6 M parameters with MHA.
    func config() -> LlamaConfig {
        LlamaConfig(vocabSize: 50257, dim: 768, hidden: 2048, layers: 12, heads: 12, kvHeads: kvHeads, contextLength: 1024,
                    rmsEps: 1e-5, ropeTheta: 10000, tiedHead: true)
    }

    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
    func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

    func run() throws {
        if let threads { BLAS.setNumThreads(threads) }
        guard ["xwt", "wxt"].contains(decodeLinear) else { throw ValidationError("--decode-linear: use xwt or wxt") }
        LlamaModel.decodeWeightTimesInput = decodeLinear == "wxt"
        let cfg = config()
        let modeList = modes.split(separator: ",").map(String.init)
        for m in modeList where !["train", "sample", "checkpoint"].contains(m) {
            throw ValidationError("unknown mode \(m): use train, sample, checkpoint")
        }
        let t0 = now()
        // The checkpoint mode alone holds one model (so its peak RSS is the save/load cost); the others build theirs.
        let lm = HFCausalLM(fresh: cfg, seed: 1)
        let model = lm.model
        print(String(format: "bonfire-bench hf: OpenBLAS core %@, threads %d; %d parameters (L%d d%d h%d kv%d F%d V%d), init %.1f s",
                     BLAS.coreName, BLAS.numThreads, model.layout.totalCount, cfg.layers, cfg.dim, cfg.heads, cfg.kvHeads,
                     cfg.hidden, cfg.vocabSize, now() - t0))
        var results: [String] = []
        if modeList.contains("train") {
            var opt = AdamW(learningRate: 1e-4, layout: model.layout)
            var rng = RNG(seed: 2)
            let seqs = (0..<batch).map { _ in (0..<seqLen).map { _ in rng.int(cfg.vocabSize) } }
            let w = 1 / Float(batch * (seqLen - 1))
            var times: [Double] = []
            var loss: Float = 0
            for i in 0..<(trainSteps + 1) {
                let t = now()
                model.zeroGrad()
                loss = model.forwardBackward(seqs, temperature: 1, entropyCoefficient: 0) { $0.map { $0.map { _ in w } } }.loss
                clipGradNorm(&model.grads, maxNorm: 1)
                opt.update(params: &model.params, grads: model.grads)
                if i >= 1 { times.append(now() - t) }
                print(String(format: "  train step %d: %.2f s, loss %.3f", i, now() - t, loss))
            }
            let s = median(times)
            print(String(format: "train: %d×%d tokens, %.2f s/step, %.0f tok/s, loss %.3f", batch, seqLen, s, Double(batch * seqLen) / s, loss))
            results.append(String(format: "train_s=%.3f train_tok_s=%.1f", s, Double(batch * seqLen) / s))
        }
        if modeList.contains("sample") {
            var rng = RNG(seed: 3)
            let prompt = (0..<8).map { _ in rng.int(cfg.vocabSize) }
            let sc = SamplingConfig(temperature: 1, maxNewTokens: newTokens, stopToken: -1)
            var times: [Double] = []
            var produced = 0
            for i in 0..<(sampleRounds + 1) {
                var srng = RNG(seed: UInt64(i))
                let t = now()
                let out = model.sample(prompts: [prompt], samplesPerPrompt: samples, config: sc, rng: &srng)
                if i >= 1 { times.append(now() - t) }
                produced = out[0].reduce(0) { $0 + $1.tokens.count }
            }
            let s = median(times)
            print(String(format: "sample (%@): %d samples × %d tokens in %.2f s, %.0f tok/s", decodeLinear, samples, newTokens, s, Double(produced) / s))
            results.append(String(format: "sample_tok_s=%.1f", Double(produced) / s))
        }
        if modeList.contains("checkpoint") {
            for dt in [HFDType.f32, .bf16] {
                let d = URL(fileURLWithPath: dir).appendingPathComponent(dt.rawValue)
                try? FileManager.default.removeItem(at: d)
                var t = now()
                try lm.save(to: d, dtype: dt)
                let w = now() - t
                let bytes = (try? FileManager.default.attributesOfItem(atPath: d.appendingPathComponent("model.safetensors").path)[.size] as? Int) ?? 0
                t = now()
                let back = try HFCausalLM.load(directory: d)
                let r = now() - t
                precondition(back.parameterCount == lm.parameterCount, "checkpoint read back a different model")
                print(String(format: "checkpoint %@: %.0f MB, write %.2f s, read %.2f s", dt.rawValue, Double(bytes) / 1e6, w, r))
                results.append(String(format: "ckpt_%@_write_s=%.2f ckpt_%@_read_s=%.2f", dt.rawValue, w, dt.rawValue, r))
            }
            try? FileManager.default.removeItem(at: URL(fileURLWithPath: dir))
        }
        print("RESULT impl=bonfire config=llama124m threads=\(BLAS.numThreads) " + results.joined(separator: " "))
    }
}

struct HFRoundTrip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hf-roundtrip",
        abstract: "Load a Hugging Face model directory, fine-tune a few steps, save it back and write Bonfire's logits.")

    @Option(help: "Hugging Face model directory to load.")
    var input: String
    @Option(help: "Directory to write (config.json + model.safetensors + bonfire_logits.safetensors).")
    var out: String
    @Option(help: "AdamW steps on random sequences before saving.")
    var steps = 3
    @Option(help: "Stored dtype of the written weights: keep, f32, f16, bf16.")
    var dtype = "keep"

    func run() throws {
        let lm = try HFCausalLM.load(directory: URL(fileURLWithPath: input))
        let m = lm.model
        let V = m.vocabSize, ctx = min(m.contextLength, 16)
        var rng = RNG(seed: 9)
        let seqs = [ctx, ctx / 2, 3].map { n in (0..<n).map { _ in rng.int(V) } }
        var opt = AdamW(learningRate: 1e-2, layout: m.layout)
        let before = m.tokenLogProbs(seqs, temperature: 1).joined().reduce(0, +)
        for _ in 0..<steps {
            m.zeroGrad()
            m.forwardBackward(seqs, temperature: 1, entropyCoefficient: 0) { $0.map { $0.map { _ in 1 } } }
            opt.update(params: &m.params, grads: m.grads)
        }
        let dt: HFDType?
        switch dtype {
        case "keep": dt = nil
        case "f32": dt = .f32
        case "f16": dt = .f16
        case "bf16": dt = .bf16
        default: throw ValidationError("--dtype \(dtype): use keep, f32, f16 or bf16")
        }
        let outURL = URL(fileURLWithPath: out)
        try lm.save(to: outURL, dtype: dt)
        // Logits of the model as saved (reload, so rounding to a half dtype is included).
        let saved = try HFCausalLM.load(directory: outURL)
        let after = saved.model.tokenLogProbs(seqs, temperature: 1).joined().reduce(0, +)
        let lg = saved.model.logits(seqs)
        let T = seqs.map(\.count).max()!
        var tokens = [Float](repeating: 0, count: seqs.count * T), logits = [Float](repeating: 0, count: seqs.count * T * V)
        for (b, s) in seqs.enumerated() {
            for (t, x) in s.enumerated() {
                tokens[b * T + t] = Float(x)
                for v in 0..<V { logits[(b * T + t) * V + v] = lg[b][t][v] }
            }
        }
        try SafeTensors.write(to: outURL.appendingPathComponent("bonfire_logits.safetensors"), tensors: [
            ("tokens", [seqs.count, T], tokens), ("lengths", [seqs.count], seqs.map { Float($0.count) }),
            ("logits", [seqs.count, T, V], logits),
        ], metadata: ["source": "bonfire-bench hf-roundtrip", "input": input])
        print("\(lm.architecture.className) \(lm.parameterCount) parameters: sum log-prob \(before) → \(after) after \(steps) AdamW steps; wrote \(out)")
    }
}
