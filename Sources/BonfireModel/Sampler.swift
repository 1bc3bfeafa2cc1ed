// Batched KV-cache sampling. All prompts are prefilled in one full forward (each prompt's K/V rows are stored once,
// in the cache slot of its BoN group's first sample: slot = prompt·N + sample); then each step feeds one token for
// every unfinished slot: the linear layers run over the A active rows at once, attention reads the group's shared
// prompt rows and then the slot's own rows.
// Sampling distribution: softmax(logits / T), restricted first to the top-k logits (k > 0) and then to the
// smallest prefix (by probability) whose mass is ≥ top-p; T ≤ 1e-6 is greedy (argmax, ties → lowest id).
// Reported log-probs are log π_T(token) under the temperature-scaled FULL softmax — the same definition as
// `GPT.tokenLogProbs(temperature:)` — with T replaced by 1 for greedy decoding (`GPT.logProbTemperature`).
// A sequence stops after its stop token, after maxNewTokens, or when prompt + response fills contextLength.
// Deterministic for a given RNG state: one uniform draw per (step, active slot) in slot order.
// With `recordEntropy`, each response also carries the entropy (nats) of the distribution each token was drawn from
// — softmax(logits / T) after the top-k / top-p cut, renormalised; 0 for greedy — for the evaluator's diversity
// measure (Evaluator.swift). It does not change the draws.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
import BonfireMath

package struct SamplingConfig: Codable, Equatable, Sendable {
    /// Softmax temperature; ≤ 1e-6 means greedy.
    package var temperature: Float = 1
    /// Keep only the k most likely tokens (0 = off).
    package var topK: Int = 0
    /// Nucleus sampling mass (1 = off).
    package var topP: Float = 1
    /// Maximum number of response tokens (including the stop token).
    package var maxNewTokens: Int = 32
    /// Token that ends a response (included in it); negative = none.
    package var stopToken: Int = Tokenizer.eos
    /// Fill `SampledResponse.entropies` (one more pass over the vocabulary per token). Not encoded. Default false.
    package var recordEntropy = false

    enum CodingKeys: String, CodingKey { case temperature, topK, topP, maxNewTokens, stopToken }

    package init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, maxNewTokens: Int = 32,
                 stopToken: Int = Tokenizer.eos, recordEntropy: Bool = false) {
        self.temperature = temperature; self.topK = topK; self.topP = topP
        self.maxNewTokens = maxNewTokens; self.stopToken = stopToken; self.recordEntropy = recordEntropy
    }
}

package struct SampledResponse: Sendable, Equatable {
    /// Response only; includes the stop token if it was produced.
    package var tokens: [Int]
    /// log π_T per response token (same definition as `tokenLogProbs(temperature:)`).
    package var logProbs: [Float]
    /// With `SamplingConfig.recordEntropy`: per response token, the entropy (nats) of the distribution it was drawn
    /// from (after top-k / top-p; 0 when greedy). Empty otherwise.
    package var entropies: [Float]
    package init(tokens: [Int] = [], logProbs: [Float] = [], entropies: [Float] = []) {
        self.tokens = tokens; self.logProbs = logProbs; self.entropies = entropies
    }
}

/// Entropy (nats) of the distribution p_j ∝ pr[j] = exp(z_j − mx) over the kept ids (`ids[0..<keep]`, or all V when
/// `ids` is nil), from the unnormalised weights and the scaled logits z_j = row[j]·invT:
///   H = log Σ pr − Σ pr·(z − mx) / Σ pr.
/// Shared by GPT's and LlamaModel's samplers (`drawToken`).
func samplingEntropy(_ row: UnsafePointer<Float>, _ pr: UnsafePointer<Float>, V: Int, invT: Float, mx: Float,
                     ids: [Int]?, keep: Int) -> Float {
    var total: Double = 0, dot: Double = 0
    func add(_ j: Int) {
        let w = Double(pr[j])
        if w > 0 { total += w; dot += w * Double(row[j] * invT - mx) }
    }
    if let ids { for i in 0..<keep { add(ids[i]) } } else { for j in 0..<V { add(j) } }
    guard total > 0 else { return 0 }
    return Float(max(0, log(total) - dot / total))
}

/// Draws one token from a logits row (V) and returns it with its log π_T under the full softmax and (with
/// `recordEntropy`, else 0) the entropy of the distribution it was drawn from. `pr`: V floats of scratch.
/// Shared by GPT's and LlamaModel's samplers (same RNG draws, same tie rules).
package func drawToken(_ row: UnsafeMutablePointer<Float>, V: Int, config sc: SamplingConfig, rng: inout RNG,
                       probs pr: UnsafeMutablePointer<Float>) -> (Int, Float, Float) {
    let lpInvT = 1 / GPT.logProbTemperature(sc.temperature)
    let lse: Float
    var tok = 0
    var h: Float = 0
    if sc.temperature <= 1e-6 {
        lse = Ops.logSumExp(row, V, scale: lpInvT)
        for j in 1..<V where row[j] > row[tok] { tok = j }
    } else {
        let invT = 1 / sc.temperature
        var mx = -Float.infinity
        for j in 0..<V { mx = max(mx, row[j] * invT) }
        for j in 0..<V { pr[j] = expf(row[j] * invT - mx) }
        if invT == lpInvT {
            // Ops.logSumExp(row, V, scale: lpInvT) from the same max and the same exps, summed in the same
            // order: the same bits without a second exp pass over the vocabulary.
            var s: Float = 0
            for j in 0..<V { s += pr[j] }
            lse = mx + logf(s)
        } else {
            lse = Ops.logSumExp(row, V, scale: lpInvT)
        }
        let useK = sc.topK > 0 && sc.topK < V
        if !useK && sc.topP >= 1 {
            var total: Double = 0
            for j in 0..<V { total += Double(pr[j]) }
            var u = rng.uniform() * total
            tok = -1
            for j in 0..<V where pr[j] > 0 {
                u -= Double(pr[j])
                tok = j
                if u < 0 { break }
            }
            if sc.recordEntropy { h = samplingEntropy(row, pr, V: V, invT: invT, mx: mx, ids: nil, keep: V) }
        } else {
            // Sort ids by probability (descending, ties by id), keep top-k, then the top-p prefix.
            var ids = Array(0..<V)
            ids.sort { pr[$0] != pr[$1] ? pr[$0] > pr[$1] : $0 < $1 }
            var keep = useK ? sc.topK : V
            var total: Double = 0
            for i in 0..<keep { total += Double(pr[ids[i]]) }
            if sc.topP < 1 {
                var cum: Double = 0
                for i in 0..<keep {
                    cum += Double(pr[ids[i]])
                    if cum >= Double(sc.topP) * total { keep = i + 1; break }
                }
                total = 0
                for i in 0..<keep { total += Double(pr[ids[i]]) }
            }
            var u = rng.uniform() * total
            tok = ids[keep - 1]
            for i in 0..<keep {
                u -= Double(pr[ids[i]])
                if u < 0 { tok = ids[i]; break }
            }
            if sc.recordEntropy { h = samplingEntropy(row, pr, V: V, invT: invT, mx: mx, ids: ids, keep: keep) }
        }
    }
    return (tok, row[tok] * lpInvT - lse, h)
}

/// Moves row rows[i] (of `width` floats) of `buf` to row i, for ascending `rows` with rows[i] ≥ i (each prompt's
/// last row of a packed batch): every source row is read before a later destination can overwrite it.
func gatherRowsInPlace(_ buf: UnsafeMutablePointer<Float>, rows: [Int], width: Int) {
    for (i, r) in rows.enumerated() {
        precondition(r >= i && (i == 0 || r > rows[i - 1]), "gatherRowsInPlace: rows must ascend with rows[i] ≥ i, got \(rows)")
        if r != i { (buf + i * width).update(from: buf + r * width, count: width) }
    }
}

/// Buffers of the incremental decoder, sized for `slots` sequences (grown on demand), all cache-line aligned.
final class DecodeState {
    var slots = 0
    let x = FloatBuffer(), ln = FloatBuffer(), mean = FloatBuffer(), rstd = FloatBuffer()
    let qkv = FloatBuffer(), atty = FloatBuffer(), fch = FloatBuffer(), fchG = FloatBuffer()
    let logits = FloatBuffer(), slotLogits = FloatBuffer(), scores = FloatBuffer()
    let tmp = FloatBuffer()
    let kCache = FloatBuffer(), vCache = FloatBuffer()   // (L, S, H, span, hd) each
    /// Positions reserved per slot in the cache: prompt + maxNewTokens of the current call, at most contextLength
    /// (reserving the whole context made a 124M-parameter actor with 64 slots hold 4.8 GB of cache for 72 tokens).
    var span = 0
    let tok = IntBuffer(), probs = FloatBuffer(), order = IntBuffer()
    /// Shared prompt rows: slot s reads cache positions < prefix[s] (its prompt) from the slot of its group's first
    /// sample, s / samplesPerPrompt · samplesPerPrompt, and the later ones from its own slot. The prompt's keys and
    /// values are the same for every sample of a BoN group: stored once, they come from L3 once per step and from
    /// L1/L2 for the group's other samples (on `tiny` at 32 samples, 8 of ≈ 32 rows per slot and layer), and the
    /// prefill no longer copies them N times.
    let prefix = IntBuffer()
    var samplesPerPrompt = 1
    /// Fast path (`GPT.transposeWeights`): each linear weight W (OC, IC) stored as Wᵀ (IC, OC) in panels of
    /// `Kernels.panelWidth` columns (`Kernels.packPanels`), keyed by W's offset in `params`, refreshed at the start of
    /// a sample() call when the parameters changed since the last packing (`wtGeneration`: an actor samples several
    /// messages and evaluations per policy version, and packing was 12% of a default-job actor's CPU when it ran on
    /// every call). Decode steps then multiply their few rows with `Kernels.linearPanels`, where OpenBLAS would re-pack
    /// all of W for every step. Empty = use the plain path.
    let wt = FloatBuffer()
    var wtOffset: [Int: Int] = [:]
    /// `GPT.paramsGeneration` that `wt` was packed from (nil: never packed).
    var wtGeneration: UInt64?
    /// Active rows below which a decode step stays on one thread (a wake-up costs about what 4 rows do on tiny).
    static let minRowsPerStep = 8

    /// Sizes the buffers for `slots` cached sequences of `span` positions and steps of up to `rows` rows (a decode
    /// step has ≤ slots rows; the prefill one per prompt token).
    func ensure(slots s: Int, rows: Int? = nil, config c: GPTConfig, span n: Int) {
        slots = s
        span = n
        let C = c.dim, R = max(s, rows ?? s)
        for b in [x, ln, atty] { b.ensure(R * C) }
        mean.ensure(R); rstd.ensure(R)
        qkv.ensure(R * 3 * C); fch.ensure(R * 4 * C); fchG.ensure(R * 4 * C)
        // (the head and the plain path's `linear` run on ≤ slots rows: the prefill's head on one row per prompt)
        tmp.ensure(s * max(4 * C, c.vocabSize)); logits.ensure(s * c.vocabSize); slotLogits.ensure(s * c.vocabSize)
        scores.ensure(c.heads * n)
        kCache.ensure(c.layers * s * n * C); vCache.ensure(c.layers * s * n * C)
        tok.ensure(R); probs.ensure(c.vocabSize); order.ensure(c.vocabSize); prefix.ensure(s)
    }
}

extension GPT {
    /// Models above this many parameters decode on the plain path (OpenBLAS products, the prefill a training forward):
    /// packing their weights (`transposeWeights`) would double an actor's weight memory. Tests lower it to run the
    /// plain path on small models (set it before sampling; not thread-safe).
    package nonisolated(unsafe) static var decodePackingLimit = 32 << 20

    /// Whether the last sample() / cachedLogits() call ran on the packed fast path (tests and benchmarks).
    package var decodesWithPackedWeights: Bool { !decode.wtOffset.isEmpty }

    /// Samples `samplesPerPrompt` responses for each prompt; result is [prompt][sample].
    package func sample(prompts: [[Int]], samplesPerPrompt: Int, config sc: SamplingConfig,
                        rng: inout RNG) -> [[SampledResponse]] {
        precondition(samplesPerPrompt >= 1, "sample: samplesPerPrompt must be ≥ 1, got \(samplesPerPrompt)")
        precondition(sc.topK >= 0 && sc.topP > 0, "sample: need topK ≥ 0 and topP > 0, got \(sc.topK), \(sc.topP)")
        if prompts.isEmpty { return [] }
        let P = prompts.count, NS = samplesPerPrompt, S = P * NS
        let V = config.vocabSize, ctx = config.contextLength
        let d = decode
        var out = [[SampledResponse]](repeating: [SampledResponse](repeating: SampledResponse(), count: NS), count: P)
        var length = [Int](repeating: 0, count: S)     // tokens currently in the cache for each slot
        var done = [Bool](repeating: false, count: S)

        params.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            transposeWeights(p, state: d)
            let longest = prompts.map(\.count).max() ?? 0
            prefill(p, prompts: prompts, samplesPerPrompt: NS, span: min(ctx, longest + max(sc.maxNewTokens, 0)), state: d)
            for pi in 0..<P {
                let len = prompts[pi].count
                for s in (pi * NS)..<((pi + 1) * NS) {
                    length[s] = len
                    done[s] = len >= ctx || sc.maxNewTokens <= 0
                }
            }
            var active: [Int] = []
            var positions: [Int] = []
            while true {
                active.removeAll(keepingCapacity: true); positions.removeAll(keepingCapacity: true)
                for s in 0..<S where !done[s] {
                    let (tok, lp, h) = sampleToken(d.slotLogits.ptr + s * V, V: V, config: sc, rng: &rng, state: d)
                    out[s / NS][s % NS].tokens.append(tok)
                    out[s / NS][s % NS].logProbs.append(lp)
                    if sc.recordEntropy { out[s / NS][s % NS].entropies.append(h) }
                    let newLen = length[s] + 1
                    if tok == sc.stopToken || out[s / NS][s % NS].tokens.count >= sc.maxNewTokens || newLen >= ctx {
                        done[s] = true
                    } else {
                        d.tok.ptr[active.count] = tok
                        active.append(s); positions.append(length[s])
                    }
                    length[s] = newLen
                }
                if active.isEmpty { break }
                decodeStep(p, active: active, positions: positions, slots: S, state: d)
                for (r, s) in active.enumerated() {
                    d.slotLogits.ptr.advanced(by: s * V).update(from: d.logits.ptr + r * V, count: V)
                }
            }
        }
        return out
    }

    /// Feeds token d.tok[r] at position positions[r] for slot active[r]; writes logits (A, V) to d.logits.
    /// Fast path (weights transposed, see `project`): every kernel of a decode step treats rows independently, so
    /// the active rows are split into contiguous ranges over `Parallel.threads`, each running the whole step (all
    /// layers) for its rows: one wake-up per step, and the same result bit for bit as one thread. The plain path
    /// (OpenBLAS through `linear`, one shared scratch) runs all rows on the caller.
    func decodeStep(_ p: UnsafePointer<Float>, active: [Int], positions: [Int], slots S: Int, state d: DecodeState) {
        let A = active.count
        let ranges = d.wtOffset.isEmpty ? 1 : Parallel.ranges(A, minItems: DecodeState.minRowsPerStep)
        let scoresPerRange = config.heads * d.span
        d.scores.ensure(ranges * scoresPerRange)
        active.withUnsafeBufferPointer { act in
            positions.withUnsafeBufferPointer { pos in
                if ranges == 1 { decodeRows(p, active: act, positions: pos, rows: 0..<A, scores: d.scores.ptr, slots: S, state: d); return }
                Parallel.forRanges(A, minItems: DecodeState.minRowsPerStep) { r, slot in
                    decodeRows(p, active: act, positions: pos, rows: r, scores: d.scores.ptr + slot * scoresPerRange, slots: S, state: d)
                }
            }
        }
    }

    /// One decode step for rows `rows` of the active set (all layers, then the head); `scores` is this range's
    /// scratch (≥ heads·span).
    func decodeRows(_ p: UnsafePointer<Float>, active: UnsafeBufferPointer<Int>, positions: UnsafeBufferPointer<Int>,
                    rows: Range<Int>, scores: UnsafeMutablePointer<Float>, slots S: Int, state d: DecodeState) {
        decodeLayers(p, active: active, positions: positions, rows: rows, scores: scores, slots: S, state: d)
        decodeHead(p, rows: rows, state: d)
    }

    /// Rows `rows` of d.x (the residual stream after the last block) → rows `rows` of d.logits: final LayerNorm and
    /// the tied head.
    func decodeHead(_ p: UnsafePointer<Float>, rows: Range<Int>, state d: DecodeState) {
        let C = config.dim, V = config.vocabSize, r0 = rows.lowerBound, A = rows.count
        let x = d.x.ptr + r0 * C, ln = d.ln.ptr + r0 * C, mean = d.mean.ptr + r0, rstd = d.rstd.ptr + r0
        Ops.layerNormForward(out: ln, mean: mean, rstd: rstd, inp: x, weight: p + lnfw, bias: p + lnfb, n: A, c: C)
        project(d, p, out: d.logits.ptr + r0 * V, inp: ln, weight: wte, bias: nil, n: A, ic: C, oc: V)
    }

    /// Token d.tok[r] at position positions[r] of slot active[r], for the rows `rows`: embeddings and every block,
    /// leaving the residual stream in d.x. Each row's keys and values go into the cache before it attends, so rows of
    /// one slot at consecutive positions, in order and in one range, are a prefill.
    func decodeLayers(_ p: UnsafePointer<Float>, active: UnsafeBufferPointer<Int>, positions: UnsafeBufferPointer<Int>,
                      rows: Range<Int>, scores: UnsafeMutablePointer<Float>, slots S: Int, state d: DecodeState) {
        let C = config.dim, V = config.vocabSize, ctx = d.span, H = config.heads, hd = C / H
        let r0 = rows.lowerBound, A = rows.count
        let scale = 1 / Float(hd).squareRoot()
        let x = d.x.ptr + r0 * C, ln = d.ln.ptr + r0 * C, mean = d.mean.ptr + r0, rstd = d.rstd.ptr + r0
        let qkvRows = d.qkv.ptr + r0 * 3 * C, atty = d.atty.ptr + r0 * C
        let fch = d.fch.ptr + r0 * 4 * C, fchG = d.fchG.ptr + r0 * 4 * C
        for r in rows {
            let o = d.x.ptr + r * C, te = p + wte + d.tok.ptr[r] * C, pe = p + wpe + positions[r] * C
            for j in 0..<C { o[j] = te[j] + pe[j] }
        }
        for (l, o) in blocks.enumerated() {
            // Each product also prefetches the first panel of the next one (`then:`): see Kernels.linearPanels.
            let next: (weight: Int, ic: Int, oc: Int) = l + 1 < blocks.count ? (blocks[l + 1].attnW, C, 3 * C) : (wte, C, V)
            Ops.layerNormForward(out: ln, mean: mean, rstd: rstd, inp: x, weight: p + o.ln1w, bias: p + o.ln1b, n: A, c: C)
            project(d, p, out: qkvRows, inp: ln, weight: o.attnW, bias: o.attnB, n: A, ic: C, oc: 3 * C,
                    then: (o.projW, C, C))
            for r in rows {
                let s = active[r], pos = positions[r]
                let q = d.qkv.ptr + r * 3 * C
                storeKV(d, layer: l, slot: s, slots: S, pos: pos, qkvRow: q)
                // Fast path: all heads of the row in one kernel call, the group's shared prompt rows first
                // (DecodeState.prefix; Kernels.attendHeadsPrefixPlain is the plain twin; attendHeads on one slot
                // holding all rows gives the same bits).
                let base = (l * S + s) * H * ctx * hd
                let base0 = (l * S + s / d.samplesPerPrompt * d.samplesPerPrompt) * H * ctx * hd
                Kernels.attendHeadsPrefix(y: d.atty.ptr + r * C, scores: scores, q: q, kp: d.kCache.ptr + base0,
                                          vp: d.vCache.ptr + base0, k: d.kCache.ptr + base, v: d.vCache.ptr + base,
                                          heads: H, headStride: ctx * hd, plen: d.prefix.ptr[s], len: pos + 1,
                                          hd: hd, scale: scale)
            }
            project(d, p, out: x, inp: atty, weight: o.projW, bias: o.projB, n: A, ic: C, oc: C, accumulate: true,
                    then: (o.fcW, C, 4 * C))
            Ops.layerNormForward(out: ln, mean: mean, rstd: rstd, inp: x, weight: p + o.ln2w, bias: p + o.ln2b, n: A, c: C)
            project(d, p, out: fch, inp: ln, weight: o.fcW, bias: o.fcB, n: A, ic: C, oc: 4 * C, then: (o.fcProjW, 4 * C, C))
            Ops.geluForward(out: fchG, inp: fch, count: A * 4 * C)
            project(d, p, out: x, inp: fchG, weight: o.fcProjW, bias: o.fcProjB, n: A, ic: 4 * C, oc: C, accumulate: true,
                    then: next)
        }
    }

    /// The prompts into the cache: prompt pi's keys and values at the slot of its group's first sample (pi·NS, read by
    /// the group's other samples through DecodeState.prefix), and its last row's logits into d.slotLogits of every
    /// slot of the group. Sizes `d` for P·NS slots of `span` positions.
    ///
    /// Fast path (weights packed, `transposeWeights`): all prompt rows as one decode step (`decodeLayers`), then the
    /// head on each prompt's last row. Until the eighth pass the prefill was a training forward (`forwardTrunk`) whose
    /// products, at a prompt's few rows, OpenBLAS ran re-packing every weight (≈ 11% of a default-job actor's CPU in
    /// `perf`, against ≈ 18% for all its decode steps' products); the decode kernels use the weights packed once per
    /// version. A prompt row now gets the same bits as if it had been decoded token by token. Prompts run in parallel
    /// ranges (a prompt's rows stay in one range, in order). Plain path (models above GPT.decodePackingLimit):
    /// the training forward, its K/V rows copied into the cache.
    func prefill(_ p: UnsafePointer<Float>, prompts: [[Int]], samplesPerPrompt NS: Int, span: Int, state d: DecodeState) {
        let P = prompts.count, S = P * NS, C = config.dim
        for (b, s) in prompts.enumerated() { checkSequence(s, index: b) }
        d.samplesPerPrompt = NS
        if d.wtOffset.isEmpty {
            d.ensure(slots: S, config: config, span: span)
            let (B, T) = pack(prompts)
            forwardTrunk(p, B: B, T: T)
            forwardLogits(p, rows: prompts.indices.map { $0 * T + prompts[$0].count - 1 })   // each prompt's last row
            let N = B * T
            for pi in 0..<P {
                for l in 0..<config.layers {
                    let src = qkv.ptr + l * N * 3 * C + pi * T * 3 * C
                    for t in 0..<prompts[pi].count {
                        storeKV(d, layer: l, slot: pi * NS, slots: S, pos: t, qkvRow: src + t * 3 * C)
                    }
                }
            }
            setSlotLogits(d, from: logits.ptr, prompts: 0..<P, samplesPerPrompt: NS)
        } else {
            // Passes of at most `prefillRowsPerPass` rows (whole prompts, at least one): the row buffers are sized for
            // one pass, not for every prompt token of a large evaluation call.
            let longest = prompts.map(\.count).max() ?? 0
            d.ensure(slots: S, rows: min(prompts.reduce(0) { $0 + $1.count }, max(GPT.prefillRowsPerPass, longest)),
                     config: config, span: span)
            d.scores.ensure(min(Parallel.threads, P) * config.heads * span)
            for pi in 0..<P { d.prefix.ptr[pi * NS] = 0 }   // a prompt row attends to its own slot's rows only
            var a = 0
            while a < P {
                var b = a + 1, rows = prompts[a].count
                while b < P && rows + prompts[b].count <= GPT.prefillRowsPerPass { rows += prompts[b].count; b += 1 }
                prefillPass(p, prompts: prompts, a..<b, samplesPerPrompt: NS, state: d)
                a = b
            }
        }
        for pi in 0..<P { for s in (pi * NS)..<((pi + 1) * NS) { d.prefix.ptr[s] = prompts[pi].count } }
    }

    /// Prompt rows above which the fast prefill splits a call into passes (tests lower it; not thread-safe).
    package nonisolated(unsafe) static var prefillRowsPerPass = 4096

    /// One pass of the fast prefill over prompts `range`: their rows (in order, rows 0 ..< Σ lengths of the pass) as
    /// one decode step, prompts split over the threads, then the head on each prompt's last row.
    func prefillPass(_ p: UnsafePointer<Float>, prompts: [[Int]], _ range: Range<Int>, samplesPerPrompt NS: Int,
                     state d: DecodeState) {
        var active: [Int] = [], positions: [Int] = [], starts = [0]   // prompt range.lowerBound + i: rows starts[i] ..< starts[i + 1]
        for pi in range {
            active.append(contentsOf: repeatElement(pi * NS, count: prompts[pi].count))
            positions.append(contentsOf: 0..<prompts[pi].count)
            starts.append(active.count)
        }
        for (r, tok) in prompts[range].joined().enumerated() { d.tok.ptr[r] = tok }
        let n = range.count, scoresPerRange = config.heads * d.span
        let minPrompts = active.count >= 2 * DecodeState.minRowsPerStep ? 2 : Int.max
        active.withUnsafeBufferPointer { act in
            positions.withUnsafeBufferPointer { pos in
                Parallel.forRanges(n, minItems: minPrompts) { r, slot in
                    decodeLayers(p, active: act, positions: pos, rows: starts[r.lowerBound]..<starts[r.upperBound],
                                 scores: d.scores.ptr + slot * scoresPerRange, slots: d.slots, state: d)
                }
            }
        }
        gatherRowsInPlace(d.x.ptr, rows: (0..<n).map { starts[$0 + 1] - 1 }, width: config.dim)
        decodeHead(p, rows: 0..<n, state: d)
        setSlotLogits(d, from: d.logits.ptr, prompts: range, samplesPerPrompt: NS)
    }

    /// Row i of `logits` (prompt range.lowerBound + i's last-row logits) into d.slotLogits of every slot of its group.
    func setSlotLogits(_ d: DecodeState, from logits: UnsafePointer<Float>, prompts range: Range<Int>, samplesPerPrompt NS: Int) {
        let V = config.vocabSize
        for (i, pi) in range.enumerated() {
            for s in (pi * NS)..<((pi + 1) * NS) { d.slotLogits.ptr.advanced(by: s * V).update(from: logits + i * V, count: V) }
        }
    }

    /// Fills d.wt with Wᵀ, packed in panels, of every weight the decode step multiplies (c_attn, c_proj, c_fc,
    /// mlp c_proj, the tied head wte), or leaves it empty for models above GPT.decodePackingLimit. At the start of
    /// a sample() call; nothing to do when `params` has not been written since the last packing.
    func transposeWeights(_ p: UnsafePointer<Float>, state d: DecodeState) {
        if d.wtGeneration == paramsGeneration { return }
        d.wtGeneration = paramsGeneration
        d.wtOffset.removeAll(keepingCapacity: true)
        guard params.count <= GPT.decodePackingLimit else { return }
        let C = config.dim
        var mats: [(offset: Int, oc: Int, ic: Int)] = [(wte, config.vocabSize, C)]
        for o in blocks { mats += [(o.attnW, 3 * C, C), (o.projW, C, C), (o.fcW, 4 * C, C), (o.fcProjW, C, 4 * C)] }
        d.wt.ensure(mats.reduce(0) { $0 + $1.oc * $1.ic })
        var at = 0
        for m in mats {
            Kernels.packPanels(d.wt.ptr + at, p + m.offset, oc: m.oc, ic: m.ic)
            d.wtOffset[m.offset] = at
            at += m.oc * m.ic
        }
    }

    /// A decode-step linear layer for the weight at `params[weight…]`: the fast path (`Kernels.linearPanels` on
    /// packed Wᵀ; same bits as `Kernels.linearRows` on plain Wᵀ) when `transposeWeights` prepared it, else the plain
    /// `linear` below. `then`: the weight multiplied next (offset, ic, oc), whose first panel the fast path
    /// prefetches into L2 during its last one.
    @inline(__always)
    func project(_ d: DecodeState, _ p: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>,
                 weight: Int, bias: Int?, n: Int, ic: Int, oc: Int, accumulate: Bool = false,
                 then next: (weight: Int, ic: Int, oc: Int)? = nil) {
        let b = bias.map { p + $0 }
        if let at = d.wtOffset[weight] {
            let after = next.flatMap { nx in d.wtOffset[nx.weight].map { (UnsafePointer(d.wt.ptr + $0), nx.ic * min(nx.oc, Kernels.panelWidth)) } }
            Kernels.linearPanels(out: out, inp: inp, packed: d.wt.ptr + at, bias: b, n: n, ic: ic, oc: oc,
                                 accumulate: accumulate, prefetchAfter: after?.0, prefetchCount: after?.1 ?? 0)
        } else {
            linear(d, out: out, inp: inp, weight: p + weight, bias: b, n: n, ic: ic, oc: oc, accumulate: accumulate)
        }
    }

    /// Writes the K and V parts of one qkv row (3C) into the cache at `pos` (< d.span). Layout (L, S, H, span, hd):
    /// each head's keys are contiguous, so attention streams them.
    @inline(__always)
    func storeKV(_ d: DecodeState, layer l: Int, slot s: Int, slots S: Int, pos: Int, qkvRow: UnsafePointer<Float>) {
        let C = config.dim, H = config.heads, hd = C / H, ctx = d.span
        precondition(pos < ctx, "storeKV: position \(pos) beyond the cache span \(ctx)")
        for h in 0..<H {
            let off = (((l * S + s) * H + h) * ctx + pos) * hd
            (d.kCache.ptr + off).update(from: qkvRow + C + h * hd, count: hd)
            (d.vCache.ptr + off).update(from: qkvRow + 2 * C + h * hd, count: hd)
        }
    }

    /// Decode-time linear layer for few rows: tmp (OC, n) = W · inpᵀ (measured faster than inp · Wᵀ in OpenBLAS
    /// for n ≈ 32), then out (n, OC) (+)= tmpᵀ + bias.
    func linear(_ d: DecodeState, out: UnsafeMutablePointer<Float>, inp: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                bias: UnsafePointer<Float>?, n: Int, ic: Int, oc: Int, accumulate: Bool = false) {
        let t = d.tmp.ptr
        BLAS.sgemm(transA: false, transB: true, m: oc, n: n, k: ic, a: weight, b: inp, beta: 0, c: t)
        for r in 0..<n {
            let o = out + r * oc
            if !accumulate { for j in 0..<oc { o[j] = 0 } }
            if let bias { for j in 0..<oc { o[j] += t[j * n + r] + bias[j] } } else { for j in 0..<oc { o[j] += t[j * n + r] } }
        }
    }

    /// Draws one token from a logits row (V): `drawToken` with this decoder's probability buffer.
    func sampleToken(_ row: UnsafeMutablePointer<Float>, V: Int, config sc: SamplingConfig, rng: inout RNG,
                     state d: DecodeState) -> (Int, Float, Float) {
        drawToken(row, V: V, config: sc, rng: &rng, probs: d.probs.ptr)
    }
}

extension GPT {
    /// Logits from the KV-cache path: prefill `prompt`, then feed `continuation` one token at a time.
    /// Returns continuation.count + 1 rows: the logits after the prompt's last token and after each fed
    /// continuation token, i.e. positions prompt.count − 1 … total − 1. For tests.
    package func cachedLogits(prompt: [Int], continuation: [Int]) -> [[Float]] {
        precondition(prompt.count + continuation.count <= config.contextLength,
                     "cachedLogits: \(prompt.count) + \(continuation.count) tokens exceed contextLength \(config.contextLength)")
        let V = config.vocabSize
        let d = decode
        var rows: [[Float]] = []
        params.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            transposeWeights(p, state: d)
            prefill(p, prompts: [prompt], samplesPerPrompt: 1, span: config.contextLength, state: d)
            rows.append(Array(UnsafeBufferPointer(start: d.slotLogits.ptr, count: V)))
            for (i, tok) in continuation.enumerated() {
                d.tok.ptr[0] = tok
                decodeStep(p, active: [0], positions: [prompt.count + i], slots: 1, state: d)
                rows.append(Array(UnsafeBufferPointer(start: d.logits.ptr, count: V)))
            }
        }
        return rows
    }
}
