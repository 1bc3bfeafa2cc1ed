// BoN-SFT's estimator of the BoN correction c = ∇log π_λ(y*) − ∇log π(y*) (SPEC-bon.md §2.1, C5), checked at the
// defaults the learner runs (N′ ∈ {4, 8, 16}, both λ rules, M = the learner's default algorithm.bonSFTSamples =
// 4N′ in [8, 32]; and, as ablations, M = N′ and M = 8) by exact enumeration over all M-sample multisets of small tabular softmax
// policies with tied score levels. The table (old vs new estimator) is printed by
//   swift test -c release --filter BonfireAlgorithmsTests.BoNSFTEstimatorTests

import XCTest
import BonfireMath
import BonfireAlgorithms
import BonfireTestSupport

/// One tabular case: logits, scores (tied levels), expert score r*.
struct SFTCase { let logits: [Double]; let scores: [Double]; let expert: Double }

/// Random tabular policies: K ∈ 3…5 responses on L ∈ 2…3 score levels from {0, ¼, ½, ¾, 1} (so ties between distinct
/// responses), logits ∼ N(0, 1), and r* cycling over: above every score, equal to a random response's score, 0.6.
func sftCases(count: Int, seed: UInt64) -> [SFTCase] {
    var rng = RNG(seed: seed)
    let grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    return (0..<count).map { i in
        let K = 3 + rng.int(3), L = 2 + rng.int(min(K, 3) - 1)
        var pool = grid, levels: [Double] = []
        for _ in 0..<L { levels.append(pool.remove(at: rng.int(pool.count))) }
        var r = levels + (0..<(K - L)).map { _ in levels[rng.int(L)] }
        for j in stride(from: K - 1, to: 0, by: -1) { r.swapAt(j, rng.int(j + 1)) }
        let logits = (0..<K).map { _ in rng.normal() }
        let expert = [1.5, r[rng.int(K)], 0.6][i % 3]
        return SFTCase(logits: logits, scores: r, expert: expert)
    }
}

func cosine(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } / (norm(a) * norm(b))
}
func norm(_ a: [Double]) -> Double { sqrt(a.reduce(0) { $0 + $1 * $1 }) }

final class BoNSFTEstimatorTests: XCTestCase {
    /// Exact expectation of the new estimator's sample part over all M-multisets (tabular: response id = class).
    func expectedCoverage(_ c: SFTCase, lambda: Double, m: Int) -> [Double] {
        let pi = ExactBoN.softmax(c.logits)
        return ExactBoN.expectedSampleStep(pi: pi, m: m) { ids in
            BoNSFT.weights(expertScore: c.expert, sampleScores: ids.map { c.scores[$0] },
                           sampleLogProbs: ids.map { log(pi[$0]) }, sampleClasses: ids, lambda: lambda).samples
        }
    }

    func expectedSelfNormalised(_ c: SFTCase, lambda: Double, m: Int) -> [Double] {
        let pi = ExactBoN.softmax(c.logits)
        return ExactBoN.expectedSampleStep(pi: pi, m: m) { ids in
            BoNSFT.selfNormalisedWeights(expertScore: c.expert, sampleScores: ids.map { c.scores[$0] }, lambda: lambda).samples
        }
    }

    func testTiltCorrectionOracleEqualsTheC5GradientAndFiniteDifferences() {
        // C5: λ = 3, expert = response 1: c = ∇log π_λ(y*) − (e_y* − π).
        let pi = ExactBoN.softmax(specLogits)
        let c5 = ExactBoN.tiltLogProbGradient(logits: specLogits, scores: specScores, lambda: 3, y: 1)
        let sft = ExactBoN.scoreFunction(pi, 1)
        expectClose(ExactBoN.tiltCorrection(logits: specLogits, scores: specScores, lambda: 3, expertScore: specScores[1]),
                    zip(c5, sft).map { $0 - $1 }, rtol: 0, atol: 1e-12, "C5 correction")
        for c in sftCases(count: 12, seed: 3) {
            for lam in [3.0, 9.0545, 17.0319] {
                let fd = ExactBoN.finiteDifference({ ExactBoN.tiltCorrectionObjective(logits: $0, scores: c.scores,
                                                                                      lambda: lam, expertScore: c.expert) },
                                                   at: c.logits)
                expectClose(ExactBoN.tiltCorrection(logits: c.logits, scores: c.scores, lambda: lam, expertScore: c.expert),
                            fd, rtol: 1e-6, atol: 1e-6, "correction vs finite differences λ=\(lam)")
            }
        }
    }

    func testCountEnumerationEqualsTupleEnumeration() {
        // expectedSampleStep enumerates multisets; it must equal the plain K^M tuple enumeration for a symmetric rule.
        for c in sftCases(count: 4, seed: 9) {
            let pi = ExactBoN.softmax(c.logits), lam = 9.0545, m = 5
            var tuple = [Double](repeating: 0, count: pi.count)
            ExactBoN.enumerateTuples(pi: pi, n: m) { t, p in
                let w = BoNSFT.weights(expertScore: c.expert, sampleScores: t.map { c.scores[$0] },
                                       sampleLogProbs: t.map { log(pi[$0]) }, sampleClasses: t, lambda: lam).samples
                for (i, y) in t.enumerated() { for k in 0..<pi.count { tuple[k] += p * w[i] * ((k == y ? 1 : 0) - pi[k]) } }
            }
            expectClose(expectedCoverage(c, lambda: lam, m: m), tuple, rtol: 1e-10, atol: 1e-12, "multiset = tuples")
        }
    }

    func testWeightsAreSymmetricUnderPermutingTheSamples() {
        let r = [0.5, 1.0, 0.5, 0.0, 1.0, 0.5], lp = [-1.2, -0.7, -2.0, -3.0, -0.7, -1.2], cls = [0, 1, 2, 3, 1, 0]
        let w = BoNSFT.weights(expertScore: 0.75, sampleScores: r, sampleLogProbs: lp, sampleClasses: cls, lambda: 9).samples
        let perm = [5, 3, 1, 0, 4, 2]
        let wp = BoNSFT.weights(expertScore: 0.75, sampleScores: perm.map { r[$0] }, sampleLogProbs: perm.map { lp[$0] },
                                sampleClasses: perm.map { cls[$0] }, lambda: 9).samples
        expectClose(wp, perm.map { w[$0] }, rtol: 1e-12, atol: 1e-12, "permutation")
    }

    struct Row { var minCos = 1.0, minRatio = Double.infinity, maxRatio = 0.0, pass = 0, total = 0 }

    /// Compares the expected step with the exact correction on every case; the criterion is cos ≥ 0.95 and norm within
    /// 10%, except where the exact correction is nearly zero (‖c‖ < tiny·λ): there the relative error is meaningless
    /// and ‖E − c‖ ≤ tiny·λ is required instead.
    func measure(_ cases: [SFTCase], n: Int, m: Int, rule: BoNWeights.LambdaRule, tiny: Double = 0,
                 expected: (SFTCase, Double, Int) -> [Double]) -> Row {
        let lam = BoNWeights.lambda(n: n, rule: rule)
        var row = Row()
        for c in cases {
            let exact = ExactBoN.tiltCorrection(logits: c.logits, scores: c.scores, lambda: lam, expertScore: c.expert)
            let e = expected(c, lam, m)
            let cs = cosine(e, exact), ratio = norm(e) / norm(exact)
            let ok = norm(exact) < tiny * lam ? norm(zip(e, exact).map { $0 - $1 }) <= tiny * lam
                                              : (cs >= 0.95 && abs(ratio - 1) <= 0.1)
            if norm(exact) >= tiny * lam {   // extremes over the cases where a relative comparison means something
                row.minCos = min(row.minCos, cs); row.minRatio = min(row.minRatio, ratio); row.maxRatio = max(row.maxRatio, ratio)
            }
            row.pass += ok ? 1 : 0; row.total += 1
        }
        return row
    }

    func line(_ r: Row) -> String {
        String(format: "%+.3f  %.3f  %.3f  %2d/%d", r.minCos, r.minRatio, r.maxRatio, r.pass, r.total)
    }

    func testSelfNormalisedEstimatorIsBiasedAtLearnerDefaults() {
        // The finding: N′ = 8, KL-matched λ ≈ 9, M = 8: the old estimator's correction points against the exact one.
        let row = measure(sftCases(count: 30, seed: 2026), n: 8, m: 8, rule: .klMatched, expected: expectedSelfNormalised)
        print("old estimator N′=8 M=8 klMatched: min cos, min/max norm ratio, pass: \(line(row))")
        XCTAssertLessThan(row.minCos, 0, "the self-normalised estimator should point against c on some case")
        XCTAssertLessThanOrEqual(row.pass, 5)
    }

    func testEstimatorsAtFewerSamplesThanTheLearnerDraws() {
        // M = N′ and M = 8: what the learner passed before algorithm.bonSFTSamples (kept: the bias at small M).
        let cases = sftCases(count: 30, seed: 2026)
        print("BoN-SFT correction: expected step vs exact, \(cases.count) random tabular cases (criterion cos ≥ 0.95, norm ±10%)")
        print("N′  M  rule         λ      | old: min cos  min|E|/|c|  max|E|/|c|  pass | new: min cos  min|E|/|c|  max|E|/|c|  pass")
        for (n, m) in [(4, 4), (4, 8), (8, 8), (16, 16)] {
            for rule in BoNWeights.LambdaRule.allCases {
                let old = measure(cases, n: n, m: m, rule: rule, expected: expectedSelfNormalised)
                let new = measure(cases, n: n, m: m, rule: rule, expected: expectedCoverage)
                print(String(format: "%2d %2d  %-11@ %6.3f | ", n, m, rule.rawValue as NSString, BoNWeights.lambda(n: n, rule: rule))
                      + line(old) + " | " + line(new))
                // Measured: new passes 17–28 of 30 here, old 0–2; the failures are cases whose score levels M samples
                // miss too often (file header). Guard the gap, not the exact counts.
                XCTAssertGreaterThanOrEqual(new.pass, old.pass + 10, "N′=\(n) M=\(m) \(rule)")
                XCTAssertGreaterThanOrEqual(new.pass, 15, "N′=\(n) M=\(m) \(rule)")
            }
        }
    }

    func testCoverageEstimatorAtTheSampleCountAndLambdaTheLearnerUses() {
        // The learner's BoN-SFT comes from AlgorithmOptions.bonSFT() (RunConfig.algorithmOptions); its M is
        // algorithm.bonSFTSamples, default 0 → recommendedSamples(N′) = 16, 32, 32 for N′ = 4, 8, 16, and the actors of
        // a bon-sft run sample exactly that many responses per prompt (RunConfigTests). Measured on seed 2026 (30
        // cases): 29/30, 30/30, 30/30, 30/30, 30/30, 30/30; on seed 77 at N′ = 8 klMatched 27/30 (min cos 0.995, norm
        // 0.87–1.11). M = 32 enumerations are slow, so those settings use the first 8 cases; require ≥ 90% within the
        // criterion.
        let cases = sftCases(count: 30, seed: 2026)
        print("BoN-SFT .coverage at the learner's M and λ (near-zero corrections ‖c‖ < 0.02λ: ‖E − c‖ ≤ 0.02λ)")
        for n in [4, 8, 16] {
            for rule in BoNWeights.LambdaRule.allCases {
                var options = AlgorithmOptions()
                options.trainN = n; options.lambdaRule = rule
                let learner = options.bonSFT()
                let m = learner.config.samplesPerPrompt
                XCTAssertEqual(m, [4: 16, 8: 32, 16: 32][n], "default M for N′=\(n)")
                XCTAssertEqual(learner.config.estimator, .coverage)
                XCTAssertEqual(learner.lambda, BoNWeights.lambda(n: n, rule: rule), "λ the learner uses")
                let row = measure(m > 16 ? Array(cases.prefix(8)) : cases, n: n, m: m, rule: rule, tiny: 0.02,
                                  expected: expectedCoverage)
                print(String(format: "%2d %2d  %-11@ | ", n, m, rule.rawValue as NSString) + line(row))
                XCTAssertGreaterThanOrEqual(Double(row.pass), 0.9 * Double(row.total), "N′=\(n) M=\(m) \(rule)")
                XCTAssertGreaterThan(row.minCos, 0.9, "N′=\(n) M=\(m) \(rule)")
            }
        }
        // An explicit algorithm.bonSFTSamples wins over the default.
        var o = AlgorithmOptions(); o.trainN = 8; o.bonSFTSamples = 12
        XCTAssertEqual(o.bonSFT().config.samplesPerPrompt, 12)
    }

    func testManyResponseLimitIsThePlugInOfTheEmpiricalScoreDistribution() {
        // Unknown probabilities (long responses): weights = â(r_k)/M with m̂_t = n_t/M.
        let r = [0.0, 1.0, 1.0, 0.5], lam = 9.0
        let w = BoNSFT.weights(expertScore: 2, sampleScores: r, sampleLogProbs: [.nan, -400, .infinity, 3],
                               sampleClasses: [0, 1, 2, 3], lambda: lam).samples
        let a = BoNSFT.levelCoefficients(levels: [0, 0.5, 1], masses: [0.25, 0.25, 0.5], lambda: lam, expertScore: 2)
        expectClose(w, [a[0], a[2], a[2], a[1]].map { $0 / 4 }, rtol: 1e-12, atol: 1e-12, "plug-in limit")
        // Full coverage: m̂ = the known masses, HT factor p/P_M.
        let p = [0.5, 0.3, 0.2]
        let wf = BoNSFT.weights(expertScore: 0.6, sampleScores: [0, 1, 0.5, 0], sampleLogProbs: [log(p[0]), log(p[1]), log(p[2]), log(p[0])],
                                sampleClasses: [0, 1, 2, 0], lambda: lam).samples
        let af = BoNSFT.levelCoefficients(levels: [0, 0.5, 1], masses: [0.5, 0.2, 0.3], lambda: lam, expertScore: 0.6)
        let ht = p.map { BoNSFT.inclusionWeight(p: $0, m: 4) }
        expectClose(wf, [ht[0] * af[0] / 2, ht[1] * af[2], ht[2] * af[1], ht[0] * af[0] / 2], rtol: 1e-12, atol: 1e-12, "covered")
        expectClose(BoNSFT.inclusionWeight(p: 0.5, m: 4), 0.5 / (1 - 0.0625), rtol: 1e-12, atol: 0)
        XCTAssertEqual(BoNSFT.inclusionWeight(p: 0, m: 8), 1.0 / 8)
        XCTAssertEqual(BoNSFT.inclusionWeight(p: 1, m: 8), 1)
    }

    func testHostileInputsNeverTrapAndGiveFiniteWeights() {
        let cases: [(String, Double, [Double], [Double], [Int], Double)] = [
            ("NaN score", 1, [0.2, .nan], [-1, -1], [0, 1], 9),
            ("Inf expert score", .infinity, [0.2, 0.3], [-1, -1], [0, 1], 9),
            ("NaN λ", 1, [0.2, 0.3], [-1, -1], [0, 1], .nan),
            ("Σp > 1", 1, [0.2, 0.3, 0.3], [-0.01, -0.02, -0.02], [0, 1, 2], 9),
            ("huge λ", 0.5, [0.2, 0.5, 1, 0.5], [-1, -2, -3, -2], [0, 1, 2, 1], 1e4),
            ("one sample", 0.5, [0.2], [-1], [0], 9),
            ("all the same response", 0.5, [0.2, 0.2, 0.2], [0, 0, 0], [7, 7, 7], 9),
            ("extreme scores", -1e308, [1e308, -1e308], [-1e300, -1e-300], [Int.min, Int.max], 9),
            ("empty", 0.5, [], [], [], 9),
        ]
        for (name, rs, r, lp, cls, lam) in cases {
            let (we, w) = BoNSFT.weights(expertScore: rs, sampleScores: r, sampleLogProbs: lp, sampleClasses: cls, lambda: lam)
            XCTAssertEqual(we, 1, name); XCTAssertEqual(w.count, r.count, name)
            XCTAssert(w.allSatisfy { $0.isFinite }, "\(name): \(w)")
        }
        // Non-finite inputs give the plain SFT step.
        XCTAssertEqual(BoNSFT.weights(expertScore: 1, sampleScores: [0.2, .nan], sampleLogProbs: [-1, -1],
                                      sampleClasses: [0, 1], lambda: 9).samples, [0, 0])
        XCTAssertEqual(BoNSFT.selfNormalisedWeights(expertScore: 1, sampleScores: [0.2], lambda: 9).samples, [0])
        // Duplicate detection: same tokens and same score only.
        XCTAssertEqual(BoNSFT.duplicateClasses(responses: [[1, 2], [1, 2], [1, 2], [], []], scores: [0.5, 0.5, 0.7, 0, 0]),
                       [0, 0, 1, 2, 2])
    }

    func testSequencesUseBehaviourLogProbsAndDuplicates() {
        // A group with a duplicated response: the two copies share the weight of one distinct response.
        let g = BoNGroup(promptTokens: [3, 4], responses: [[5, 1], [6, 1], [5, 1], [7]],
                         behaviourLogProbs: [[-0.5, -0.1], [-1, -0.2], [-0.5, -0.1], []], behaviourVersion: 0,
                         scores: [0.9, 0.1, 0.9, 0.4], rewards: [1, 0, 1, 0], itemIndex: 0)
        var c = BoNSFT.Config(); c.n = 8
        let ex = BoNSFTExample(demonstration: Demonstration(promptTokens: [3, 4], response: [5, 1]), expertScore: 0.9, samples: g)
        let bon = BoNSFT(config: c)
        let (_, w) = bon.weights(ex)
        let lp = [-0.6, -1.2, -0.6, Double.nan]   // the empty response has no per-token log-probs: unknown
        let direct = BoNSFT.weights(expertScore: 0.9, sampleScores: g.scores, sampleLogProbs: lp, sampleClasses: [0, 1, 0, 2],
                                    lambda: bon.lambda).samples
        expectClose(w, direct, rtol: 1e-6, atol: 1e-9, "weights from the group (Float token log-probs)")
        XCTAssertEqual(w[0], w[2])
        let seqs = bon.sequences([ex], currentVersion: 0)
        XCTAssertEqual(seqs.first?.weight, 1)
        XCTAssertEqual(seqs.count, 1 + w.filter { $0 != 0 }.count)
    }
}
