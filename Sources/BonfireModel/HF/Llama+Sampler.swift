// KV-cache sampling for LlamaModel, the same contract as GPT.sample (Sampler.swift): prompts are prefilled in one
// full forward and their rotated K and V rows copied into every slot of the BoN group (slot = prompt·N + sample);
// each step feeds one token per unfinished slot, linear layers run over the A active rows, attention reads the
// slot's own cache. Cache layout (L, S, KV, maxLen, hd) with maxLen = min(contextLength, longest prompt +
// maxNewTokens), so a model with a 128k context does not allocate 128k rows. Token choice and reported log-probs
// are GPT's (the one `drawToken` of Sampler.swift: same RNG draws, same tie rules).

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
import BonfireMath

final class LlamaDecodeState {
    var slots = 0, maxLen = 0
    let x = FloatBuffer(), ln = FloatBuffer(), rstd = FloatBuffer(), q = FloatBuffer(), k = FloatBuffer(), v = FloatBuffer()
    let atty = FloatBuffer(), gate = FloatBuffer(), up = FloatBuffer(), act = FloatBuffer()
    let logits = FloatBuffer(), slotLogits = FloatBuffer(), scores = FloatBuffer()
    let kCache = FloatBuffer(), vCache = FloatBuffer()   // (L, S, KV, maxLen, hd) each
    let tok = IntBuffer(), pos = IntBuffer(), probs = FloatBuffer(), tmp = FloatBuffer()

    func ensure(slots s: Int, maxLen m: Int, config c: LlamaConfig) {
        slots = s; maxLen = m
        let C = c.dim, Q = c.heads * c.headDim, K = c.kvHeads * c.headDim
        x.ensure(s * C); ln.ensure(s * C); rstd.ensure(s); q.ensure(s * Q); atty.ensure(s * Q); k.ensure(s * K); v.ensure(s * K)
        for b in [gate, up, act] { b.ensure(s * c.hidden) }
        logits.ensure(s * c.vocabSize); slotLogits.ensure(s * c.vocabSize); scores.ensure(m)
        kCache.ensure(c.layers * s * m * K); vCache.ensure(c.layers * s * m * K)
        tok.ensure(s); pos.ensure(s); probs.ensure(c.vocabSize)
        tmp.ensure(s * max(c.vocabSize, c.hidden, Q, C))
    }
}

extension LlamaModel {
    package func sample(prompts: [[Int]], samplesPerPrompt: Int, config sc: SamplingConfig, rng: inout RNG) -> [[SampledResponse]] {
        precondition(samplesPerPrompt >= 1, "sample: samplesPerPrompt must be ≥ 1, got \(samplesPerPrompt)")
        precondition(sc.topK >= 0 && sc.topP > 0, "sample: need topK ≥ 0 and topP > 0, got \(sc.topK), \(sc.topP)")
        if prompts.isEmpty { return [] }
        let P = prompts.count, NS = samplesPerPrompt, S = P * NS
        let V = config.vocabSize, ctx = config.contextLength, L = config.layers, K = Kd
        let d = decode
        var out = [[SampledResponse]](repeating: [SampledResponse](repeating: SampledResponse(), count: NS), count: P)
        var length = [Int](repeating: 0, count: S)
        var done = [Bool](repeating: false, count: S)
        let longest = prompts.map(\.count).max() ?? 1
        let maxLen = min(ctx, longest + max(sc.maxNewTokens, 0))

        params.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            let (B, T) = pack(prompts)
            forwardTrunk(p, B: B, T: T)
            forwardLogits(p, rows: prompts.indices.map { $0 * T + prompts[$0].count - 1 })   // each prompt's last row
            d.ensure(slots: S, maxLen: maxLen, config: config)
            ensureRope(maxLen)
            let N = B * T
            for pi in 0..<P {
                let len = prompts[pi].count
                for s in (pi * NS)..<((pi + 1) * NS) {
                    length[s] = len
                    done[s] = len >= ctx || sc.maxNewTokens <= 0
                    d.slotLogits.ptr.advanced(by: s * V).update(from: logitsBuf.ptr + pi * V, count: V)
                    for l in 0..<L {
                        for t in 0..<len {
                            let row = l * N * K + (pi * T + t) * K
                            storeKV(d, layer: l, slot: s, pos: t, k: k.ptr + row, v: v.ptr + row)
                        }
                    }
                }
            }
            var active: [Int] = []
            while true {
                active.removeAll(keepingCapacity: true)
                for s in 0..<S where !done[s] {
                    let (tok, lp, h) = drawToken(d.slotLogits.ptr + s * V, V: V, config: sc, rng: &rng, probs: d.probs.ptr)
                    out[s / NS][s % NS].tokens.append(tok)
                    out[s / NS][s % NS].logProbs.append(lp)
                    if sc.recordEntropy { out[s / NS][s % NS].entropies.append(h) }
                    let newLen = length[s] + 1
                    if tok == sc.stopToken || out[s / NS][s % NS].tokens.count >= sc.maxNewTokens || newLen >= ctx || newLen > maxLen {
                        done[s] = true
                    } else {
                        d.tok.ptr[active.count] = tok
                        d.pos.ptr[active.count] = length[s]
                        active.append(s)
                    }
                    length[s] = newLen
                }
                if active.isEmpty { break }
                decodeStep(p, active: active, state: d)
                for (r, s) in active.enumerated() {
                    d.slotLogits.ptr.advanced(by: s * V).update(from: d.logits.ptr + r * V, count: V)
                }
            }
        }
        return out
    }

    /// Writes one position's rotated key row and value row (KV·hd each) into slot `s`'s cache.
    @inline(__always)
    func storeKV(_ d: LlamaDecodeState, layer l: Int, slot s: Int, pos: Int, k kr: UnsafePointer<Float>, v vr: UnsafePointer<Float>) {
        let KV = config.kvHeads, hd = config.headDim, m = d.maxLen
        for g in 0..<KV {
            let off = (((l * d.slots + s) * KV + g) * m + pos) * hd
            (d.kCache.ptr + off).update(from: kr + g * hd, count: hd)
            (d.vCache.ptr + off).update(from: vr + g * hd, count: hd)
        }
    }

    /// Feeds token d.tok[r] at position d.pos[r] for slot active[r]; writes logits (A, V) to d.logits.
    func decodeStep(_ p: UnsafePointer<Float>, active: [Int], state d: LlamaDecodeState) {
        let A = active.count, H = config.heads, KV = config.kvHeads, hd = config.headDim, F = config.hidden
        let Q = Qd, K = Kd, group = H / KV, m = d.maxLen, eps = config.rmsEps
        let scale = 1 / Float(hd).squareRoot()
        func bias(_ o: Int) -> UnsafePointer<Float>? { o >= 0 ? p + o : nil }
        for r in 0..<A { (d.x.ptr + r * C).update(from: p + embed + d.tok.ptr[r] * C, count: C) }
        for (l, o) in blocks.enumerated() {
            Ops.rmsNormForward(out: d.ln.ptr, rstd: d.rstd.ptr, inp: d.x.ptr, weight: p + o.ln1, n: A, c: C, eps: eps)
            linear(d, out: d.q.ptr, inp: d.ln.ptr, weight: p + o.wq, bias: bias(o.bq), n: A, ic: C, oc: Q)
            linear(d, out: d.k.ptr, inp: d.ln.ptr, weight: p + o.wk, bias: bias(o.bk), n: A, ic: C, oc: K)
            linear(d, out: d.v.ptr, inp: d.ln.ptr, weight: p + o.wv, bias: bias(o.bv), n: A, ic: C, oc: K)
            Ops.rope(d.q.ptr, positions: d.pos.ptr, n: A, heads: H, headDim: hd, cos: ropeCos.ptr, sin: ropeSin.ptr)
            Ops.rope(d.k.ptr, positions: d.pos.ptr, n: A, heads: KV, headDim: hd, cos: ropeCos.ptr, sin: ropeSin.ptr)
            for r in 0..<A {
                let s = active[r], pos = d.pos.ptr[r]
                storeKV(d, layer: l, slot: s, pos: pos, k: d.k.ptr + r * K, v: d.v.ptr + r * K)
                let sc = d.scores.ptr
                for h in 0..<H {
                    let g = h / group
                    let qh = d.q.ptr + r * Q + h * hd
                    let base = ((l * d.slots + s) * KV + g) * m * hd
                    let kb = d.kCache.ptr + base, vb = d.vCache.ptr + base
                    var mx = -Float.infinity
                    for j in 0...pos { sc[j] = Ops.dot(qh, kb + j * hd, hd) * scale; mx = max(mx, sc[j]) }
                    var sum: Float = 0
                    for j in 0...pos { let e = expf(sc[j] - mx); sc[j] = e; sum += e }
                    let inv = 1 / sum
                    let y = d.atty.ptr + r * Q + h * hd
                    for i in 0..<hd { y[i] = 0 }
                    for j in 0...pos {
                        let w = sc[j] * inv, vr = vb + j * hd
                        for i in 0..<hd { y[i] += w * vr[i] }
                    }
                }
            }
            linear(d, out: d.x.ptr, inp: d.atty.ptr, weight: p + o.wo, bias: bias(o.bo), n: A, ic: Q, oc: C, accumulate: true)
            Ops.rmsNormForward(out: d.ln.ptr, rstd: d.rstd.ptr, inp: d.x.ptr, weight: p + o.ln2, n: A, c: C, eps: eps)
            linear(d, out: d.gate.ptr, inp: d.ln.ptr, weight: p + o.wg, bias: nil, n: A, ic: C, oc: F)
            linear(d, out: d.up.ptr, inp: d.ln.ptr, weight: p + o.wu, bias: nil, n: A, ic: C, oc: F)
            Ops.swigluForward(out: d.act.ptr, gate: d.gate.ptr, up: d.up.ptr, count: A * F)
            linear(d, out: d.x.ptr, inp: d.act.ptr, weight: p + o.wd, bias: nil, n: A, ic: F, oc: C, accumulate: true)
        }
        Ops.rmsNormForward(out: d.ln.ptr, rstd: d.rstd.ptr, inp: d.x.ptr, weight: p + normF, n: A, c: C, eps: eps)
        linear(d, out: d.logits.ptr, inp: d.ln.ptr, weight: p + head, bias: nil, n: A, ic: C, oc: config.vocabSize)
    }

    /// Which product the decode-time linear layers use (benchmark switch, `bonfire-bench hf --decode-linear`):
    /// true = W · inpᵀ then transpose (GPT's sampler), false = inp · Wᵀ (Ops.linearForward).
    nonisolated(unsafe) package static var decodeWeightTimesInput = false

    /// Decode-time linear layer for few rows, as GPT's sampler does it: tmp (OC, n) = W · inpᵀ, then
    /// out (n, OC) (+)= tmpᵀ + bias.
    func linear(_ d: LlamaDecodeState, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                bias: UnsafePointer<Float>?, n: Int, ic: Int, oc: Int, accumulate: Bool = false) {
        if !LlamaModel.decodeWeightTimesInput {
            Ops.linearForward(out: out, inp: inp, weight: weight, bias: bias, n: n, ic: ic, oc: oc, accumulate: accumulate)
            return
        }
        let t = d.tmp.ptr
        BLAS.sgemm(transA: false, transB: true, m: oc, n: n, k: ic, a: weight, b: inp, beta: 0, c: t)
        for r in 0..<n {
            let o = out + r * oc
            if !accumulate { for j in 0..<oc { o[j] = 0 } }
            if let bias { for j in 0..<oc { o[j] += t[j * n + r] + bias[j] } } else { for j in 0..<oc { o[j] += t[j * n + r] } }
        }
    }

    /// Logits from the KV-cache path: prefill `prompt`, then feed `continuation` one token at a time (rows for
    /// positions prompt.count − 1 … total − 1). For tests.
    package func cachedLogits(prompt: [Int], continuation: [Int]) -> [[Float]] {
        let total = prompt.count + continuation.count
        precondition(total <= config.contextLength,
                     "cachedLogits: \(prompt.count) + \(continuation.count) tokens exceed contextLength \(config.contextLength)")
        let V = config.vocabSize, K = Kd
        let d = decode
        var rows: [[Float]] = []
        params.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            let (B, T) = pack([prompt])
            forwardTrunk(p, B: B, T: T)
            forwardLogits(p, N: B * T)
            d.ensure(slots: 1, maxLen: total, config: config)
            ensureRope(total)
            rows.append(Array(UnsafeBufferPointer(start: logitsBuf.ptr + (prompt.count - 1) * V, count: V)))
            for l in 0..<config.layers {
                for t in 0..<prompt.count {
                    let row = l * T * K + t * K
                    storeKV(d, layer: l, slot: 0, pos: t, k: k.ptr + row, v: v.ptr + row)
                }
            }
            for (i, tok) in continuation.enumerated() {
                precondition(tok >= 0 && tok < V, "cachedLogits: token \(tok) out of range 0..<\(V)")
                d.tok.ptr[0] = tok; d.pos.ptr[0] = prompt.count + i
                decodeStep(p, active: [0], state: d)
                rows.append(Array(UnsafeBufferPointer(start: d.logits.ptr, count: V)))
            }
        }
        return rows
    }
}
