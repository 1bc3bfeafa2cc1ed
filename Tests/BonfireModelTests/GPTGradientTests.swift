// Whole-model finite-difference checks (tiny sizes) and padding/masking invariants of the batched forward.
import XCTest
import BonfireMath
import BonfireModel
import BonfireTestSupport

final class GPTGradientTests: XCTestCase {
    static let cfg = GPTConfig(vocabSize: 11, contextLength: 8, layers: 2, heads: 2, dim: 8, scalarHead: true)
    let seqs = [[1, 4, 5, 6, 7, 2], [1, 3, 9], [1, 10, 3, 3, 4, 5, 6, 2]]

    /// A model with non-trivial LayerNorm gains/biases and scalar-head weights.
    func makeModel() -> GPT {
        let m = GPT(config: Self.cfg, seed: 3)
        var rng = RNG(seed: 11)
        for i in m.params.indices { m.params[i] += Float(rng.normal()) * 0.1 }
        return m
    }

    func weights(_ lps: [[Float]]) -> [[Float]] {
        lps.enumerated().map { b, row in row.indices.map { t in (t % 3 == 1) ? 0 : Float(b + 1) * 0.3 - Float(t) * 0.05 } }
    }

    func lossDouble(_ m: GPT, temperature: Float, coef: Float) -> Double {
        let lps = m.tokenLogProbs(seqs, temperature: temperature)
        let w = weights(lps)
        var loss = 0.0
        for b in lps.indices { for t in lps[b].indices where w[b][t] != 0 { loss -= Double(w[b][t]) * Double(lps[b][t]) } }
        if coef != 0 {
            // Entropies via full-forward logits.
            let lg = m.logits(seqs)
            for b in lps.indices { for t in lps[b].indices where w[b][t] != 0 {
                let z = lg[b][t].map { Double($0) / Double(temperature) }
                let mx = z.max()!
                let lse = mx + log(z.map { exp($0 - mx) }.reduce(0, +))
                loss -= Double(coef) * -z.map { exp($0 - lse) * ($0 - lse) }.reduce(0, +)
            } }
        }
        return loss
    }

    func testForwardBackwardMatchesFiniteDifferencesForEveryParameter() {
        let m = makeModel()
        let (temp, coef): (Float, Float) = (1.3, 0.2)
        m.zeroGrad()
        let stats = m.forwardBackward(seqs, temperature: temp, entropyCoefficient: coef, weights: weights)
        XCTAssertEqual(Double(stats.loss), lossDouble(m, temperature: temp, coef: coef), accuracy: 1e-4)
        let analytic = m.grads
        var numeric = [Float](repeating: 0, count: m.params.count)
        let eps: Float = 1e-2
        for i in m.params.indices {
            let old = m.params[i]
            m.params[i] = old + eps; let fp = lossDouble(m, temperature: temp, coef: coef)
            m.params[i] = old - eps; let fm = lossDouble(m, temperature: temp, coef: coef)
            m.params[i] = old
            numeric[i] = Float((fp - fm) / (2 * Double(eps)))
        }
        for e in m.layout.entries where !e.name.hasPrefix("score") {
            expectClose(Array(analytic[e.range]), Array(numeric[e.range]), rtol: 3e-2, atol: 2e-3, e.name)
        }
        // Scalar-head parameters get no gradient from the LM loss.
        XCTAssertTrue(analytic[m.layout["score.weight"].range].allSatisfy { $0 == 0 })
    }

    func testScalarHeadGradientMatchesFiniteDifferences() {
        let m = makeModel()
        let target: [Float] = [0.5, -1, 2]
        func loss() -> Double {
            let s = m.scalarForward(seqs)
            return zip(s, target).reduce(0) { $0 + 0.5 * Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        }
        m.zeroGrad()
        let scores = m.scalarForwardBackward(seqs) { s in zip(s, target).map { $0 - $1 } }
        XCTAssertEqual(scores, m.scalarForward(seqs))
        let eps: Float = 1e-2
        var numeric = [Float](repeating: 0, count: m.params.count)
        for i in m.params.indices {
            let old = m.params[i]
            m.params[i] = old + eps; let fp = loss()
            m.params[i] = old - eps; let fm = loss()
            m.params[i] = old
            numeric[i] = Float((fp - fm) / (2 * Double(eps)))
        }
        for e in m.layout.entries {
            expectClose(Array(m.grads[e.range]), Array(numeric[e.range]), rtol: 3e-2, atol: 2e-3, e.name)
        }
    }

    func testPaddingDoesNotChangeLogProbsOrScores() {
        let m = makeModel()
        let batch = m.tokenLogProbs(seqs, temperature: 0.8)
        for (b, s) in seqs.enumerated() {
            expectClose(m.tokenLogProbs([s], temperature: 0.8)[0], batch[b], rtol: 1e-5, atol: 1e-5, "seq \(b)")
        }
        let sc = m.scalarForward(seqs)
        for (b, s) in seqs.enumerated() { XCTAssertEqual(m.scalarForward([s])[0], sc[b], accuracy: 1e-5) }
        XCTAssertEqual(batch.map(\.count), seqs.map { $0.count - 1 })
    }

    func testGradientsAccumulateAcrossCalls() {
        let m = makeModel()
        m.zeroGrad()
        m.forwardBackward(seqs) { $0.map { $0.map { _ in 1 } } }
        let once = m.grads
        m.forwardBackward(seqs) { $0.map { $0.map { _ in 1 } } }
        expectClose(m.grads, once.map { 2 * $0 }, rtol: 1e-5, atol: 1e-6, "accumulated grads")
    }

    func testLayoutIsOrderedContiguousAndNamed() {
        let m = GPT(config: .tiny, seed: 1)
        var off = 0
        for e in m.layout.entries { XCTAssertEqual(e.offset, off); off += e.count }
        XCTAssertEqual(off, m.params.count)
        XCTAssertEqual(m.layout.entries.first?.name, "wte")
        XCTAssertEqual(m.layout["h.3.mlp.c_fc.weight"].shape, [512, 128])
        XCTAssertNil(m.layout.entry(named: "score.weight"))
        XCTAssertEqual(GPT(config: .tiny, seed: 1).params, m.params, "init is deterministic by seed")
        XCTAssertNotEqual(GPT(config: .tiny, seed: 2).params, m.params)
    }

    /// Bonfire's threads (attention pairs, LayerNorm rows/columns, GELU chunks, split products) change no bit of a
    /// forward + backward: loss, log-probs and every gradient equal the 1-thread result, padding included.
    func testTwoThreadsGiveTheOneThreadGradientsBitForBit() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved) }
        let cfg = GPTConfig(vocabSize: 40, contextLength: 64, layers: 2, heads: 4, dim: 64)
        var rng = RNG(seed: 41)
        let seqs = (0..<24).map { i in (0..<(i % 3 == 0 ? 64 : 40 + i)).map { _ in rng.int(cfg.vocabSize) } }
        func run(_ threads: Int) -> ([Float], ForwardStats) {
            Parallel.setThreads(threads)
            let m = GPT(config: cfg, seed: 3)
            let stats = m.forwardBackward(seqs, temperature: 0.8, entropyCoefficient: 0.01) { $0.map { $0.map { _ in 0.01 } } }
            return (m.grads, stats)
        }
        let (g1, s1) = run(1), (g2, s2) = run(2)
        XCTAssertTrue(BLAS.sgemmParts(m: 24 * 64, n: 4 * 64, k: 64) == 2, "the MLP product is split at 2 threads")
        XCTAssertEqual(s1.loss, s2.loss)
        XCTAssertEqual(s1.tokenLogProbs, s2.tokenLogProbs)
        XCTAssertEqual(g1, g2)
    }

    /// The GEMM epilogues (bias and residual in the first k-block, GELU and the GELU' kept for the backward in the
    /// last: BLAS.Epilogue) change no bit of a forward + backward at a width where every linear product runs on the own kernel (C = 128): loss,
    /// log-probs and every gradient equal those of the separate passes (`BLAS.fusesEpilogues` off), at 1 and 2
    /// threads. Without AVX-512 both runs take the separate passes.
    func testFusedEpiloguesGiveTheSeparatePassesGradientsBitForBit() {
        let saved = Parallel.threads
        defer { Parallel.setThreads(saved); BLAS.fusesEpilogues = true }
        let cfg = GPTConfig(vocabSize: 40, contextLength: 64, layers: 2, heads: 4, dim: 128)
        var rng = RNG(seed: 42)
        let seqs = (0..<24).map { i in (0..<(i % 3 == 0 ? 64 : 40 + i)).map { _ in rng.int(cfg.vocabSize) } }
        XCTAssertEqual(BLAS.fuses(m: 24 * 64, n: 4 * 128, k: 128), Kernels.isa == .avx512)
        func run(threads: Int, fused: Bool) -> ([Float], ForwardStats) {
            Parallel.setThreads(threads)
            BLAS.fusesEpilogues = fused
            let m = GPT(config: cfg, seed: 3)
            var r = RNG(seed: 5)
            for i in m.params.indices { m.params[i] += Float(r.normal()) * 0.05 }   // nonzero biases
            let stats = m.forwardBackward(seqs, temperature: 0.8, entropyCoefficient: 0.01) { $0.map { $0.map { _ in 0.01 } } }
            return (m.grads, stats)
        }
        for threads in [1, 2] {
            let (gf, sf) = run(threads: threads, fused: true), (gs, ss) = run(threads: threads, fused: false)
            XCTAssertEqual(sf.loss, ss.loss, "\(threads) threads")
            XCTAssertEqual(sf.tokenLogProbs, ss.tokenLogProbs, "\(threads) threads")
            XCTAssertTrue(gf == gs, "\(threads) threads: gradients")
            XCTAssertTrue(gf.allSatisfy(\.isFinite))
        }
    }
}
