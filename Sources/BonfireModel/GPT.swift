// The policy: a GPT-2 style decoder-only transformer (nanoGPT / llm.c architecture).
//   x⁰ = wte[tok] + wpe[pos]                                             (B, T, C)
//   for l in 0..<L:   x ← x + c_proj(attn_causal(c_attn(LN₁(x))))          pre-LN blocks
//                     x ← x + mlp.c_proj(GELU(mlp.c_fc(LN₂(x))))           MLP hidden 4C
//   h = LN_f(x);  logits = h · wteᵀ  (tied LM head);  π_T(·|tok≤t) = softmax(logits_t / T)
//   optional scalar head: score_b = score.weight · h[b, L_b − 1] + score.bias  (verifier / value)
// Sequences in a batch have different lengths L_b ≤ contextLength; they are right-padded to T = max L_b and the
// padding is masked: attention only looks back (pads sit after real tokens) and pads carry no loss.
// All parameters live in ONE [Float] (`params`) addressed through `layout`; `grads` mirrors it. Activations stay
// allocated between calls and grow on demand. Linear layers run as single sgemm calls over all B·T rows.
// Not thread-safe: one owner at a time (a learner or an actor each hold their own GPT).

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif
import BonfireMath

package struct GPTConfig: Codable, Equatable, Sendable {
    package var vocabSize = 64, contextLength = 64, layers = 4, heads = 4, dim = 128
    package var scalarHead = false

    package init(vocabSize: Int = 64, contextLength: Int = 64, layers: Int = 4, heads: Int = 4, dim: Int = 128,
                 scalarHead: Bool = false) {
        self.vocabSize = vocabSize; self.contextLength = contextLength; self.layers = layers
        self.heads = heads; self.dim = dim; self.scalarHead = scalarHead
    }

    /// L4 d128 h4 ctx64 vocab64.
    package static let tiny = GPTConfig(vocabSize: 64, contextLength: 64, layers: 4, heads: 4, dim: 128)
    /// L6 d256 h8 ctx128 vocab64.
    package static let small = GPTConfig(vocabSize: 64, contextLength: 128, layers: 6, heads: 8, dim: 256)
}

package struct ForwardStats: Sendable {
    /// −Σ w·log π_T − c·Σ_{w≠0} H (the value whose gradient was accumulated).
    package var loss: Float
    /// Mean entropy of π_T over the positions with non-zero weight (0 if there are none).
    package var meanEntropy: Float
    /// log π_T(tok[t+1] | tok[≤t]), indexed like `tokenLogProbs` (count = len − 1 per sequence).
    package var tokenLogProbs: [[Float]]
}

/// A growable raw Float buffer (contents are not preserved when it grows; they start zeroed), its storage on a
/// 64-byte boundary (one cache line, one AVX-512 vector). The C kernels read 16-float vectors at multiples of 16
/// floats from the start of a buffer (decode weight panel rows of 64 floats, cache rows of hd floats, activation
/// rows of C floats): from malloc's 16-byte alignment every such vector straddled two cache lines, so a panel row
/// touched 5 lines instead of 4 and a 32-float cache row 3 instead of 2 (a replay of the decode kernels on
/// 16-byte-offset buffers: tiny 33.3 → 36.0 ms, small 159–172 → 209–216 ms per call). Used by the train step's
/// activations and the decoder alike.
package final class FloatBuffer {
    package static let alignment = 64
    package private(set) var ptr: UnsafeMutablePointer<Float>
    package private(set) var capacity: Int
    package init(_ n: Int = 1) {
        capacity = max(n, 1)
        ptr = Self.allocate(capacity)
    }
    package func ensure(_ n: Int) {
        if n > capacity {
            UnsafeMutableRawPointer(ptr).deallocate()
            capacity = n
            ptr = Self.allocate(n)
        }
    }
    package func zero(_ n: Int) { ptr.update(repeating: 0, count: n) }
    private static func allocate(_ n: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<Float>.stride, alignment: alignment)
        return raw.initializeMemory(as: Float.self, repeating: 0, count: n)
    }
    deinit { UnsafeMutableRawPointer(ptr).deallocate() }
}

final class IntBuffer {
    private(set) var ptr: UnsafeMutablePointer<Int>
    private(set) var capacity: Int
    init(_ n: Int = 1) { capacity = max(n, 1); ptr = .allocate(capacity: capacity); ptr.initialize(repeating: 0, count: capacity) }
    func ensure(_ n: Int) {
        if n > capacity { ptr.deallocate(); capacity = n; ptr = .allocate(capacity: n); ptr.initialize(repeating: 0, count: n) }
    }
    deinit { ptr.deallocate() }
}

/// Offsets of one block's tensors inside `params`.
struct BlockOffsets {
    var ln1w = 0, ln1b = 0, attnW = 0, attnB = 0, projW = 0, projB = 0
    var ln2w = 0, ln2b = 0, fcW = 0, fcB = 0, fcProjW = 0, fcProjB = 0
}

package final class GPT: @unchecked Sendable {
    package let config: GPTConfig
    /// Parameters. Every write through this property (assignment, subscript, withUnsafeMutableBufferPointer, inout)
    /// moves `paramsGeneration`, so the sampler re-packs its decode weights only when they changed. Explicit
    /// accessors over plain storage: a first version (`didSet` here, an Optional gradient buffer yielded as
    /// `&storage!`) raised the gpt2-124m learner's peak RSS by 474 MiB — one parameter-sized copy, cause not
    /// isolated; this form measures as before (`bonfire-bench memory`: 3479 MiB) and GradientAllocationTests checks
    /// that every write keeps the buffer's address.
    package var params: [Float] {
        get { paramStorage }
        _modify { paramsGeneration &+= 1; yield &paramStorage }
        set { paramStorage = newValue; paramsGeneration &+= 1 }
    }
    private var paramStorage: [Float]
    private(set) var paramsGeneration: UInt64 = 0
    /// Gradients, shaped like `params`, allocated on first use (`LazyGradients`).
    @LazyGradients package var grads: [Float]
    /// Whether `grads` has been allocated (tests: a sampling-only model must not have).
    package var hasGradients: Bool { _grads.isAllocated }
    package let layout: ParameterLayout

    let wte: Int, wpe: Int, lnfw: Int, lnfb: Int
    let scoreW: Int, scoreB: Int
    let blocks: [BlockOffsets]

    // Activations for the current (B, T); see `ensureActivations`.
    var curB = 0, curT = 0
    let ids = IntBuffer(), lengths = IntBuffer()
    let x0 = FloatBuffer(), ln1 = FloatBuffer(), ln1Mean = FloatBuffer(), ln1Rstd = FloatBuffer()
    let qkv = FloatBuffer(), att = FloatBuffer(), atty = FloatBuffer(), res2 = FloatBuffer()
    let ln2 = FloatBuffer(), ln2Mean = FloatBuffer(), ln2Rstd = FloatBuffer()
    // fch: c_fc's pre-activation, or GELU' of it after a forward for training (`forwardTrunk(…, forBackward: true)`).
    let fch = FloatBuffer(), fchGelu = FloatBuffer(), res3 = FloatBuffer()
    /// Whether fch holds GELU' (the last forwardTrunk was for a backward): `backwardTrunk` requires it.
    var fchHoldsGELULocal = false
    let lnf = FloatBuffer(), lnfMean = FloatBuffer(), lnfRstd = FloatBuffer(), logits = FloatBuffer()
    // Gradient scratch.
    let dres = FloatBuffer(), dln = FloatBuffer(), datty = FloatBuffer(), dqkv = FloatBuffer()
    let dfchGelu = FloatBuffer(), dlogits = FloatBuffer(), dlnf = FloatBuffer(), attScratch = FloatBuffer()
    // Per-row log-prob, entropy and loss weight of the token loss (B·T each).
    let scratchLP = FloatBuffer(), scratchH = FloatBuffer(), scratchW = FloatBuffer()
    // Sampler state (see Sampler.swift).
    let decode = DecodeState()

    package static func makeLayout(_ c: GPTConfig) -> ParameterLayout {
        let C = c.dim
        var l = ParameterLayout()
        l.append("wte", shape: [c.vocabSize, C])
        l.append("wpe", shape: [c.contextLength, C])
        for i in 0..<c.layers {
            let p = "h.\(i)."
            l.append(p + "ln_1.weight", shape: [C]); l.append(p + "ln_1.bias", shape: [C])
            l.append(p + "attn.c_attn.weight", shape: [3 * C, C]); l.append(p + "attn.c_attn.bias", shape: [3 * C])
            l.append(p + "attn.c_proj.weight", shape: [C, C]); l.append(p + "attn.c_proj.bias", shape: [C])
            l.append(p + "ln_2.weight", shape: [C]); l.append(p + "ln_2.bias", shape: [C])
            l.append(p + "mlp.c_fc.weight", shape: [4 * C, C]); l.append(p + "mlp.c_fc.bias", shape: [4 * C])
            l.append(p + "mlp.c_proj.weight", shape: [C, 4 * C]); l.append(p + "mlp.c_proj.bias", shape: [C])
        }
        l.append("ln_f.weight", shape: [C]); l.append("ln_f.bias", shape: [C])
        if c.scalarHead {
            l.append("score.weight", shape: [1, C]); l.append("score.bias", shape: [1])
        }
        return l
    }

    /// GPT-2 initialisation: N(0, 0.02) for matrices and embeddings, N(0, 0.02/√(2L)) for residual projections,
    /// zero biases, unit LayerNorm gains.
    /// `randomInit: false` leaves every parameter 0 (a loader fills them; skips drawing 100 M normals).
    package init(config: GPTConfig, seed: UInt64, randomInit: Bool = true) {
        precondition(config.dim % config.heads == 0, "GPTConfig: dim \(config.dim) not divisible by heads \(config.heads)")
        precondition(config.vocabSize > 0 && config.contextLength > 0 && config.layers > 0, "GPTConfig: bad sizes \(config)")
        self.config = config
        layout = GPT.makeLayout(config)
        paramStorage = [Float](repeating: 0, count: layout.totalCount)
        _grads = LazyGradients(count: layout.totalCount)
        wte = layout["wte"].offset; wpe = layout["wpe"].offset
        lnfw = layout["ln_f.weight"].offset; lnfb = layout["ln_f.bias"].offset
        scoreW = layout.entry(named: "score.weight")?.offset ?? -1
        scoreB = layout.entry(named: "score.bias")?.offset ?? -1
        var bl: [BlockOffsets] = []
        for i in 0..<config.layers {
            let p = "h.\(i)."
            bl.append(BlockOffsets(
                ln1w: layout[p + "ln_1.weight"].offset, ln1b: layout[p + "ln_1.bias"].offset,
                attnW: layout[p + "attn.c_attn.weight"].offset, attnB: layout[p + "attn.c_attn.bias"].offset,
                projW: layout[p + "attn.c_proj.weight"].offset, projB: layout[p + "attn.c_proj.bias"].offset,
                ln2w: layout[p + "ln_2.weight"].offset, ln2b: layout[p + "ln_2.bias"].offset,
                fcW: layout[p + "mlp.c_fc.weight"].offset, fcB: layout[p + "mlp.c_fc.bias"].offset,
                fcProjW: layout[p + "mlp.c_proj.weight"].offset, fcProjB: layout[p + "mlp.c_proj.bias"].offset))
        }
        blocks = bl
        var rng = RNG(seed: seed, stream: 0x6770_7469_6E69_74)   // "gptinit"
        let residualStd = 0.02 / (2 * Double(config.layers)).squareRoot()
        for e in layout.entries where randomInit {
            if e.name.hasSuffix("ln_1.weight") || e.name.hasSuffix("ln_2.weight") || e.name == "ln_f.weight" {
                for i in e.range { params[i] = 1 }
            } else if e.shape.count >= 2 {
                let std = e.name.hasSuffix("c_proj.weight") ? residualStd : 0.02
                for i in e.range { params[i] = Float(rng.normal() * std) }
            }
        }
    }

    package func zeroGrad() {
        grads.withUnsafeMutableBufferPointer { g in
            Parallel.forRanges(g.count, minItems: 1 << 16) { r, _ in
                (g.baseAddress! + r.lowerBound).update(repeating: 0, count: r.count)
            }
        }
    }

    /// Uses 1 for temperatures ≤ 1e-6 (greedy decoding reports log-probs at T = 1; see SamplingConfig).
    package static func logProbTemperature(_ t: Float) -> Float { t <= 1e-6 ? 1 : t }

    // MARK: packing and buffers

    /// Right-pads `sequences` into ids (B, T) with T = max length; returns (B, T).
    func pack(_ sequences: [[Int]]) -> (Int, Int) {
        precondition(!sequences.isEmpty, "GPT: empty batch")
        let B = sequences.count
        var T = 0
        for (b, s) in sequences.enumerated() {
            checkSequence(s, index: b)
            T = max(T, s.count)
        }
        ensureActivations(B: B, T: T)
        for (b, s) in sequences.enumerated() {
            lengths.ptr[b] = s.count
            for t in 0..<T { ids.ptr[b * T + t] = t < s.count ? s[t] : 0 }
        }
        return (B, T)
    }

    /// Sequence `b` of a batch: 1 ... contextLength tokens, each in 0 ..< vocabSize (a programmer error otherwise:
    /// roles validate what they receive before it gets here).
    func checkSequence(_ s: [Int], index b: Int) {
        precondition(!s.isEmpty && s.count <= config.contextLength,
                     "GPT: sequence \(b) has length \(s.count), need 1...\(config.contextLength)")
        let V = config.vocabSize
        for (t, tok) in s.enumerated() {
            precondition(tok >= 0 && tok < V, "GPT: token \(tok) at [\(b)][\(t)] out of range 0..<\(V)")
        }
    }

    func ensureActivations(B: Int, T: Int) {
        curB = B; curT = T
        let C = config.dim, L = config.layers, N = B * T, H = config.heads, V = config.vocabSize
        ids.ensure(N); lengths.ensure(B)
        x0.ensure(N * C)
        for buf in [ln1, atty, res2, ln2, res3] { buf.ensure(L * N * C) }
        for buf in [ln1Mean, ln1Rstd, ln2Mean, ln2Rstd] { buf.ensure(L * N) }
        qkv.ensure(L * N * 3 * C); att.ensure(L * B * H * T * T)
        fch.ensure(L * N * 4 * C); fchGelu.ensure(L * N * 4 * C)
        lnf.ensure(N * C); lnfMean.ensure(N); lnfRstd.ensure(N); logits.ensure(N * V)
        dres.ensure(N * C); dln.ensure(N * C); datty.ensure(N * C); dqkv.ensure(N * 3 * C)
        dfchGelu.ensure(N * 4 * C); dlogits.ensure(N * V); dlnf.ensure(N * C)
        attScratch.ensure(T * T)
    }

    // MARK: forward

    /// Embeddings → blocks → final LN for the packed batch; fills every activation up to `lnf`. `forBackward`: a
    /// `backwardTrunk` follows, so the MLP keeps GELU' of its pre-activation in fch instead of the pre-activation.
    func forwardTrunk(_ p: UnsafePointer<Float>, B: Int, T: Int, forBackward: Bool = false) {
        let C = config.dim, N = B * T, H = config.heads
        fchHoldsGELULocal = forBackward
        Ops.embeddingForward(out: x0.ptr, ids: ids.ptr, table: p + wte, n: N, c: C, vocab: config.vocabSize)
        for b in 0..<B {
            for t in 0..<T {
                let o = x0.ptr + (b * T + t) * C, w = p + wpe + t * C
                for j in 0..<C { o[j] += w[j] }
            }
        }
        for (l, o) in blocks.enumerated() {
            let resIn = l == 0 ? UnsafePointer(x0.ptr) : UnsafePointer(res3.ptr + (l - 1) * N * C)
            let ln1l = ln1.ptr + l * N * C, qkvl = qkv.ptr + l * N * 3 * C, attl = att.ptr + l * B * H * T * T
            let attyl = atty.ptr + l * N * C, res2l = res2.ptr + l * N * C, ln2l = ln2.ptr + l * N * C
            let fchl = fch.ptr + l * N * 4 * C, fchGl = fchGelu.ptr + l * N * 4 * C, res3l = res3.ptr + l * N * C
            Ops.layerNormForward(out: ln1l, mean: ln1Mean.ptr + l * N, rstd: ln1Rstd.ptr + l * N, inp: resIn,
                                 weight: p + o.ln1w, bias: p + o.ln1b, n: N, c: C)
            Ops.linearForward(out: qkvl, inp: ln1l, weight: p + o.attnW, bias: p + o.attnB, n: N, ic: C, oc: 3 * C)
            Ops.attentionForward(out: attyl, att: attl, qkv: qkvl, lengths: lengths.ptr, b: B, t: T, c: C, heads: H)
            Ops.linearForward(out: res2l, inp: attyl, weight: p + o.projW, bias: p + o.projB, n: N, ic: C, oc: C,
                              residual: resIn)
            Ops.layerNormForward(out: ln2l, mean: ln2Mean.ptr + l * N, rstd: ln2Rstd.ptr + l * N, inp: res2l,
                                 weight: p + o.ln2w, bias: p + o.ln2b, n: N, c: C)
            Ops.linearForwardGELU(out: fchl, geluOut: fchGl, keepLocal: forBackward, inp: ln2l, weight: p + o.fcW,
                                  bias: p + o.fcB, n: N, ic: C, oc: 4 * C)
            Ops.linearForward(out: res3l, inp: fchGl, weight: p + o.fcProjW, bias: p + o.fcProjB, n: N, ic: 4 * C, oc: C,
                              residual: res2l)
        }
        let last = UnsafePointer(res3.ptr + (config.layers - 1) * N * C)
        Ops.layerNormForward(out: lnf.ptr, mean: lnfMean.ptr, rstd: lnfRstd.ptr, inp: last,
                             weight: p + lnfw, bias: p + lnfb, n: N, c: C)
    }

    /// logits (B·T, V) = lnf · wteᵀ.
    func forwardLogits(_ p: UnsafePointer<Float>, N: Int) {
        Ops.linearForward(out: logits.ptr, inp: lnf.ptr, weight: p + wte, bias: nil, n: N, ic: config.dim, oc: config.vocabSize)
    }

    /// The sampler's prefill needs each prompt's last row only: logits rows 0..<rows.count = lnf rows `rows` · wteᵀ
    /// (lnf is gathered in place). For a 50k vocabulary this skips a (B·T, V) product per sample() call.
    func forwardLogits(_ p: UnsafePointer<Float>, rows: [Int]) {
        gatherRowsInPlace(lnf.ptr, rows: rows, width: config.dim)
        forwardLogits(p, N: rows.count)
    }

    // MARK: backward

    /// Given dlnf (B·T, C), backpropagates through LN_f, every block and the embeddings into grads `g`.
    func backwardTrunk(_ p: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, B: Int, T: Int) {
        precondition(fchHoldsGELULocal, "GPT.backwardTrunk: the forward was not run with forBackward: true")
        let C = config.dim, N = B * T, H = config.heads
        dres.zero(N * C)
        let last = UnsafePointer(res3.ptr + (config.layers - 1) * N * C)
        Ops.layerNormBackward(dinp: dres.ptr, dweight: g + lnfw, dbias: g + lnfb, dout: dlnf.ptr, inp: last,
                              weight: p + lnfw, mean: lnfMean.ptr, rstd: lnfRstd.ptr, n: N, c: C)
        for l in stride(from: config.layers - 1, through: 0, by: -1) {
            let o = blocks[l]
            let resIn = l == 0 ? UnsafePointer(x0.ptr) : UnsafePointer(res3.ptr + (l - 1) * N * C)
            let ln1l = ln1.ptr + l * N * C, qkvl = qkv.ptr + l * N * 3 * C, attl = att.ptr + l * B * H * T * T
            let attyl = atty.ptr + l * N * C, res2l = res2.ptr + l * N * C, ln2l = ln2.ptr + l * N * C
            let fchl = fch.ptr + l * N * 4 * C, fchGl = fchGelu.ptr + l * N * 4 * C
            // MLP: res3 = res2 + c_proj(gelu(c_fc(ln2(res2))))
            // c_proj's dX times GELU'(pre-activation), which the forward kept in fch (dfchGelu then holds d of the
            // pre-activation): written, no zeroed buffer.
            Ops.linearBackwardGELU(dinp: dfchGelu.ptr, geluLocal: fchl, dweight: g + o.fcProjW, dbias: g + o.fcProjB,
                                   dout: dres.ptr, inp: fchGl, weight: p + o.fcProjW, n: N, ic: 4 * C, oc: C)
            Ops.linearBackward(dinp: dln.ptr, dweight: g + o.fcW, dbias: g + o.fcB, dout: dfchGelu.ptr,
                               inp: ln2l, weight: p + o.fcW, n: N, ic: C, oc: 4 * C, accumulateInput: false)
            Ops.layerNormBackward(dinp: dres.ptr, dweight: g + o.ln2w, dbias: g + o.ln2b, dout: dln.ptr, inp: res2l,
                                  weight: p + o.ln2w, mean: ln2Mean.ptr + l * N, rstd: ln2Rstd.ptr + l * N, n: N, c: C)
            // Attention: res2 = resIn + c_proj(attn(c_attn(ln1(resIn))))
            Ops.linearBackward(dinp: datty.ptr, dweight: g + o.projW, dbias: g + o.projB, dout: dres.ptr,
                               inp: attyl, weight: p + o.projW, n: N, ic: C, oc: C, accumulateInput: false)
            Ops.attentionBackward(dqkv: dqkv.ptr, scratch: attScratch.ptr, dout: datty.ptr, qkv: qkvl, att: attl,
                                  lengths: lengths.ptr, b: B, t: T, c: C, heads: H, accumulate: false)
            Ops.linearBackward(dinp: dln.ptr, dweight: g + o.attnW, dbias: g + o.attnB, dout: dqkv.ptr,
                               inp: ln1l, weight: p + o.attnW, n: N, ic: C, oc: 3 * C, accumulateInput: false)
            Ops.layerNormBackward(dinp: dres.ptr, dweight: g + o.ln1w, dbias: g + o.ln1b, dout: dln.ptr, inp: resIn,
                                  weight: p + o.ln1w, mean: ln1Mean.ptr + l * N, rstd: ln1Rstd.ptr + l * N, n: N, c: C)
        }
        // Embeddings (only real rows; pad rows carry zero gradient anyway).
        for b in 0..<B {
            for t in 0..<lengths.ptr[b] {
                let row = dres.ptr + (b * T + t) * C
                let dt = g + wte + ids.ptr[b * T + t] * C, dp = g + wpe + t * C
                for j in 0..<C { dt[j] += row[j]; dp[j] += row[j] }
            }
        }
    }

    // MARK: public API

    /// log π_T(tok[t] | tok[<t]) for t = 1..<len of each sequence (count len − 1), logits divided by temperature.
    package func tokenLogProbs(_ sequences: [[Int]], temperature: Float = 1) -> [[Float]] {
        let (B, T) = pack(sequences)
        let V = config.vocabSize
        let invT = 1 / GPT.logProbTemperature(temperature)
        params.withUnsafeBufferPointer { pb in
            forwardTrunk(pb.baseAddress!, B: B, T: T)
            forwardLogits(pb.baseAddress!, N: B * T)
        }
        return (0..<B).map { b in
            let len = lengths.ptr[b]
            return (0..<max(0, len - 1)).map { t in
                let row = logits.ptr + (b * T + t) * V
                return row[ids.ptr[b * T + t + 1]] * invT - Ops.logSumExp(row, V, scale: invT)
            }
        }
    }

    /// One forward + backward; loss = −Σ_b Σ_t w[b][t]·log π_T(tok[t+1] | tok[≤t]) − c·Σ_{w≠0} H_t.
    /// `weights` receives the current token log-probs and returns weights of the same shape. Grads ACCUMULATE.
    @discardableResult
    package func forwardBackward(_ sequences: [[Int]], temperature: Float = 1, entropyCoefficient: Float = 0,
                                 weights: ([[Float]]) -> [[Float]]) -> ForwardStats {
        let (B, T) = pack(sequences)
        let V = config.vocabSize, C = config.dim, N = B * T
        let invT = 1 / GPT.logProbTemperature(temperature)
        var stats = ForwardStats(loss: 0, meanEntropy: 0, tokenLogProbs: [])
        params.withUnsafeBufferPointer { pb in
            grads.withUnsafeMutableBufferPointer { gb in
                let p = pb.baseAddress!, g = gb.baseAddress!
                forwardTrunk(p, B: B, T: T, forBackward: true)
                forwardLogits(p, N: N)
                // Per-row work (log-probs, then the loss gradient) runs over rows split across `Parallel.threads`;
                // the Double sums of loss and entropy are then taken in (b, t) order on the caller, as before.
                scratchLP.ensure(N); scratchH.ensure(N)
                let minRows = Parallel.minRows(width: 4 * V)
                Parallel.forRanges(N, minItems: minRows) { r, _ in
                    for i in r where i % T < lengths.ptr[i / T] - 1 {
                        let row = logits.ptr + i * V
                        scratchLP.ptr[i] = row[ids.ptr[i + 1]] * invT - Ops.logSumExp(row, V, scale: invT)
                    }
                }
                var lps: [[Float]] = []
                lps.reserveCapacity(B)
                for b in 0..<B {
                    let len = lengths.ptr[b]
                    lps.append(Array(UnsafeBufferPointer(start: scratchLP.ptr + b * T, count: max(0, len - 1))))
                }
                let w = weights(lps)
                precondition(w.count == B, "forwardBackward: weights have \(w.count) rows, batch is \(B)")
                for b in 0..<B {
                    precondition(w[b].count == lps[b].count,
                                 "forwardBackward: weights[\(b)] has \(w[b].count) entries, need \(lps[b].count)")
                }
                dlogits.zero(N * V)
                scratchW.ensure(N)
                for b in 0..<B { for t in 0..<T { scratchW.ptr[b * T + t] = t < w[b].count ? w[b][t] : 0 } }
                Parallel.forRanges(N, minItems: minRows) { r, _ in
                    for i in r where scratchW.ptr[i] != 0 {
                        let (lp, h) = Ops.tokenLossBackward(dlogits: dlogits.ptr + i * V, logits: logits.ptr + i * V, v: V,
                                                            target: ids.ptr[i + 1], weight: scratchW.ptr[i],
                                                            entropyCoefficient: entropyCoefficient, invTemperature: invT)
                        scratchLP.ptr[i] = lp; scratchH.ptr[i] = h
                    }
                }
                var loss: Double = 0, entSum: Double = 0, entCount = 0
                for b in 0..<B {
                    for t in 0..<lps[b].count where w[b][t] != 0 {
                        let lp = scratchLP.ptr[b * T + t], h = scratchH.ptr[b * T + t]
                        loss -= Double(w[b][t]) * Double(lp) + Double(entropyCoefficient) * Double(h)
                        entSum += Double(h); entCount += 1
                    }
                }
                stats = ForwardStats(loss: Float(loss), meanEntropy: entCount > 0 ? Float(entSum / Double(entCount)) : 0,
                                     tokenLogProbs: lps)
                // Tied head: dlnf = dlogits · wte, dwte += dlogitsᵀ · lnf.
                Ops.linearBackward(dinp: dlnf.ptr, dweight: g + wte, dbias: nil, dout: dlogits.ptr, inp: lnf.ptr,
                                   weight: p + wte, n: N, ic: C, oc: V, accumulateInput: false)
                backwardTrunk(p, g, B: B, T: T)
            }
        }
        return stats
    }

    /// Scalar head (requires config.scalarHead): one score per sequence, read at its last token.
    package func scalarForward(_ sequences: [[Int]]) -> [Float] {
        precondition(config.scalarHead, "scalarForward: model was built without scalarHead")
        let (B, T) = pack(sequences)
        return params.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            forwardTrunk(p, B: B, T: T)
            return scores(p, B: B, T: T)
        }
    }

    func scores(_ p: UnsafePointer<Float>, B: Int, T: Int) -> [Float] {
        let C = config.dim
        return (0..<B).map { b in
            let h = lnf.ptr + (b * T + lengths.ptr[b] - 1) * C
            var s = p[scoreB]
            for j in 0..<C { s += h[j] * p[scoreW + j] }
            return s
        }
    }

    /// Forward + backward through the scalar head; `dScores` gets the scores and returns dLoss/dScore. Returns scores.
    @discardableResult
    package func scalarForwardBackward(_ sequences: [[Int]], dScores: ([Float]) -> [Float]) -> [Float] {
        precondition(config.scalarHead, "scalarForwardBackward: model was built without scalarHead")
        let (B, T) = pack(sequences)
        let C = config.dim
        var out: [Float] = []
        params.withUnsafeBufferPointer { pb in
            grads.withUnsafeMutableBufferPointer { gb in
                let p = pb.baseAddress!, g = gb.baseAddress!
                forwardTrunk(p, B: B, T: T, forBackward: true)
                out = scores(p, B: B, T: T)
                let ds = dScores(out)
                precondition(ds.count == B, "scalarForwardBackward: dScores returned \(ds.count) values for \(B) sequences")
                dlnf.zero(B * T * C)
                for b in 0..<B where ds[b] != 0 {
                    let r = (b * T + lengths.ptr[b] - 1) * C
                    let h = lnf.ptr + r, dh = dlnf.ptr + r
                    for j in 0..<C { dh[j] += ds[b] * p[scoreW + j]; g[scoreW + j] += ds[b] * h[j] }
                    g[scoreB] += ds[b]
                }
                backwardTrunk(p, g, B: B, T: T)
            }
        }
        return out
    }

    /// Full-forward logits (B, T, V) for tests and the sampler check; rows ≥ len are padding.
    package func logits(_ sequences: [[Int]]) -> [[[Float]]] {
        let (B, T) = pack(sequences)
        let V = config.vocabSize
        params.withUnsafeBufferPointer { pb in
            forwardTrunk(pb.baseAddress!, B: B, T: T)
            forwardLogits(pb.baseAddress!, N: B * T)
        }
        return (0..<B).map { b in (0..<lengths.ptr[b]).map { t in Array(UnsafeBufferPointer(start: logits.ptr + (b * T + t) * V, count: V)) } }
    }
}
