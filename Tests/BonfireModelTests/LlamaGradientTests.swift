// Whole-model finite-difference check of LlamaModel (every parameter: untied head, q/k/v/o biases, GQA, llama3 rope
// scaling, padded batch, temperature and entropy bonus), and padding invariance of the batched forward.
import XCTest
import BonfireMath
import BonfireModel
import BonfireTestSupport

final class LlamaGradientTests: XCTestCase {
    static let cfg = LlamaConfig(vocabSize: 11, dim: 8, hidden: 12, layers: 2, heads: 4, kvHeads: 2, contextLength: 10,
                                 rmsEps: 1e-5, ropeTheta: 100,
                                 ropeScaling: .llama3(factor: 4, lowFreqFactor: 0.5, highFreqFactor: 2, originalContext: 8),
                                 qkvBias: true, outputBias: true, tiedHead: false)
    let seqs = [[1, 4, 5, 6, 7, 2], [1, 3, 9], [1, 10, 3, 3, 4, 5, 6, 2]]

    func makeModel(_ c: LlamaConfig = cfg) -> LlamaModel {
        let m = LlamaModel(config: c, seed: 3)
        var rng = RNG(seed: 11)
        for i in m.params.indices { m.params[i] += Float(rng.normal()) * 0.3 }
        return m
    }

    func weights(_ lps: [[Float]]) -> [[Float]] {
        lps.enumerated().map { b, row in row.indices.map { t in (t % 3 == 1) ? 0 : Float(b + 1) * 0.3 - Float(t) * 0.05 } }
    }

    func lossDouble(_ m: LlamaModel, temperature: Float, coef: Float) -> Double {
        let lg = m.logits(seqs)
        let w = weights(seqs.map { Array(repeating: 0, count: $0.count - 1) })
        var loss = 0.0
        for b in seqs.indices { for t in 0..<(seqs[b].count - 1) where w[b][t] != 0 {
            let z = lg[b][t].map { Double($0) / Double(temperature) }
            let mx = z.max()!
            let lse = mx + log(z.map { exp($0 - mx) }.reduce(0, +))
            loss -= Double(w[b][t]) * (z[seqs[b][t + 1]] - lse)
            loss -= Double(coef) * -z.map { exp($0 - lse) * ($0 - lse) }.reduce(0, +)
        } }
        return loss
    }

    func testForwardBackwardMatchesFiniteDifferencesForEveryParameter() {
        for c in [Self.cfg, { var t = Self.cfg; t.tiedHead = true; t.qkvBias = false; t.outputBias = false; t.ropeScaling = .linear(factor: 2); return t }()] {
            let m = makeModel(c)
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
            for e in m.layout.entries {
                expectClose(Array(analytic[e.range]), Array(numeric[e.range]), rtol: 3e-2, atol: 3e-3, e.name)
            }
        }
    }

    func testBatchedLogitsEqualOneSequenceAtATime() {
        let m = makeModel()
        let batched = m.logits(seqs)
        for (b, s) in seqs.enumerated() {
            expectClose(Array(batched[b].joined()), Array(m.logits([s])[0].joined()), rtol: 1e-5, atol: 1e-5, "sequence \(b)")
        }
    }

    func testGradientsAccumulateAcrossCalls() {
        let m = makeModel()
        m.zeroGrad()
        m.forwardBackward(seqs, weights: { $0.map { $0.map { _ in 1 } } })
        let once = m.grads
        m.forwardBackward(seqs, weights: { $0.map { $0.map { _ in 1 } } })
        expectClose(m.grads, once.map { 2 * $0 }, rtol: 1e-5, atol: 1e-6, "accumulated twice")
    }

    func testConformsToLanguageModelLikeGPT() {
        let models: [any LanguageModel] = [makeModel(), GPT(config: .tiny, seed: 1)]
        for m in models {
            XCTAssertEqual(m.params.count, m.layout.totalCount)
            let lp = m.tokenLogProbs([[1, 2, 3]], temperature: 1)
            XCTAssertEqual(lp[0].count, 2)
            XCTAssertTrue(lp[0].allSatisfy { $0 < 0 && $0.isFinite })
        }
    }
}
