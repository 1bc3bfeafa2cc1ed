// BoN-SFT's estimator of the BoN correction c = ∇log π_λ(y*) − ∇log π(y*) (SPEC-bon.md §2.1, C5), checked at the
// defaults the learner runs (N′ ∈ {4, 8, 16}, both λ rules, M = N′ as `bonfire train` passes and M = 8 as the
// cluster's sampling.groupSize passes) by exact enumeration over all M-sample multisets of small tabular softmax
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

    /// The learner's settings: (N′, M) with M = N′ (`bonfire train`) and M = 8 (cluster groupSize, N′ ≤ 8).
    let settings: [(n: Int, m: Int)] = [(4, 4), (4, 8), (8, 8), (16, 16)]

    func testEstimatorsAgainstTheExactBoNCorrectionAtLearnerDefaults() {
        let cases = sftCases(count: 30, seed: 2026)
        print("BoN-SFT correction, expected estimator step vs exact, \(cases.count) random tabular cases")
        print("N′  M  rule        λ      | old: min cos  min|E|/|c|  max|E|/|c|  pass | new: min cos  min|E|/|c|  max|E|/|c|  pass")
        for (n, m) in settings {
            for rule in BoNWeights.LambdaRule.allCases {
                let lam = BoNWeights.lambda(n: n, rule: rule)
                var old = (cos: 1.0, lo: Double.infinity, hi: 0.0, pass: 0), new = old
                for c in cases {
                    let exact = ExactBoN.tiltCorrection(logits: c.logits, scores: c.scores, lambda: lam, expertScore: c.expert)
                    for (isNew, e) in [(false, expectedSelfNormalised(c, lambda: lam, m: m)), (true, expectedCoverage(c, lambda: lam, m: m))] {
                        let cs = cosine(e, exact), ratio = norm(e) / norm(exact)
                        let ok = cs >= 0.95 && abs(ratio - 1) <= 0.1
                        if isNew {
                            new = (min(new.cos, cs), min(new.lo, ratio), max(new.hi, ratio), new.pass + (ok ? 1 : 0))
                        } else {
                            old = (min(old.cos, cs), min(old.lo, ratio), max(old.hi, ratio), old.pass + (ok ? 1 : 0))
                        }
                    }
                }
                print(String(format: "%2d %2d  %-10@ %6.3f | %+.3f  %.3f  %.3f  %2d/%d | %+.3f  %.3f  %.3f  %2d/%d",
                             n, m, rule.rawValue as NSString, lam, old.cos, old.lo, old.hi, old.pass, cases.count,
                             new.cos, new.lo, new.hi, new.pass, cases.count))
            }
        }
    }
}
