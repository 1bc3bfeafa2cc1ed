// The Llama-family decoder (Llama 2/3, SmolLM, Qwen2), parallel to `GPT`:
//   x⁰ = embed[tok]                                                               (B, T, C)
//   for l in 0..<L:  h = RMSNorm₁(x)                                              pre-norm blocks
//                    q = RoPE(h·W_qᵀ [+b_q]) (B,T,H·hd),  k = RoPE(h·W_kᵀ [+b_k]), v = h·W_vᵀ [+b_v]  (B,T,KV·hd)
//                    x ← x + GQA_causal(q, k, v)·W_oᵀ [+b_o]                       query head h reads kv head h/(H/KV)
//                    x ← x + W_down·(silu(W_gate·RMSNorm₂(x)) ⊙ W_up·RMSNorm₂(x))    SwiGLU MLP, hidden F
//   logits = RMSNorm_f(x)·W_headᵀ, W_head = embed (tied) or lm_head.weight;  π_T = softmax(logits / T)
// Parameter names are the Hugging Face ones (model.layers.0.self_attn.q_proj.weight, …), so a directory loads and
// saves tensor by tensor. Same packing, masking, loss and sampling contract as GPT (see GPT.swift, Sampler.swift).
// Not thread-safe: one owner at a time.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
import BonfireMath

struct LlamaBlockOffsets {
    var ln1 = 0, wq = 0, wk = 0, wv = 0, wo = 0, bq = -1, bk = -1, bv = -1, bo = -1
    var ln2 = 0, wg = 0, wu = 0, wd = 0
}

package final class LlamaModel: @unchecked Sendable, LanguageModel {
    package let config: LlamaConfig
    package var params: [Float]
    /// Gradients, shaped like `params`, allocated on first use (`LazyGradients`).
    @LazyGradients package var grads: [Float]
    /// Whether `grads` has been allocated (tests: a sampling-only model must not have).
    package var hasGradients: Bool { _grads.isAllocated }
    package let layout: ParameterLayout
    package var vocabSize: Int { config.vocabSize }
    package var contextLength: Int { config.contextLength }

    let embed: Int, normF: Int, head: Int
    let blocks: [LlamaBlockOffsets]
    let invFreq: [Float]

    // Activations for the current (B, T), stacked over layers.
    var curB = 0, curT = 0
    let ids = IntBuffer(), lengths = IntBuffer(), positions = IntBuffer()
    let x0 = FloatBuffer(), ln1 = FloatBuffer(), rstd1 = FloatBuffer(), q = FloatBuffer(), k = FloatBuffer(), v = FloatBuffer()
    let att = FloatBuffer(), atty = FloatBuffer(), res2 = FloatBuffer(), ln2 = FloatBuffer(), rstd2 = FloatBuffer()
    let gate = FloatBuffer(), up = FloatBuffer(), act = FloatBuffer(), res3 = FloatBuffer()
    let lnf = FloatBuffer(), rstdf = FloatBuffer(), logitsBuf = FloatBuffer()
    // Gradient scratch.
    let dres = FloatBuffer(), dln = FloatBuffer(), datty = FloatBuffer(), dq = FloatBuffer(), dk = FloatBuffer(), dv = FloatBuffer()
    let dact = FloatBuffer(), dgate = FloatBuffer(), dup = FloatBuffer(), dlogits = FloatBuffer(), dlnf = FloatBuffer()
    let attScratch = FloatBuffer()
    // Rotary tables (P, hd/2), grown on demand.
    var ropeRows = 0
    let ropeCos = FloatBuffer(), ropeSin = FloatBuffer()
    // Sampler state (Llama+Sampler.swift).
    let decode = LlamaDecodeState()

    var C: Int { config.dim }
    var Qd: Int { config.heads * config.headDim }
    var Kd: Int { config.kvHeads * config.headDim }

    package static func makeLayout(_ c: LlamaConfig) -> ParameterLayout {
        let C = c.dim, Q = c.heads * c.headDim, K = c.kvHeads * c.headDim, F = c.hidden
        var l = ParameterLayout()
        l.append("model.embed_tokens.weight", shape: [c.vocabSize, C])
        for i in 0..<c.layers {
            let p = "model.layers.\(i)."
            l.append(p + "input_layernorm.weight", shape: [C])
            l.append(p + "self_attn.q_proj.weight", shape: [Q, C])
            if c.qkvBias { l.append(p + "self_attn.q_proj.bias", shape: [Q]) }
            l.append(p + "self_attn.k_proj.weight", shape: [K, C])
            if c.qkvBias { l.append(p + "self_attn.k_proj.bias", shape: [K]) }
            l.append(p + "self_attn.v_proj.weight", shape: [K, C])
            if c.qkvBias { l.append(p + "self_attn.v_proj.bias", shape: [K]) }
            l.append(p + "self_attn.o_proj.weight", shape: [C, Q])
            if c.outputBias { l.append(p + "self_attn.o_proj.bias", shape: [C]) }
            l.append(p + "post_attention_layernorm.weight", shape: [C])
            l.append(p + "mlp.gate_proj.weight", shape: [F, C])
            l.append(p + "mlp.up_proj.weight", shape: [F, C])
            l.append(p + "mlp.down_proj.weight", shape: [C, F])
        }
        l.append("model.norm.weight", shape: [C])
        if !c.tiedHead { l.append("lm_head.weight", shape: [c.vocabSize, C]) }
        return l
    }

    /// HF initialisation: N(0, 0.02) matrices and embeddings, zero biases, unit RMSNorm gains. `randomInit: false`
    /// leaves every parameter 0 (the loader fills them from a checkpoint).
    package init(config c: LlamaConfig, seed: UInt64, randomInit: Bool = true) {
        precondition(c.vocabSize > 0 && c.dim > 0 && c.hidden > 0 && c.layers > 0 && c.heads > 0 && c.kvHeads > 0
                     && c.heads % c.kvHeads == 0 && c.headDim > 0 && c.headDim % 2 == 0 && c.contextLength > 0,
                     "LlamaConfig: bad sizes \(c)")
        config = c
        let lay = LlamaModel.makeLayout(c)
        layout = lay
        params = [Float](repeating: 0, count: layout.totalCount)
        _grads = LazyGradients(count: layout.totalCount)
        embed = layout["model.embed_tokens.weight"].offset
        normF = layout["model.norm.weight"].offset
        head = c.tiedHead ? embed : layout["lm_head.weight"].offset
        blocks = (0..<c.layers).map { i in
            let p = "model.layers.\(i)."
            func o(_ n: String) -> Int { lay.entry(named: p + n)?.offset ?? -1 }
            return LlamaBlockOffsets(ln1: o("input_layernorm.weight"), wq: o("self_attn.q_proj.weight"),
                                     wk: o("self_attn.k_proj.weight"), wv: o("self_attn.v_proj.weight"),
                                     wo: o("self_attn.o_proj.weight"), bq: o("self_attn.q_proj.bias"),
                                     bk: o("self_attn.k_proj.bias"), bv: o("self_attn.v_proj.bias"),
                                     bo: o("self_attn.o_proj.bias"), ln2: o("post_attention_layernorm.weight"),
                                     wg: o("mlp.gate_proj.weight"), wu: o("mlp.up_proj.weight"), wd: o("mlp.down_proj.weight"))
        }
        invFreq = c.inverseFrequencies.map { Float($0) }
        var rng = RNG(seed: seed, stream: 0x6C6C_616D_6169_6E69)   // "llamaini"
        for e in layout.entries where randomInit {
            if e.name.hasSuffix("layernorm.weight") || e.name == "model.norm.weight" {
                for i in e.range { params[i] = 1 }
            } else if e.shape.count >= 2 {
                for i in e.range { params[i] = Float(rng.normal() * 0.02) }
            }
        }
    }

    package func zeroGrad() { grads.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }

    /// cos/sin tables for positions 0..<P: angle = Float(invFreq)·Float(p) in float32, as transformers computes it.
    func ensureRope(_ P: Int) {
        guard P > ropeRows else { return }
        let half = config.headDim / 2
        ropeCos.ensure(P * half); ropeSin.ensure(P * half)
        for p in 0..<P {
            for i in 0..<half {
                let a = Double(invFreq[i] * Float(p))
                ropeCos.ptr[p * half + i] = Float(cos(a)); ropeSin.ptr[p * half + i] = Float(sin(a))
            }
        }
        ropeRows = P
    }

    // MARK: packing and buffers

    func pack(_ sequences: [[Int]]) -> (Int, Int) {
        precondition(!sequences.isEmpty, "LlamaModel: empty batch")
        let B = sequences.count
        var T = 0
        for (b, s) in sequences.enumerated() {
            precondition(!s.isEmpty && s.count <= config.contextLength,
                         "LlamaModel: sequence \(b) has length \(s.count), need 1...\(config.contextLength)")
            T = max(T, s.count)
        }
        ensureActivations(B: B, T: T)
        let V = config.vocabSize
        for (b, s) in sequences.enumerated() {
            lengths.ptr[b] = s.count
            for t in 0..<T {
                let tok = t < s.count ? s[t] : 0
                precondition(tok >= 0 && tok < V, "LlamaModel: token \(tok) at [\(b)][\(t)] out of range 0..<\(V)")
                ids.ptr[b * T + t] = tok
                positions.ptr[b * T + t] = t
            }
        }
        return (B, T)
    }

    func ensureActivations(B: Int, T: Int) {
        curB = B; curT = T
        let L = config.layers, N = B * T, H = config.heads, V = config.vocabSize, F = config.hidden
        ids.ensure(N); lengths.ensure(B); positions.ensure(N)
        x0.ensure(N * C)
        for buf in [ln1, res2, ln2, res3] { buf.ensure(L * N * C) }
        for buf in [rstd1, rstd2] { buf.ensure(L * N) }
        q.ensure(L * N * Qd); atty.ensure(L * N * Qd); k.ensure(L * N * Kd); v.ensure(L * N * Kd)
        att.ensure(L * B * H * T * T)
        for buf in [gate, up, act] { buf.ensure(L * N * F) }
        lnf.ensure(N * C); rstdf.ensure(N); logitsBuf.ensure(N * V)
        dres.ensure(N * C); dln.ensure(N * C); dlnf.ensure(N * C); datty.ensure(N * Qd); dq.ensure(N * Qd)
        dk.ensure(N * Kd); dv.ensure(N * Kd)
        for buf in [dact, dgate, dup] { buf.ensure(N * F) }
        dlogits.ensure(N * V); attScratch.ensure(T * T)
        ensureRope(T)
    }

    // MARK: forward

    /// Embedding → blocks → final RMSNorm for the packed batch; fills every activation up to `lnf`.
    func forwardTrunk(_ p: UnsafePointer<Float>, B: Int, T: Int) {
        let N = B * T, H = config.heads, KV = config.kvHeads, hd = config.headDim, F = config.hidden, eps = config.rmsEps
        let Q = Qd, K = Kd
        Ops.embeddingForward(out: x0.ptr, ids: ids.ptr, table: p + embed, n: N, c: C, vocab: config.vocabSize)
        func bias(_ o: Int) -> UnsafePointer<Float>? { o >= 0 ? p + o : nil }
        for (l, o) in blocks.enumerated() {
            let resIn = l == 0 ? UnsafePointer(x0.ptr) : UnsafePointer(res3.ptr + (l - 1) * N * C)
            let ln1l = ln1.ptr + l * N * C, ql = q.ptr + l * N * Q, kl = k.ptr + l * N * K, vl = v.ptr + l * N * K
            let attl = att.ptr + l * B * H * T * T, attyl = atty.ptr + l * N * Q, res2l = res2.ptr + l * N * C
            let ln2l = ln2.ptr + l * N * C, gl = gate.ptr + l * N * F, ul = up.ptr + l * N * F, al = act.ptr + l * N * F
            let res3l = res3.ptr + l * N * C
            Ops.rmsNormForward(out: ln1l, rstd: rstd1.ptr + l * N, inp: resIn, weight: p + o.ln1, n: N, c: C, eps: eps)
            Ops.linearForward(out: ql, inp: ln1l, weight: p + o.wq, bias: bias(o.bq), n: N, ic: C, oc: Q)
            Ops.linearForward(out: kl, inp: ln1l, weight: p + o.wk, bias: bias(o.bk), n: N, ic: C, oc: K)
            Ops.linearForward(out: vl, inp: ln1l, weight: p + o.wv, bias: bias(o.bv), n: N, ic: C, oc: K)
            Ops.rope(ql, positions: positions.ptr, n: N, heads: H, headDim: hd, cos: ropeCos.ptr, sin: ropeSin.ptr)
            Ops.rope(kl, positions: positions.ptr, n: N, heads: KV, headDim: hd, cos: ropeCos.ptr, sin: ropeSin.ptr)
            Ops.gqaAttentionForward(out: attyl, att: attl, q: ql, k: kl, v: vl, lengths: lengths.ptr, b: B, t: T,
                                    heads: H, kvHeads: KV, headDim: hd)
            res2l.update(from: resIn, count: N * C)
            Ops.linearForward(out: res2l, inp: attyl, weight: p + o.wo, bias: bias(o.bo), n: N, ic: Q, oc: C, accumulate: true)
            Ops.rmsNormForward(out: ln2l, rstd: rstd2.ptr + l * N, inp: res2l, weight: p + o.ln2, n: N, c: C, eps: eps)
            Ops.linearForward(out: gl, inp: ln2l, weight: p + o.wg, bias: nil, n: N, ic: C, oc: F)
            Ops.linearForward(out: ul, inp: ln2l, weight: p + o.wu, bias: nil, n: N, ic: C, oc: F)
            Ops.swigluForward(out: al, gate: gl, up: ul, count: N * F)
            res3l.update(from: res2l, count: N * C)
            Ops.linearForward(out: res3l, inp: al, weight: p + o.wd, bias: nil, n: N, ic: F, oc: C, accumulate: true)
        }
        let last = UnsafePointer(res3.ptr + (config.layers - 1) * N * C)
        Ops.rmsNormForward(out: lnf.ptr, rstd: rstdf.ptr, inp: last, weight: p + normF, n: N, c: C, eps: eps)
    }

    /// logits (B·T, V) = lnf · W_headᵀ.
    func forwardLogits(_ p: UnsafePointer<Float>, N: Int) {
        Ops.linearForward(out: logitsBuf.ptr, inp: lnf.ptr, weight: p + head, bias: nil, n: N, ic: C, oc: config.vocabSize)
    }

    /// Logits of the lnf rows `rows` only, into logitsBuf rows 0..<rows.count (GPT.forwardLogits(_:rows:)).
    func forwardLogits(_ p: UnsafePointer<Float>, rows: [Int]) {
        gatherRowsInPlace(lnf.ptr, rows: rows, width: C)
        forwardLogits(p, N: rows.count)
    }

    // MARK: backward

    /// Given dlnf (B·T, C), backpropagates through the final norm, every block and the embedding into `g`.
    func backwardTrunk(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, B: Int, T: Int) {
        let N = B * T, H = config.heads, KV = config.kvHeads, hd = config.headDim, F = config.hidden
        let Q = Qd, K = Kd
        func gb(_ o: Int) -> UnsafeMutablePointer<Float>? { o >= 0 ? g + o : nil }
        dres.zero(N * C)
        let last = UnsafePointer(res3.ptr + (config.layers - 1) * N * C)
        Ops.rmsNormBackward(dinp: dres.ptr, dweight: g + normF, dout: dlnf.ptr, inp: last, weight: p + normF,
                            rstd: rstdf.ptr, n: N, c: C)
        for l in stride(from: config.layers - 1, through: 0, by: -1) {
            let o = blocks[l]
            let resIn = l == 0 ? UnsafePointer(x0.ptr) : UnsafePointer(res3.ptr + (l - 1) * N * C)
            let ln1l = ln1.ptr + l * N * C, ql = q.ptr + l * N * Q, kl = k.ptr + l * N * K, vl = v.ptr + l * N * K
            let attl = att.ptr + l * B * H * T * T, attyl = atty.ptr + l * N * Q, res2l = res2.ptr + l * N * C
            let ln2l = ln2.ptr + l * N * C, gl = gate.ptr + l * N * F, ul = up.ptr + l * N * F, al = act.ptr + l * N * F
            // MLP: res3 = res2 + W_down·(silu(gate) ⊙ up)
            Ops.linearBackward(dinp: dact.ptr, dweight: g + o.wd, dbias: nil, dout: dres.ptr, inp: al, weight: p + o.wd,
                               n: N, ic: F, oc: C, accumulateInput: false)
            dgate.zero(N * F); dup.zero(N * F)
            Ops.swigluBackward(dgate: dgate.ptr, dup: dup.ptr, dout: dact.ptr, gate: gl, up: ul, count: N * F)
            Ops.linearBackward(dinp: dln.ptr, dweight: g + o.wg, dbias: nil, dout: dgate.ptr, inp: ln2l, weight: p + o.wg,
                               n: N, ic: C, oc: F, accumulateInput: false)
            Ops.linearBackward(dinp: dln.ptr, dweight: g + o.wu, dbias: nil, dout: dup.ptr, inp: ln2l, weight: p + o.wu,
                               n: N, ic: C, oc: F, accumulateInput: true)
            Ops.rmsNormBackward(dinp: dres.ptr, dweight: g + o.ln2, dout: dln.ptr, inp: res2l, weight: p + o.ln2,
                                rstd: rstd2.ptr + l * N, n: N, c: C)
            // Attention: res2 = resIn + W_o·GQA(RoPE(q), RoPE(k), v)
            Ops.linearBackward(dinp: datty.ptr, dweight: g + o.wo, dbias: gb(o.bo), dout: dres.ptr, inp: attyl,
                               weight: p + o.wo, n: N, ic: Q, oc: C, accumulateInput: false)
            dq.zero(N * Q); dk.zero(N * K); dv.zero(N * K)
            Ops.gqaAttentionBackward(dq: dq.ptr, dk: dk.ptr, dv: dv.ptr, scratch: attScratch.ptr, dout: datty.ptr,
                                     q: ql, k: kl, v: vl, att: attl, lengths: lengths.ptr, b: B, t: T,
                                     heads: H, kvHeads: KV, headDim: hd)
            Ops.rope(dq.ptr, positions: positions.ptr, n: N, heads: H, headDim: hd, cos: ropeCos.ptr, sin: ropeSin.ptr, inverse: true)
            Ops.rope(dk.ptr, positions: positions.ptr, n: N, heads: KV, headDim: hd, cos: ropeCos.ptr, sin: ropeSin.ptr, inverse: true)
            Ops.linearBackward(dinp: dln.ptr, dweight: g + o.wq, dbias: gb(o.bq), dout: dq.ptr, inp: ln1l, weight: p + o.wq,
                               n: N, ic: C, oc: Q, accumulateInput: false)
            Ops.linearBackward(dinp: dln.ptr, dweight: g + o.wk, dbias: gb(o.bk), dout: dk.ptr, inp: ln1l, weight: p + o.wk,
                               n: N, ic: C, oc: K, accumulateInput: true)
            Ops.linearBackward(dinp: dln.ptr, dweight: g + o.wv, dbias: gb(o.bv), dout: dv.ptr, inp: ln1l, weight: p + o.wv,
                               n: N, ic: C, oc: K, accumulateInput: true)
            Ops.rmsNormBackward(dinp: dres.ptr, dweight: g + o.ln1, dout: dln.ptr, inp: resIn, weight: p + o.ln1,
                                rstd: rstd1.ptr + l * N, n: N, c: C)
        }
        // Embedding (real rows only; pad rows carry zero gradient).
        for b in 0..<B {
            for t in 0..<lengths.ptr[b] {
                let row = dres.ptr + (b * T + t) * C, dt = g + embed + ids.ptr[b * T + t] * C
                for j in 0..<C { dt[j] += row[j] }
            }
        }
    }

    // MARK: public API (same contract as GPT)

    package func tokenLogProbs(_ sequences: [[Int]], temperature: Float = 1) -> [[Float]] {
        let (B, T) = pack(sequences)
        let V = config.vocabSize
        let invT = 1 / GPT.logProbTemperature(temperature)
        params.withUnsafeBufferPointer { pb in
            forwardTrunk(pb.baseAddress!, B: B, T: T)
            forwardLogits(pb.baseAddress!, N: B * T)
        }
        return (0..<B).map { b in
            (0..<max(0, lengths.ptr[b] - 1)).map { t in
                let row = logitsBuf.ptr + (b * T + t) * V
                return row[ids.ptr[b * T + t + 1]] * invT - Ops.logSumExp(row, V, scale: invT)
            }
        }
    }

    @discardableResult
    package func forwardBackward(_ sequences: [[Int]], temperature: Float = 1, entropyCoefficient: Float = 0,
                                 weights: ([[Float]]) -> [[Float]]) -> ForwardStats {
        let (B, T) = pack(sequences)
        let V = config.vocabSize, N = B * T
        let invT = 1 / GPT.logProbTemperature(temperature)
        var stats = ForwardStats(loss: 0, meanEntropy: 0, tokenLogProbs: [])
        params.withUnsafeBufferPointer { pb in
            grads.withUnsafeMutableBufferPointer { gbuf in
                let p = pb.baseAddress!, g = gbuf.baseAddress!
                forwardTrunk(p, B: B, T: T)
                forwardLogits(p, N: N)
                let lps: [[Float]] = (0..<B).map { b in
                    (0..<max(0, lengths.ptr[b] - 1)).map { t in
                        let row = logitsBuf.ptr + (b * T + t) * V
                        return row[ids.ptr[b * T + t + 1]] * invT - Ops.logSumExp(row, V, scale: invT)
                    }
                }
                let w = weights(lps)
                precondition(w.count == B, "forwardBackward: weights have \(w.count) rows, batch is \(B)")
                dlogits.zero(N * V)
                var loss: Double = 0, entSum: Double = 0, entCount = 0
                for b in 0..<B {
                    precondition(w[b].count == lps[b].count,
                                 "forwardBackward: weights[\(b)] has \(w[b].count) entries, need \(lps[b].count)")
                    for t in 0..<lps[b].count where w[b][t] != 0 {
                        let r = (b * T + t) * V
                        let (lp, h) = Ops.tokenLossBackward(dlogits: dlogits.ptr + r, logits: logitsBuf.ptr + r, v: V,
                                                            target: ids.ptr[b * T + t + 1], weight: w[b][t],
                                                            entropyCoefficient: entropyCoefficient, invTemperature: invT)
                        loss -= Double(w[b][t]) * Double(lp) + Double(entropyCoefficient) * Double(h)
                        entSum += Double(h); entCount += 1
                    }
                }
                stats = ForwardStats(loss: Float(loss), meanEntropy: entCount > 0 ? Float(entSum / Double(entCount)) : 0,
                                     tokenLogProbs: lps)
                // Head: dlnf = dlogits · W_head, dW_head += dlogitsᵀ · lnf (W_head is the embedding when tied).
                Ops.linearBackward(dinp: dlnf.ptr, dweight: g + head, dbias: nil, dout: dlogits.ptr, inp: lnf.ptr,
                                   weight: p + head, n: N, ic: C, oc: V, accumulateInput: false)
                backwardTrunk(p, g, B: B, T: T)
            }
        }
        return stats
    }

    package func logits(_ sequences: [[Int]]) -> [[[Float]]] {
        let (B, T) = pack(sequences)
        let V = config.vocabSize
        params.withUnsafeBufferPointer { pb in
            forwardTrunk(pb.baseAddress!, B: B, T: T)
            forwardLogits(pb.baseAddress!, N: B * T)
        }
        return (0..<B).map { b in
            (0..<lengths.ptr[b]).map { t in Array(UnsafeBufferPointer(start: logitsBuf.ptr + (b * T + t) * V, count: V)) }
        }
    }
}
