// `bonfire-bench model`: speed of the policy model (not a timed test; see docs/performance.md).
//   train step  = forwardBackward (mean token cross-entropy over B full-length sequences) + grad clip + AdamW
//   sampling    = KV-cache decoding of one prompt (8 tokens) × 32 samples × 48 new tokens (temperature 1)
//   actor call  = one actor message of the default job: 2 prompts × 16 tokens, 8 samples each, 24 new tokens
// Configs: tiny (L4 d128 h4 ctx64 vocab32, batch 32) and small (L6 d256 h8 ctx128 vocab64, batch 32).
//   matmul bound = the same SGEMM calls a train step makes (every linear layer forward + both backward products,
//                  the tied head, the per-(sequence, head) attention products), timed alone on scratch buffers: the
//                  step cannot be faster than this with this BLAS; the step's ratio to it is its overhead.
// Prints one `RESULT …` line per config for Scripts/bench-model.sh, which compares with Scripts/bench_pytorch.py.

import ArgumentParser
import Foundation
import BonfireMath
import BonfireModel

/// `--sgemm`: which SGEMM the model's products run on.
enum SGEMMChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, openblas
}

/// `--fuse`: whether linear layers fuse their elementwise passes into the own SGEMM (BLAS.fusesEpilogues).
enum FuseChoice: String, ExpressibleByArgument, CaseIterable {
    /// The default: bias, residual + bias, GELU and GELU' forward (BLAS.fusesEpilogues).
    case on
    /// None: the separate passes.
    case off
}

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
    @Option(help: "Comma-separated configs to run: tiny, small, default (the default job's model: L2 d64 h4 ctx64 vocab64).")
    var configs = "tiny,small"
    @Option(help: "Run the C kernels at this level instead of the CPU's best: baseline, avx2, avx512 (A/B of the dispatch).")
    var kernels: String?
    @Option(help: "SGEMM kernel for the model's products: auto (BLAS.sgemm's choice: Bonfire's own AVX-512 kernel where it measured faster, else OpenBLAS) or openblas (OpenBLAS everywhere: the A/B baseline).")
    var sgemm: SGEMMChoice = .auto
    @Option(help: "GEMM epilogues: on (the default: bias, residual + bias and GELU (and, for training, GELU') applied to each tile of the own AVX-512 kernel's products while in cache) or off (the separate passes over memory, same bits: the A/B baseline). Without the own kernel both run the separate passes.")
    var fuse: FuseChoice = .on
    @Flag(help: "Instead of the model: time each layer op of one train step alone, fast path against its plain twin (min of 20 runs: robust on a loaded machine).")
    var ops = false
    @Flag(help: "Instead of the model: time each linear-layer SGEMM of one train step alone (forward x·Wᵀ, dX = dY·W, dW += dYᵀ·x; CPU time, min of 7) on OpenBLAS and on Bonfire's own AVX-512 kernel, with GFLOP/s and the kernel BLAS.sgemm uses; Scripts/bench_gemm_torch.py times the same shapes in PyTorch.")
    var gemm = false

    static let batch = 32, samples = 32, promptLength = 8, newTokens = 48
    /// One `BoNGroupSource` message of the default job: 2 prompts (math prompts run 10–20 characters), a group of 8
    /// responses each, up to 24 new tokens (sampling.maxNewTokens).
    static let actorPrompts = 2, actorPromptLength = 16, actorSamples = 8, actorNewTokens = 24

    func run() throws {
        if let threads { BLAS.setNumThreads(threads) }
        if let kernels {
            guard let level = Kernels.ISA.allCases.first(where: { $0.description.hasPrefix(kernels) }) else {
                throw ValidationError("unknown --kernels \(kernels): use baseline, avx2 or avx512")
            }
            Kernels.setISA(level)
        }
        BLAS.ownKernelEnabled = sgemm == .auto
        BLAS.fusesEpilogues = fuse != .off
        let replaced = BLAS.replacedCore.map { " (replacing OpenBLAS's own choice \($0))" } ?? ""
        print("bonfire-bench model: OpenBLAS core \(BLAS.coreName)\(replaced), threads \(BLAS.numThreads), kernels \(Kernels.isa), sgemm \(sgemm.rawValue), fuse \(fuse.rawValue)")
        for name in configs.split(separator: ",").map(String.init) {
            let cfg: GPTConfig
            switch name {
            case "tiny": cfg = GPTConfig(vocabSize: 32, contextLength: 64, layers: 4, heads: 4, dim: 128)
            case "small": cfg = GPTConfig(vocabSize: 64, contextLength: 128, layers: 6, heads: 8, dim: 256)
            case "default": cfg = GPTConfig(vocabSize: 64, contextLength: 64, layers: 2, heads: 4, dim: 64)
            default: throw ValidationError("unknown config \(name): use tiny, small or default")
            }
            if gemm { benchGemm(name, cfg) } else if ops { benchOps(name, cfg) } else { bench(name, cfg) }
        }
    }

    func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    /// CPU time of this process (all threads), seconds.
    func cpuNow() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

    func bench(_ name: String, _ cfg: GPTConfig) {
        let model = GPT(config: cfg, seed: 1)
        var opt = AdamW(learningRate: 3e-4, layout: model.layout)
        var rng = RNG(seed: 2)
        let B = Self.batch, T = cfg.contextLength
        let batch = (0..<B).map { _ in (0..<T).map { _ in rng.int(cfg.vocabSize) } }
        let w = 1 / Float(B * (T - 1))
        var times: [Double] = [], cpuTimes: [Double] = []
        var loss: Float = 0
        for i in 0..<(trainSteps > 0 ? trainSteps + 2 : 0) {
            let t0 = now(), c0 = cpuNow()
            model.zeroGrad()
            loss = model.forwardBackward(batch) { $0.map { $0.map { _ in w } } }.loss
            clipGradNorm(&model.grads, maxNorm: 1)
            opt.update(params: &model.params, grads: model.grads)
            if i >= 2 { times.append(now() - t0); cpuTimes.append(cpuNow() - c0) }
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
        let sampleTokS = stimes.isEmpty ? 0 : Double(produced) / median(stimes)
        let actor = actorCallMs(model, cfg)
        // The best round too: on a machine shared with other jobs the median moves with their load, the best less.
        let bestTokS = stimes.isEmpty ? 0 : Double(produced) / stimes.min()!
        let boundMs = trainSteps > 0 ? matmulBoundMs(cfg, B: B, T: T) : 0
        print(String(format: "%-5@ L%d d%d h%d ctx%d V%d  train step %.1f ms (%.0f tok/s, loss %.3f)  sampling %.0f tok/s (%d×%d tokens in %.1f ms; best round %.0f tok/s)",
                     name, cfg.layers, cfg.dim, cfg.heads, cfg.contextLength, cfg.vocabSize, trainMs, trainTokS, loss,
                     sampleTokS, Self.samples, Self.newTokens, stimes.isEmpty ? 0 : median(stimes) * 1e3, bestTokS))
        if let actor {
            print(String(format: "      actor call (%d prompts × %d tokens, %d samples each, %d new tokens): min %.3f ms, median %.3f ms",
                         Self.actorPrompts, Self.actorPromptLength, Self.actorSamples, Self.actorNewTokens, actor.min, actor.median))
        }
        print(String(format: "      matmul-only lower bound of the train step %.1f ms; step / bound = %.2f",
                     boundMs, boundMs > 0 ? trainMs / boundMs : 0))
        // On a shared machine the median wall time measures the other jobs too: the fastest step and the CPU time
        // per step (all threads of this process) move far less with the load.
        if !times.isEmpty {
            print(String(format: "      train step min %.1f ms; CPU per step (all threads) min %.1f ms, median %.1f ms",
                         times.min()! * 1e3, cpuTimes.min()! * 1e3, median(cpuTimes) * 1e3))
        }
        print(String(format: "RESULT impl=bonfire config=%@ threads=%d train_ms=%.2f train_tok_s=%.0f sample_tok_s=%.0f matmul_ms=%.2f",
                     name, BLAS.numThreads, trainMs, trainTokS, sampleTokS, boundMs))
    }

    /// Wall ms (min, median) of one actor message's `sample` call (`actorPrompts` prompts of `actorPromptLength`
    /// tokens, `actorSamples` each, `actorNewTokens` new tokens; temperature 1, no stop token), over 10 × the sampling
    /// rounds after a warm-up; nil without sampling rounds. Prompt-heavy where the long sampling run above is
    /// decode-heavy.
    func actorCallMs(_ model: GPT, _ cfg: GPTConfig) -> (min: Double, median: Double)? {
        guard sampleRounds > 0 else { return nil }
        var rng = RNG(seed: 3)
        let prompts = (0..<Self.actorPrompts).map { _ in (0..<Self.actorPromptLength).map { _ in rng.int(cfg.vocabSize) } }
        let sc = SamplingConfig(temperature: 1, maxNewTokens: Self.actorNewTokens, stopToken: -1)
        var times: [Double] = []
        for i in 0..<(10 * sampleRounds + 1) {
            let t0 = now()
            _ = model.sample(prompts: prompts, samplesPerPrompt: Self.actorSamples, config: sc, rng: &rng)
            if i >= 1 { times.append(now() - t0) }
        }
        return (times.min()! * 1e3, median(times) * 1e3)
    }

    /// Median time of exactly the SGEMM calls one `forwardBackward` over (B, T) full-length sequences makes.
    func matmulBoundMs(_ cfg: GPTConfig, B: Int, T: Int) -> Double {
        let C = cfg.dim, N = B * T, H = cfg.heads, hd = C / H, V = cfg.vocabSize
        let big = N * 4 * C
        let x = [Float](repeating: 0.01, count: big), y = [Float](repeating: 0.02, count: big)
        var out = [Float](repeating: 0, count: big)
        var w = [Float](repeating: 0.03, count: 4 * C * max(C, V))
        var times: [Double] = []
        for i in 0..<(trainSteps > 0 ? min(trainSteps, 5) + 1 : 0) {
            let t0 = now()
            x.withUnsafeBufferPointer { xb in y.withUnsafeBufferPointer { yb in
                out.withUnsafeMutableBufferPointer { ob in w.withUnsafeMutableBufferPointer { wb in
                    let a = xb.baseAddress!, b = yb.baseAddress!, o = ob.baseAddress!, wp = wb.baseAddress!
                    // A linear layer (ic → oc): forward, dinp, dweight.
                    func linear(_ ic: Int, _ oc: Int) {
                        BLAS.sgemm(transA: false, transB: true, m: N, n: oc, k: ic, a: a, b: b, c: o)
                        BLAS.sgemm(transA: false, transB: false, m: N, n: ic, k: oc, a: a, b: b, c: o)
                        BLAS.sgemm(transA: true, transB: false, m: oc, n: ic, k: N, a: a, b: b, beta: 1, c: wp)
                    }
                    for _ in 0..<cfg.layers {
                        linear(C, 3 * C); linear(C, C); linear(C, 4 * C); linear(4 * C, C)
                        for _ in 0..<(B * H) {   // attention: 2 forward + 4 backward products of (T, T, hd)
                            BLAS.sgemm(transA: false, transB: true, m: T, n: T, k: hd, a: a, lda: 3 * C, b: b, ldb: 3 * C, c: o, ldc: T)
                            BLAS.sgemm(transA: false, transB: false, m: T, n: hd, k: T, a: a, lda: T, b: b, ldb: 3 * C, c: o, ldc: C)
                            BLAS.sgemm(transA: false, transB: true, m: T, n: T, k: hd, a: a, lda: C, b: b, ldb: 3 * C, c: o, ldc: T)
                            BLAS.sgemm(transA: true, transB: false, m: T, n: hd, k: T, a: a, lda: T, b: b, ldb: C, beta: 1, c: o, ldc: 3 * C)
                            BLAS.sgemm(transA: false, transB: false, m: T, n: hd, k: T, a: a, lda: T, b: b, ldb: 3 * C, beta: 1, c: o, ldc: 3 * C)
                            BLAS.sgemm(transA: true, transB: false, m: T, n: hd, k: T, a: a, lda: T, b: b, ldb: 3 * C, beta: 1, c: o, ldc: 3 * C)
                        }
                    }
                    linear(C, V)   // tied head
                } }
            } }
            if i >= 1 { times.append(now() - t0) }
        }
        return times.isEmpty ? 0 : median(times) * 1e3
    }

    /// Each linear layer's three products at the train-step shape (N = B·T rows), alone, on both kernels: OpenBLAS and
    /// Bonfire's own AVX-512 SGEMM (gemm.c), alternating run by run so that both see the same load. CPU time of this
    /// process (all threads), min of 7 per kernel — little moved by other jobs. GFLOP/s = 2·N·IC·OC / time; compare
    /// with the core's FMA peak and with Scripts/bench_gemm_torch.py (the same shapes through torch.matmul). The
    /// `uses` column is the kernel `BLAS.sgemm` picks for the shape (BLAS.kernel(m:n:k:)).
    func benchGemm(_ name: String, _ cfg: GPTConfig) {
        let N = Self.batch * cfg.contextLength, C = cfg.dim
        let x = [Float](repeating: 0.01, count: N * 4 * C), y = [Float](repeating: 0.02, count: N * 4 * C)
        var out = [Float](repeating: 0, count: N * 4 * C), w = [Float](repeating: 0.03, count: 16 * C * C)
        let ownAvailable = Kernels.isa == .avx512   // bfk_sgemm is AVX-512 only
        print("\(name): linear-layer SGEMMs at N=\(N), Bonfire threads \(Parallel.threads), OpenBLAS core \(BLAS.coreName), own kernel \(ownAvailable ? "avx512" : "not available (needs AVX-512)") (CPU time, min of 7)")
        print("  layer        IC    OC     product             OpenBLAS ms GFLOP/s   own ms GFLOP/s  own/OpenBLAS  uses")
        let saved = BLAS.ownKernelEnabled
        defer { BLAS.ownKernelEnabled = saved }
        var total = [0.0, 0.0], chosen = 0.0
        for (label, ic, oc) in [("c_attn", C, 3 * C), ("attn.c_proj", C, C), ("mlp.c_fc", C, 4 * C), ("mlp.c_proj", 4 * C, C)] {
            for mode in ["fwd x·Wᵀ (NT)", "dX = dY·W (NN)", "dW += dYᵀ·x (TN)"] {
                let (m, n, k) = mode.hasPrefix("fwd") ? (N, oc, ic) : mode.hasPrefix("dX") ? (N, ic, oc) : (oc, ic, N)
                var best = [Double.infinity, Double.infinity]
                for _ in 0..<7 {
                    for (i, own) in [false, true].enumerated() where !own || ownAvailable {
                        BLAS.ownKernelEnabled = own
                        let c0 = cpuNow()
                        x.withUnsafeBufferPointer { xb in y.withUnsafeBufferPointer { yb in
                            out.withUnsafeMutableBufferPointer { ob in w.withUnsafeMutableBufferPointer { wb in
                                let a = xb.baseAddress!, b = yb.baseAddress!, o = ob.baseAddress!, wp = wb.baseAddress!
                                switch mode {
                                case "fwd x·Wᵀ (NT)": BLAS.sgemm(transA: false, transB: true, m: m, n: n, k: k, a: a, b: b, c: o)
                                case "dX = dY·W (NN)": BLAS.sgemm(transA: false, transB: false, m: m, n: n, k: k, a: a, b: b, c: o)
                                default: BLAS.sgemm(transA: true, transB: false, m: m, n: n, k: k, a: a, b: b, beta: 1, c: wp)
                                }
                            } }
                        } }
                        best[i] = min(best[i], cpuNow() - c0)
                    }
                }
                BLAS.ownKernelEnabled = saved
                let uses = BLAS.kernel(m: m, n: n, k: k)
                let flops = 2 * Double(N) * Double(ic) * Double(oc) * 1e-9
                total[0] += best[0]
                total[1] += ownAvailable ? best[1] : best[0]
                chosen += uses == .own ? best[1] : best[0]
                let ownText = ownAvailable ? String(format: "%8.3f %7.1f %10.2f×", best[1] * 1e3, flops / best[1], best[0] / best[1])
                                           : "       —       —           —"
                print(String(format: "  %@ %5d %5d  %@ %9.3f %7.1f  %@     %@", label.padding(toLength: 12, withPad: " ", startingAt: 0),
                             ic, oc, mode.padding(toLength: 18, withPad: " ", startingAt: 0), best[0] * 1e3,
                             flops / best[0], ownText, uses.description))
            }
        }
        print(String(format: "  one layer's linear products: OpenBLAS %.2f ms, own %.2f ms (%.2f×), as BLAS.sgemm picks %.2f ms CPU; × %d layers = %.1f ms",
                     total[0] * 1e3, total[1] * 1e3, total[0] / total[1], chosen * 1e3, cfg.layers, chosen * 1e3 * Double(cfg.layers)))
    }

    /// Per-op times of one layer at the train-step shape (B = 32 full-length sequences): fast path vs plain twin.
    func benchOps(_ name: String, _ cfg: GPTConfig) {
        let B = Self.batch, T = cfg.contextLength, C = cfg.dim, H = cfg.heads, N = B * T
        var rng = RNG(seed: 3)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.normal()) } }
        let qkv = randoms(N * 3 * C), dy = randoms(N * C), x4 = randoms(N * 4 * C), x = randoms(N * C)
        let w = randoms(C), b = randoms(C), lengths = [Int](repeating: T, count: B)
        var out = [Float](repeating: 0, count: N * 4 * C), att = [Float](repeating: 0, count: B * H * T * T)
        var dqkv = [Float](repeating: 0, count: N * 3 * C), scratch = [Float](repeating: 0, count: T * T)
        var mean = [Float](repeating: 0, count: N), rstd = mean, dw = w, db = b
        let wq = randoms(3 * C * C), wf = randoms(4 * C * C), bq = randoms(4 * C)
        var out2 = out, dwf = wf
        func minMs(_ body: () -> Void) -> Double {
            var best = Double.infinity
            for _ in 0..<20 { let t0 = now(); body(); best = min(best, now() - t0) }
            return best * 1e3
        }
        let rows: [(String, () -> Void, () -> Void)] = [
            ("attention forward", {
                Ops.attentionForward(out: &out, att: &att, qkv: qkv, lengths: lengths, b: B, t: T, c: C, heads: H)
            }, {
                Ops.attentionForwardPlain(out: &out, att: &att, qkv: qkv, lengths: lengths, b: B, t: T, c: C, heads: H)
            }),
            ("attention backward", {
                Ops.attentionBackward(dqkv: &dqkv, scratch: &scratch, dout: dy, qkv: qkv, att: att, lengths: lengths,
                                      b: B, t: T, c: C, heads: H)
            }, {
                Ops.attentionBackwardPlain(dqkv: &dqkv, scratch: &scratch, dout: dy, qkv: qkv, att: att, lengths: lengths,
                                           b: B, t: T, c: C, heads: H)
            }),
            ("layernorm forward", {
                Ops.layerNormForward(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, n: N, c: C)
            }, {
                Ops.layerNormForwardPlain(out: &out, mean: &mean, rstd: &rstd, inp: x, weight: w, bias: b, n: N, c: C)
            }),
            ("layernorm backward", {
                Ops.layerNormBackward(dinp: &out, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w, mean: mean,
                                      rstd: rstd, n: N, c: C)
            }, {
                Ops.layerNormBackwardPlain(dinp: &out, dweight: &dw, dbias: &db, dout: dy, inp: x, weight: w, mean: mean,
                                           rstd: rstd, n: N, c: C)
            }),
            ("gelu forward", { Ops.geluForward(out: &out, inp: x4, count: N * 4 * C) },
             { Ops.geluForwardPlain(out: &out, inp: x4, count: N * 4 * C) }),
            ("gelu backward", { Ops.geluBackward(dinp: &out, inp: x4, dout: x4, count: N * 4 * C) },
             { Ops.geluBackwardPlain(dinp: &out, inp: x4, dout: x4, count: N * 4 * C) }),
            // Linear layers with GEMM epilogues (fast: fused into the own SGEMM where BLAS.fuses; plain: the separate
            // passes): c_attn (bias), attention c_proj (residual + bias), c_fc (+ GELU), MLP c_proj backward (GELU').
            ("c_attn fwd +bias", {
                Ops.linearForward(out: &out, inp: x, weight: wq, bias: bq, n: N, ic: C, oc: 3 * C)
            }, {
                Ops.linearForwardSeparate(out: &out, inp: x, weight: wq, bias: bq, n: N, ic: C, oc: 3 * C)
            }),
            ("c_proj fwd +res+bias", {
                Ops.linearForward(out: &out, inp: x, weight: wq, bias: bq, n: N, ic: C, oc: C, residual: dy)
            }, {
                Ops.linearForwardSeparate(out: &out, inp: x, weight: wq, bias: bq, n: N, ic: C, oc: C, residual: dy)
            }),
            ("c_fc fwd +GELU +GELU'", {
                Ops.linearForwardGELU(out: &out, geluOut: &out2, keepLocal: true, inp: x, weight: wf, bias: bq, n: N,
                                      ic: C, oc: 4 * C)
            }, {
                Ops.linearForwardGELUSeparate(out: &out, geluOut: &out2, keepLocal: true, inp: x, weight: wf, bias: bq,
                                              n: N, ic: C, oc: 4 * C)
            }),
            // fast: × the GELU' the forward kept; "plain": GELU' computed from the pre-activation (before the seventh
            // pass: the forward above then costs one GELU' less, the "c_fc fwd +GELU" row of earlier passes).
            ("mlp c_proj bwd ×GELU'", {
                Ops.linearBackwardGELU(dinp: &out, geluLocal: x4, dweight: &dwf, dbias: &db, dout: dy, inp: x4,
                                       weight: wf, n: N, ic: 4 * C, oc: C)
            }, {
                Ops.linearBackward(dinp: &out, dweight: &dwf, dbias: &db, dout: dy, inp: x4, weight: wf, n: N,
                                   ic: 4 * C, oc: C, accumulateInput: false)
                out.withUnsafeMutableBufferPointer { o in
                    Ops.geluBackward(dinp: o.baseAddress!, inp: x4, dout: o.baseAddress!, count: N * 4 * C,
                                     accumulate: false)
                }
            }),
        ]
        print("\(name): one layer's ops at B=\(B) T=\(T) C=\(C) H=\(H), Bonfire threads \(Parallel.threads) (min of 20 runs)")
        for (label, fast, plain) in rows {
            let f = minMs(fast), p = minMs(plain)
            print(String(format: "  %-22@ fast %8.3f ms   plain %8.3f ms   plain/fast %.2f", label, f, p, p / f))
        }
    }
}
