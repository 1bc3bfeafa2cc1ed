// KV-cache decoding vs the full forward, determinism by seed, greedy / top-k / top-p edge cases, stopping rules.
import XCTest
import BonfireMath
import BonfireModel
import BonfireTestSupport

final class SamplerTests: XCTestCase {
    static let cfg = GPTConfig(vocabSize: 20, contextLength: 16, layers: 2, heads: 2, dim: 16)

    func model() -> GPT {
        let m = GPT(config: Self.cfg, seed: 5)
        var rng = RNG(seed: 9)
        for i in m.params.indices { m.params[i] += Float(rng.normal()) * 0.2 }   // peaky, non-uniform distributions
        return m
    }

    /// Every FloatBuffer (decode buffers, train-step activations) starts on a cache line (the kernels' 16-float vectors then never straddle two lines),
    /// also after growing, for sizes malloc serves from its heap and from mmap, and start zeroed.
    func testFloatBufferStartsOnACacheLineAndZeroedAfterGrowing() {
        let b = FloatBuffer(3)
        for n in [3, 5, 1000, 4097, 1 << 20, 3 << 20] {
            b.ensure(n)
            XCTAssertGreaterThanOrEqual(b.capacity, n)
            XCTAssertEqual(UInt(bitPattern: b.ptr) % UInt(FloatBuffer.alignment), 0, "n=\(n)")
            XCTAssertTrue(UnsafeBufferPointer(start: b.ptr, count: n).allSatisfy { $0 == 0 }, "n=\(n)")
            b.ptr[n - 1] = 1
        }
    }

    /// The decode weights are packed once per parameter version (`DecodeState.wtGeneration`): every way of writing
    /// `params` between two sample() calls must reach the samples — they equal a fresh model's with the same
    /// parameters, and differ from the stale ones'.
    func testEveryParameterWriteReachesTheNextSample() {
        let m = model()
        let sc = SamplingConfig(temperature: 1, maxNewTokens: 8, stopToken: -1)
        func draw(_ x: GPT) -> [[SampledResponse]] {
            var rng = RNG(seed: 3)
            return x.sample(prompts: [[1, 4], [1, 5, 6]], samplesPerPrompt: 3, config: sc, rng: &rng)
        }
        func fresh() -> GPT { let f = GPT(config: Self.cfg, seed: 0, randomInit: false); f.params = m.params; return f }
        var rng = RNG(seed: 21)
        func noise() -> Float { Float(rng.normal()) * 0.5 }
        func bump(_ v: inout [Float]) { for i in v.indices { v[i] += noise() } }
        let writes: [(String, () -> Void)] = [
            ("subscript", { for i in m.params.indices { m.params[i] += noise() } }),
            ("withUnsafeMutableBufferPointer", { m.params.withUnsafeMutableBufferPointer { b in for i in b.indices { b[i] += noise() } } }),
            ("assignment", { m.params = m.params.map { $0 + noise() } }),
            ("inout", { bump(&m.params) }),
        ]
        var before = draw(m)
        XCTAssertEqual(before.map { $0.map(\.tokens) }, draw(m).map { $0.map(\.tokens) }, "unchanged parameters, same draw")
        for (how, write) in writes {
            write()
            let after = draw(m)
            XCTAssertEqual(after.map { $0.map(\.tokens) }, draw(fresh()).map { $0.map(\.tokens) }, how)
            XCTAssertEqual(after.map { $0.map(\.logProbs) }, draw(fresh()).map { $0.map(\.logProbs) }, how)
            XCTAssertNotEqual(after.map { $0.map(\.logProbs) }, before.map { $0.map(\.logProbs) }, "\(how): stale weights")
            before = after
        }
    }

    /// drawToken's log π_T reuses the sampling exps when the two temperatures agree: it must be exactly
    /// row[tok]/T − logSumExp(row/T), the definition tokenLogProbs uses, also on extreme rows.
    func testDrawnLogProbIsExactlyTheLogSoftmax() {
        var rng = RNG(seed: 4)
        let V = 37
        let rows: [[Float]] = [
            (0..<V).map { _ in Float(rng.normal()) * 3 },
            (0..<V).map { $0 == 5 ? 80 : Float(rng.normal()) },                  // one dominant logit
            (0..<V).map { $0 % 3 == 0 ? -.infinity : Float(rng.normal()) * 20 },  // masked ids
            (0..<V).map { _ in Float(rng.normal()) * 1e30 },                      // huge logits
            [Float](repeating: 2.5, count: V),                                    // uniform
        ]
        let probs = UnsafeMutablePointer<Float>.allocate(capacity: V)
        defer { probs.deallocate() }
        for (r, row) in rows.enumerated() {
            for sc in [SamplingConfig(temperature: 1), SamplingConfig(temperature: 0.7), SamplingConfig(temperature: 1.9),
                       SamplingConfig(temperature: 0), SamplingConfig(temperature: 0.7, topK: 5),
                       SamplingConfig(temperature: 1, topP: 0.5, recordEntropy: true)] {
                var x = row
                let lpInvT = 1 / GPT.logProbTemperature(sc.temperature)
                for _ in 0..<20 {
                    let (tok, lp, _) = x.withUnsafeMutableBufferPointer {
                        drawToken($0.baseAddress!, V: V, config: sc, rng: &rng, probs: probs)
                    }
                    XCTAssertTrue((0..<V).contains(tok), "row \(r)")
                    let want = x[tok] * lpInvT - x.withUnsafeBufferPointer { Ops.logSumExp($0.baseAddress!, V, scale: lpInvT) }
                    XCTAssertEqual(lp.bitPattern, want.bitPattern, "row \(r), T = \(sc.temperature): \(lp) vs \(want)")
                }
            }
        }
    }

    func testKVCacheLogitsEqualFullForwardAtEveryPosition() {
        let m = model()
        let prompt = [1, 4, 7], cont = [3, 9, 9, 12, 5, 2, 8, 8, 10, 11, 4, 6, 13]
        let cached = m.cachedLogits(prompt: prompt, continuation: cont)
        let full = m.logits([prompt + cont])[0]
        XCTAssertEqual(cached.count, cont.count + 1)
        for (i, row) in cached.enumerated() {
            expectClose(row, full[prompt.count - 1 + i], rtol: 1e-4, atol: 1e-5, "position \(prompt.count - 1 + i)")
        }
    }

    func testSampledLogProbsMatchTokenLogProbs() {
        let m = model()
        var rng = RNG(seed: 1)
        let prompts = [[1, 4], [1, 5, 6, 7, 8]]
        for temp: Float in [1, 0.7, 0] {
            let cfg = SamplingConfig(temperature: temp, maxNewTokens: 9, stopToken: 2)
            let out = m.sample(prompts: prompts, samplesPerPrompt: 3, config: cfg, rng: &rng)
            XCTAssertEqual(out.map(\.count), [3, 3])
            for (p, group) in out.enumerated() { for r in group {
                XCTAssertEqual(r.tokens.count, r.logProbs.count)
                let lp = m.tokenLogProbs([prompts[p] + r.tokens], temperature: temp)[0]
                expectClose(r.logProbs, Array(lp.suffix(r.tokens.count)), rtol: 1e-4, atol: 1e-4, "T=\(temp)")
            } }
        }
    }

    func testSamplingIsReproducibleBySeed() {
        let m = model()
        let cfg = SamplingConfig(temperature: 1, topK: 0, topP: 0.95, maxNewTokens: 10)
        var a = RNG(seed: 77), b = RNG(seed: 77), c = RNG(seed: 78)
        let x = m.sample(prompts: [[1, 3], [1]], samplesPerPrompt: 4, config: cfg, rng: &a)
        let y = m.sample(prompts: [[1, 3], [1]], samplesPerPrompt: 4, config: cfg, rng: &b)
        let z = m.sample(prompts: [[1, 3], [1]], samplesPerPrompt: 4, config: cfg, rng: &c)
        XCTAssertEqual(x, y)
        XCTAssertNotEqual(x.flatMap { $0.map(\.tokens) }, z.flatMap { $0.map(\.tokens) })
        // Samples within a BoN group differ (stochastic decoding).
        XCTAssertGreaterThan(Set(x[1].map(\.tokens)).count, 1)
    }

    func greedyReference(_ m: GPT, prompt: [Int], steps: Int) -> [Int] {
        var seq = prompt
        for _ in 0..<steps {
            let row = m.logits([seq])[0].last!
            seq.append(row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) }!)
        }
        return Array(seq.dropFirst(prompt.count))
    }

    func testZeroTemperatureTopK1AndTinyTopPAreGreedy() {
        let m = model()
        let ref = greedyReference(m, prompt: [1, 6], steps: 8)
        var rng = RNG(seed: 3)
        for cfg in [SamplingConfig(temperature: 0, maxNewTokens: 8, stopToken: -1),
                    SamplingConfig(temperature: 1e-7, maxNewTokens: 8, stopToken: -1),
                    SamplingConfig(temperature: 1.5, topK: 1, maxNewTokens: 8, stopToken: -1),
                    SamplingConfig(temperature: 1.5, topP: 1e-6, maxNewTokens: 8, stopToken: -1)] {
            let out = m.sample(prompts: [[1, 6]], samplesPerPrompt: 3, config: cfg, rng: &rng)
            for r in out[0] { XCTAssertEqual(r.tokens, ref, "\(cfg)") }
        }
    }

    func testTopKAndTopPRestrictTheSupport() {
        let m = model()
        var rng = RNG(seed: 4)
        let prompt = [1, 2, 3]
        let row = m.logits([prompt])[0].last!
        let order = row.indices.sorted { row[$0] > row[$1] }
        let top2 = Set(order.prefix(2))
        let k2 = m.sample(prompts: [prompt], samplesPerPrompt: 200, config: SamplingConfig(maxNewTokens: 1, stopToken: -1), rng: &rng)
        let k2restricted = m.sample(prompts: [prompt], samplesPerPrompt: 200,
                                    config: SamplingConfig(topK: 2, maxNewTokens: 1, stopToken: -1), rng: &rng)
        XCTAssertTrue(k2restricted[0].allSatisfy { top2.contains($0.tokens[0]) })
        XCTAssertEqual(Set(k2restricted[0].map { $0.tokens[0] }), top2, "both top-2 tokens appear in 200 draws")
        XCTAssertGreaterThan(Set(k2[0].map { $0.tokens[0] }).count, 2, "unrestricted sampling uses more tokens")
        // top-p: the nucleus is the smallest prefix with mass ≥ p.
        let mx = row.max()!
        let probs = row.map { exp(Double($0 - mx)) }, z = probs.reduce(0, +)
        var cum = 0.0, nucleus = Set<Int>()
        for i in order { cum += probs[i] / z; nucleus.insert(i); if cum >= 0.6 { break } }
        let pOut = m.sample(prompts: [prompt], samplesPerPrompt: 200, config: SamplingConfig(topP: 0.6, maxNewTokens: 1, stopToken: -1), rng: &rng)
        XCTAssertTrue(pOut[0].allSatisfy { nucleus.contains($0.tokens[0]) }, "nucleus \(nucleus)")
        // Large k / p = 1 change nothing: same draws as unrestricted with the same seed.
        var r1 = RNG(seed: 5), r2 = RNG(seed: 5)
        XCTAssertEqual(m.sample(prompts: [prompt], samplesPerPrompt: 5, config: SamplingConfig(topK: 100, maxNewTokens: 4), rng: &r1),
                       m.sample(prompts: [prompt], samplesPerPrompt: 5, config: SamplingConfig(maxNewTokens: 4), rng: &r2))
    }

    func testStopsAtStopTokenMaxNewTokensAndContextLength() {
        let m = model()
        var rng = RNG(seed: 8)
        let ref = greedyReference(m, prompt: [1], steps: 6)
        let stop = ref[3]
        let first = ref.firstIndex(of: stop)!
        let out = m.sample(prompts: [[1]], samplesPerPrompt: 1, config: SamplingConfig(temperature: 0, maxNewTokens: 10, stopToken: stop), rng: &rng)
        XCTAssertEqual(out[0][0].tokens, Array(ref.prefix(first + 1)), "stop token included, nothing after it")
        let capped = m.sample(prompts: [[1, 2]], samplesPerPrompt: 2, config: SamplingConfig(maxNewTokens: 3, stopToken: -1), rng: &rng)
        XCTAssertTrue(capped[0].allSatisfy { $0.tokens.count == 3 })
        let long = Array(repeating: 5, count: 13)   // ctx 16: room for 3 more tokens
        let full = m.sample(prompts: [long, Array(long.prefix(16))], samplesPerPrompt: 2,
                            config: SamplingConfig(maxNewTokens: 50, stopToken: -1), rng: &rng)
        XCTAssertTrue(full[0].allSatisfy { $0.tokens.count == 3 })
        XCTAssertTrue(full[1].allSatisfy { $0.tokens.count == 3 })
        let none = m.sample(prompts: [Array(repeating: 5, count: 16)], samplesPerPrompt: 1,
                            config: SamplingConfig(maxNewTokens: 5, stopToken: -1), rng: &rng)
        XCTAssertEqual(none[0][0].tokens, [])
    }

    /// With two threads the decode step splits the active slots; every kernel treats rows independently, so tokens
    /// and log-probs are the same bits as with one thread (also when slots finish at different steps).
    func testTwoThreadsSampleExactlyWhatOneThreadSamples() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        let m = model()
        let cfg = SamplingConfig(temperature: 1, maxNewTokens: 12, stopToken: 2)
        func run(_ threads: Int) -> [[SampledResponse]] {
            Parallel.setThreads(threads)
            var rng = RNG(seed: 31)
            return m.sample(prompts: [[1, 3], [1], [4, 5, 6]], samplesPerPrompt: 8, config: cfg, rng: &rng)
        }
        let one = run(1), two = run(2)
        XCTAssertEqual(one, two)
        XCTAssertGreaterThan(Set(one.flatMap { $0.map(\.tokens.count) }).count, 1, "slots stopped at different steps")
    }
    /// The prefill runs the prompt's rows as one decode step: prefilling a whole prompt gives the same logits, bit for
    /// bit, as prefilling its first token and decoding the rest one token at a time (rows blocked 6 + 4 by the
    /// decode products against 1 at a time).
    func testPrefillIsTheDecodeStepBitForBit() {
        let m = model()
        let prompt = [1, 4, 7, 3, 9, 9, 12, 5, 2, 8]
        let whole = m.cachedLogits(prompt: prompt, continuation: [5, 6])
        let stepwise = m.cachedLogits(prompt: [prompt[0]], continuation: Array(prompt.dropFirst()) + [5, 6])
        XCTAssertEqual(whole.count, 3)
        XCTAssertEqual(whole, Array(stepwise.suffix(3)))
    }

    /// Greedy decoding is deterministic, so a prompt's tokens and log-probs must not depend on the other prompts of
    /// the call: prompts of different lengths in groups of 3, at one and two threads (22 prompt rows: the prefill
    /// splits the prompts over both threads).
    func testBatchedPrefillSamplesWhatEachPromptAloneSamples() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        let m = model()
        let prompts = [[1, 3, 5, 7, 9, 11, 13, 2, 4], [1], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [6, 6]]
        let cfg = SamplingConfig(temperature: 0, maxNewTokens: 5)
        for threads in [1, 2] {
            Parallel.setThreads(threads)
            var rng = RNG(seed: 5)
            let batch = m.sample(prompts: prompts, samplesPerPrompt: 3, config: cfg, rng: &rng)
            XCTAssertEqual(batch.map(\.count), [3, 3, 3, 3])
            for (i, p) in prompts.enumerated() {
                var one = RNG(seed: 5)
                let alone = m.sample(prompts: [p], samplesPerPrompt: 1, config: cfg, rng: &one)[0][0]
                XCTAssertFalse(alone.tokens.isEmpty)
                for r in batch[i] { XCTAssertEqual(r, alone, "prompt \(i) at \(threads) thread(s)") }
            }
        }
    }

    /// A call whose prompt rows exceed `GPT.prefillRowsPerPass` prefills in passes of whole prompts (one prompt
    /// longer than the limit alone): the same samples, bit for bit, as in one pass.
    func testPrefillInPassesSamplesWhatOnePassSamples() {
        let saved = GPT.prefillRowsPerPass
        defer { GPT.prefillRowsPerPass = saved }
        let m = model()
        let prompts = [[1, 3, 5, 7, 9, 11, 13, 2, 4], [1], [4, 5, 6, 7, 8, 9, 10, 11, 12, 13], [6, 6], [3, 2, 1]]
        let cfg = SamplingConfig(temperature: 1, maxNewTokens: 5)
        func run() -> [[SampledResponse]] {
            var rng = RNG(seed: 8)
            return m.sample(prompts: prompts, samplesPerPrompt: 2, config: cfg, rng: &rng)
        }
        let one = run()
        for limit in [1, 5, 10, 12] {
            GPT.prefillRowsPerPass = limit
            XCTAssertEqual(run(), one, "\(limit) rows per pass")
        }
    }

    /// Models above `GPT.decodePackingLimit` decode on the plain path (OpenBLAS, the prefill a training forward whose
    /// K/V rows are copied into the cache): the same logits as the packed path within rounding, and the same greedy
    /// samples.
    func testPlainPathForLargeModelsMatchesThePackedPath() {
        let saved = GPT.decodePackingLimit
        defer { GPT.decodePackingLimit = saved }
        let prompt = [1, 4, 7, 3], cont = [9, 12, 5, 5, 2]
        let prompts = [[1, 3, 5, 7], [2], [4, 4, 4]]
        let cfg = SamplingConfig(temperature: 0, maxNewTokens: 6)
        func run(_ m: GPT) -> (logits: [[Float]], samples: [[SampledResponse]]) {
            var rng = RNG(seed: 2)
            return (m.cachedLogits(prompt: prompt, continuation: cont),
                    m.sample(prompts: prompts, samplesPerPrompt: 2, config: cfg, rng: &rng))
        }
        let packedModel = model()
        let packed = run(packedModel)
        XCTAssertTrue(packedModel.decodesWithPackedWeights)
        GPT.decodePackingLimit = 0
        let plainModel = model()
        let plain = run(plainModel)
        XCTAssertFalse(plainModel.decodesWithPackedWeights)
        XCTAssertEqual(packed.logits.count, plain.logits.count)
        for (i, (x, y)) in zip(packed.logits, plain.logits).enumerated() { expectClose(x, y, rtol: 1e-4, atol: 1e-5, "row \(i)") }
        XCTAssertEqual(packed.samples.map { $0.map(\.tokens) }, plain.samples.map { $0.map(\.tokens) })
        for (ga, gb) in zip(packed.samples, plain.samples) {
            for (x, y) in zip(ga, gb) { expectClose(x.logProbs, y.logProbs, rtol: 1e-4, atol: 1e-5) }
        }
    }
}
