// The learners' own weight functions, checked by exact enumeration over all N-tuples of tabular policies:
// BoN-RLB/BoN-RLB(P) c(p) factors (C4, C12), BoN-RL variants (identities 1–4), RL's RLOO, BoN-SFT's Monte Carlo
// estimator against the exact §2.1 gradient (C5), and the N = 1 reductions (C10).

import XCTest
import BonfireMath
import BonfireAlgorithms
import BonfireTestSupport

final class BoNEstimatorTests: XCTestCase {
    let pi = ExactBoN.softmax(specLogits)

    func rlb(_ estimator: BoNRLB.Config.Estimator, positiveOnly: Bool = false, sign: Double = 1,
             negative: BoNRLB.Config.NegativeWeight = .gMinus, p: Double? = nil) -> BoNRLB {
        var c = BoNRLB.Config()
        c.estimator = estimator; c.positiveOnly = positiveOnly; c.negativeSign = sign; c.negativeWeight = negative
        if let p { c.pFail = .fixed(p) }
        return BoNRLB(config: c)
    }

    /// Expectation of an RLB estimator divided by G (it must be parallel to G).
    func cFactor(_ learner: BoNRLB, pi: [Double], rewards R: [Double], n: Int) -> Double {
        let e = ExactBoN.expectedGradient(pi: pi, scores: R, rewards: R, n: n) { _, r in learner.weights(rewards: r) }
        let G = ExactBoN.passGradient(pi: pi, rewards: R)
        let c = zip(e, G).reduce(0) { $0 + $1.0 * $1.1 } / zip(G, G).reduce(0) { $0 + $1.0 * $1.1 }
        expectClose(e, G.map { $0 * c }, rtol: 0, atol: 1e-12, "estimator parallel to G")
        return c
    }

    func testC4BinaryBoNQuantities() {
        let R = specRewards, n = 4
        let p = ExactBoN.failureProbability(pi: pi, rewards: R)
        expectClose(p, 0.6681877721681662, rtol: 0, atol: 1e-12, "p_fail")
        let bin = ExactBoN.binaryBoNDistribution(pi: pi, rewards: R, n: n)
        expectClose(bin, [0.0618004359, 0.2482250830, 0.1375393994, 0.5524350817], rtol: 0, atol: 1e-9, "π_bon binary")
        expectClose(bin, ExactBoN.bonDistribution(pi: pi, scores: R, n: n), rtol: 0, atol: 1e-12, "binary = general with ties")
        expectClose(ExactBoN.passAtN(pFail: p, n: n), 0.8006601646745075, rtol: 0, atol: 1e-12, "J")
        expectClose(ExactBoN.value(pi: pi, scores: R, rewards: R, n: n), 0.8006601646745075, rtol: 0, atol: 1e-12, "J general")
        let G = ExactBoN.passGradient(pi: pi, rewards: R)
        expectClose(G, [-0.0687366486, 0.0687366486, -0.1529762247, 0.1529762247], rtol: 0, atol: 1e-9, "G")
        let grad = [-0.0820245612, 0.0820245612, -0.1825490182, 0.1825490182]
        expectClose(ExactBoN.valueGradient(logits: specLogits, scores: R, rewards: R, n: n), grad, rtol: 0, atol: 1e-9, "∇J")
        expectClose(G.map { $0 * ExactBoN.cTrue(p: p, n: n) }, grad, rtol: 0, atol: 1e-9, "N p^{N−1} G")
    }

    func testC4CFactorTableByEnumeration() {
        let R = specRewards, n = 4
        let p = ExactBoN.failureProbability(pi: pi, rewards: R)
        let rows: [(String, BoNRLB, Double)] = [
            ("unique correct (default)", rlb(.uniqueCorrect), 1.1933162720),
            ("π_bon, ḡ⁺ only", rlb(.bonWeighted, positiveOnly: true, p: p), 1.1933162720),
            ("π_bon, g⁺ and +g⁻", rlb(.bonWeighted, sign: 1, p: p), 1.1933162720),
            ("π_bon, g⁺ and −g⁻", rlb(.bonWeighted, sign: -1, p: p), 5.9994040194),
            ("π, g⁺ and −g⁻", rlb(.policyWeighted, sign: -1, p: p), 9.5454262704),
        ]
        for (name, learner, c) in rows {
            // Policy-weighted averages over the N samples: E[(1/N)Σ_i w(R_i)∇log π_i] = (g⁺ + g⁻)·G.
            expectClose(cFactor(learner, pi: pi, rewards: R, n: n), c, rtol: 1e-9, atol: 0, name)
        }
        // π_bon with −N on negatives only: weight 0 on positives.
        var negOnly = BoNRLB.Config()
        negOnly.estimator = .bonWeighted; negOnly.negativeSign = -1; negOnly.negativeWeight = .constantN
        negOnly.pFail = .fixed(p)
        let e = ExactBoN.expectedGradient(pi: pi, scores: R, rewards: R, n: n) { _, r in
            let w = BoNRLB(config: negOnly).weights(rewards: r)
            return zip(w, r).map { $1 >= 0.5 ? 0 : $0 }
        }
        expectClose(e, ExactBoN.passGradient(pi: pi, rewards: R).map { $0 * 1.1933162720 }, rtol: 1e-9, atol: 0,
                    "π_bon, −N on negatives only")
        // π, R − mean: RLOO gives the pass@1 gradient (c = 1); the mean including self gives (N−1)/N.
        let rloo = ExactBoN.expectedGradient(pi: pi, scores: R, rewards: R, n: n) { _, r in GroupWeights.rloo(rewards: r) }
        expectClose(rloo, ExactBoN.passGradient(pi: pi, rewards: R), rtol: 0, atol: 1e-12, "RLOO c = 1")
        let mean = ExactBoN.expectedGradient(pi: pi, scores: R, rewards: R, n: n) { _, r in GroupWeights.meanBaseline(rewards: r) }
        expectClose(mean, ExactBoN.passGradient(pi: pi, rewards: R).map { $0 * 3 / 4 }, rtol: 0, atol: 1e-12, "mean c = (N−1)/N")
    }

    func testC12WeightTable() {
        let rows: [(n: Int, p: Double, gp: Double, gm: Double, gb: Double, cs: Double, cBonMinus: Double, cPiMinus: Double)] = [
            (4, 0.1, 0.0040004, 0.444444, 0.00360036, 0.004, 0.00488889, 0.448445),
            (4, 0.5, 0.533333, 4, 0.266667, 0.5, 1.5, 4.53333),
            (4, 0.9, 8.47921, 36, 0.847921, 2.916, 55.404, 44.4792),
            (32, 0.5, 1.49012e-8, 32, 7.45058e-9, 1.49012e-8, 4.47035e-8, 32),
            (32, 0.9, 1.26428, 288, 0.126428, 1.22087, 23.1964, 289.264),
        ]
        for r in rows {
            let gp = ExactBoN.gPlus(p: r.p, n: r.n), gm = ExactBoN.gMinus(p: r.p, n: r.n), gb = ExactBoN.gBarPlus(p: r.p, n: r.n)
            expectClose(gp, r.gp, rtol: 1e-5, atol: 0, "g⁺ N=\(r.n) p=\(r.p)")
            expectClose(gm, r.gm, rtol: 1e-5, atol: 0, "g⁻")
            expectClose(gb, r.gb, rtol: 1e-5, atol: 0, "ḡ⁺")
            expectClose(ExactBoN.cTrue(p: r.p, n: r.n), r.cs, rtol: 1e-5, atol: 0, "c*")
            expectClose(ExactBoN.cUnderBoN(p: r.p, n: r.n, wPos: gp, wNeg: -gm), r.cBonMinus, rtol: 1e-5, atol: 0, "c π_bon −g⁻")
            expectClose(ExactBoN.cUnderPolicy(wPos: gp, wNeg: -gm), r.cPiMinus, rtol: 1e-5, atol: 0, "c π −g⁻")
            expectClose(ExactBoN.cUnderBoN(p: r.p, n: r.n, wPos: gb, wNeg: 0), ExactBoN.cTrue(p: r.p, n: r.n), rtol: 1e-9, atol: 0, "ḡ⁺ exact")
            expectClose(ExactBoN.cUnderBoN(p: r.p, n: r.n, wPos: gp, wNeg: gm), ExactBoN.cTrue(p: r.p, n: r.n), rtol: 1e-9, atol: 0, "g⁺,+g⁻ exact")
            XCTAssert((0...1).contains(gb), "ḡ⁺ ∈ [0, 1]")
        }
    }

    func testRLBOnRandomFixturesMatchesAnalyticCFactor() {
        for (logits, _, R) in randomFixtures(count: 5, k: 4, ties: true, binary: true, seed: 11) {
            let p0 = ExactBoN.softmax(logits)
            let p = ExactBoN.failureProbability(pi: p0, rewards: R)
            guard p > 0.01 && p < 0.99 else { continue }
            for n in [1, 2, 3] {
                expectClose(cFactor(rlb(.uniqueCorrect), pi: p0, rewards: R, n: n), ExactBoN.cTrue(p: p, n: n),
                            rtol: 1e-9, atol: 1e-12, "unique-correct N=\(n)")
                expectClose(cFactor(rlb(.bonWeighted, sign: -1, p: p), pi: p0, rewards: R, n: n),
                            ExactBoN.cTrue(p: p, n: n) * (1 + p) / (1 - p), rtol: 1e-9, atol: 1e-12, "−g⁻ bias N=\(n)")
                expectClose(cFactor(rlb(.bonWeighted, positiveOnly: true, p: p), pi: p0, rewards: R, n: n),
                            ExactBoN.cTrue(p: p, n: n), rtol: 1e-9, atol: 1e-12, "ḡ⁺ N=\(n)")
            }
        }
    }

    func testC10BinaryWeightsAtNOne() {
        for p in [0.1, 0.5, 0.9] {
            expectClose(ExactBoN.gPlus(p: p, n: 1), 1 / (1 - p), rtol: 1e-12, atol: 0)
            expectClose(ExactBoN.gMinus(p: p, n: 1), p / (1 - p), rtol: 1e-12, atol: 0)
            expectClose(ExactBoN.gBarPlus(p: p, n: 1), 1, rtol: 1e-12, atol: 0)
        }
        XCTAssertEqual(rlb(.uniqueCorrect).weights(rewards: [1]), [1])
        XCTAssertEqual(rlb(.uniqueCorrect).weights(rewards: [0]), [0])
    }

    func testRLBInGroupEstimateAndClipping() {
        var c = BoNRLB.Config()
        c.estimator = .policyWeighted; c.negativeSign = -1; c.pFail = .inGroup(smoothing: 0); c.clip = 3
        let l = BoNRLB(config: c)
        // p̂ = 1 (all fail) with no smoothing: infinite weights → no step.
        XCTAssertEqual(l.weights(rewards: [0, 0, 0, 0]), [0, 0, 0, 0])
        // p̂ = 0.75: g⁻ = 12 clipped to 3, g⁺ = 4·0.421875/0.68359375 ≈ 2.469 unclipped; both /N.
        let w = l.weights(rewards: [0, 1, 0, 0])
        expectClose(w, [-3.0 / 4, ExactBoN.gPlus(p: 0.75, n: 4) / 4, -3.0 / 4, -3.0 / 4], rtol: 1e-12, atol: 0, "clipped")
        // p̂ = 0 (all correct): every weight is 0 (g⁺ = 0).
        XCTAssertEqual(l.weights(rewards: [1, 1, 1, 1]), [0, 0, 0, 0])
    }

    func testBoNRLVariantsExpectations() {
        let r = specScores, R: [Double] = [0.3, 0.2, 1.0, 0.6]
        var c = BoNRL.Config()
        c.variant = .verifier
        let v = BoNRL(config: c)
        // BoN-RL-V: J = E[r(y*)] with selection by r.
        let eV = ExactBoN.expectedGradient(pi: pi, scores: r, rewards: R, n: 3) { s, rw in v.weights(scores: s, rewards: rw) }
        expectClose(eV, ExactBoN.valueGradient(logits: specLogits, scores: r, rewards: r, n: 3), rtol: 0, atol: 1e-12, "BoN-RL-V")
        // BoN-RL-S selecting by R and selecting by r.
        c.variant = .system
        for sel in BoNRL.Config.Selector.allCases {
            c.selectBy = sel
            let s = BoNRL(config: c)
            let e = ExactBoN.expectedGradient(pi: pi, scores: r, rewards: R, n: 3) { a, b in s.weights(scores: a, rewards: b) }
            let scoresUsed = sel == .reward ? R : r
            expectClose(e, ExactBoN.valueGradient(logits: specLogits, scores: scoresUsed, rewards: R, n: 3), rtol: 0,
                        atol: 1e-12, "BoN-RL-S select by \(sel)")
        }
        // Variational ablation: consistent direction, but biased — report the gap (no exactness claimed).
        c.variant = .verifier; c.estimator = .variational
        let va = BoNRL(config: c)
        let eVa = ExactBoN.expectedGradient(pi: pi, scores: r, rewards: R, n: 3) { s, rw in va.weights(scores: s, rewards: rw) }
        let exact = ExactBoN.valueGradient(logits: specLogits, scores: r, rewards: r, n: 3)
        let cos = zip(eVa, exact).reduce(0) { $0 + $1.0 * $1.1 }
            / (sqrt(eVa.reduce(0) { $0 + $1 * $1 }) * sqrt(exact.reduce(0) { $0 + $1 * $1 }))
        print("variational ablation: E = \(eVa) vs ∇J = \(exact), cosine \(cos)")
        XCTAssertGreaterThan(cos, 0, "the variational ablation should still be an ascent direction here")
    }

    func testRLOOIsUnbiasedForThePassAtOneObjective() {
        let R: [Double] = [0.3, 0.2, 1.0, 0.6]
        var c = RL.Config(); c.reward = .system
        let l = RL(config: c)
        for g in [2, 3, 4] {
            let e = ExactBoN.expectedGradient(pi: pi, scores: specScores, rewards: R, n: g) { _, rw in l.weights(rewards: rw) }
            expectClose(e, ExactBoN.valueGradient(logits: specLogits, scores: specScores, rewards: R, n: 1), rtol: 0,
                        atol: 1e-12, "RLOO G=\(g)")
        }
    }

    func testBoNSFTEstimatorConvergesToTheExactVariationalGradient() {
        // Tabular Monte Carlo: y'_1..M ∼ π, weights from BoNSFT.weights, gradient 1·(e_y* − π) + Σ_k w_k (e_{y'_k} − π).
        let lambda = 3.0, expert = 1, M = 64, reps = 3000
        var rng = RNG(seed: 5)
        var mean = [Double](repeating: 0, count: 4)
        for _ in 0..<reps {
            let ys = (0..<M).map { _ in rng.categorical(pi) }
            let (we, ws) = BoNSFT.weights(expertScore: specScores[expert], sampleScores: ys.map { specScores[$0] },
                                          sampleLogProbs: ys.map { log(pi[$0]) }, sampleClasses: ys, lambda: lambda)
            var g = ExactBoN.scoreFunction(pi, expert).map { $0 * we }
            for (k, y) in ys.enumerated() {
                let s = ExactBoN.scoreFunction(pi, y)
                for j in 0..<4 { g[j] += ws[k] * s[j] }
            }
            for j in 0..<4 { mean[j] += g[j] / Double(reps) }
        }
        let exact = ExactBoN.tiltLogProbGradient(logits: specLogits, scores: specScores, lambda: lambda, y: expert)
        print("BoN-SFT MC (M=\(M), \(reps) reps): \(mean) vs exact \(exact)")
        expectClose(mean, exact, rtol: 0, atol: 0.03, "BoN-SFT estimator")
        // And it is far from plain SFT's gradient e_y* − π.
        let sft = ExactBoN.scoreFunction(pi, expert)
        XCTAssertGreaterThan(zip(mean, sft).map { abs($0 - $1) }.max()!, 0.1)
    }

    func testBoNSFTAtNOneIsSFT() {
        var c = BoNSFT.Config(); c.n = 1
        XCTAssertEqual(BoNSFT(config: c).lambda, 0)
        let (we, ws) = BoNSFT.weights(expertScore: 0.5, sampleScores: [0.1, 0.9, 0.5], sampleLogProbs: [-1, -1, -1],
                                      sampleClasses: [0, 1, 2], lambda: 0)
        XCTAssertEqual(we, 1); XCTAssertEqual(ws, [0, 0, 0])
        let (we2, ws2) = BoNSFT.selfNormalisedWeights(expertScore: 0.5, sampleScores: [0.1, 0.9, 0.5], lambda: 0)
        XCTAssertEqual(we2, 1); XCTAssertEqual(ws2, [0, 0, 0])
    }
}
