// SPEC-bon.md §5 checks C1–C3 and C5–C11 on the exact BoN maths, with brute-force enumeration over all N-tuples as
// the reference, on the spec's fixture and on seeded random fixtures with and without ties. (C4/C12: BoNRLBTests.)

import XCTest
import BonfireMath
import BonfireTasks
import BonfireAlgorithms
import BonfireTestSupport

let specLogits: [Double] = [0.2, -0.5, 1.0, 0.3]
let specScores: [Double] = [0.1, 0.9, 0.4, 0.7]
let specRewards: [Double] = [0, 1, 0, 1]

/// Seeded random tabular fixtures: (logits, scores, rewards); `ties` draws scores from {0, 1, 2}.
func randomFixtures(count: Int, k: Int, ties: Bool, binary: Bool, seed: UInt64) -> [([Double], [Double], [Double])] {
    var rng = RNG(seed: seed)
    return (0..<count).map { _ in
        let logits = (0..<k).map { _ in rng.normal() }
        let scores = (0..<k).map { _ in ties ? Double(rng.int(3)) : rng.uniform() }
        let rewards = (0..<k).map { _ in binary ? Double(rng.int(2)) : rng.uniform() }
        return (logits, scores, rewards)
    }
}

final class ExactBoNTests: XCTestCase {
    func testC1SpecFixtureDistributionValueAndGradient() {
        let pi = ExactBoN.softmax(specLogits)
        expectClose(pi, [0.2071552608, 0.1028702581, 0.4610325114, 0.2289419697], rtol: 0, atol: 1e-9, "π")
        expectClose(ExactBoN.winRate(pi: pi, scores: specScores), [0.2071552608, 1, 0.6681877722, 0.8971297419],
                    rtol: 0, atol: 1e-9, "Q")
        let bon = ExactBoN.bonDistribution(pi: pi, scores: specScores, n: 3)
        expectClose(bon, [0.0088897163, 0.2779525072, 0.2894393517, 0.4237184248], rtol: 0, atol: 1e-9, "π_bon")
        expectClose(bon, ExactBoN.enumeratedBoNDistribution(pi: pi, scores: specScores, n: 3), rtol: 0, atol: 1e-12,
                    "π_bon vs enumeration")
        // The atomless formula is only an upper bound for discrete π: check it is NOT the BoN distribution.
        let q = ExactBoN.winRate(pi: pi, scores: specScores)
        let atomless = (0..<4).map { 3 * pi[$0] * q[$0] * q[$0] }
        expectClose(atomless, [0.026669, 0.308611, 0.617518, 0.552786], rtol: 0, atol: 1e-6, "N π Q^{N−1}")
        XCTAssertGreaterThan(abs(atomless[1] - bon[1]), 0.03)
        let J = ExactBoN.value(pi: pi, scores: specScores, rewards: specRewards, n: 3)
        expectClose(J, 0.7016709319916683, rtol: 0, atol: 1e-12, "J_bon")
        expectClose(J, ExactBoN.enumeratedValue(pi: pi, scores: specScores, rewards: specRewards, n: 3), rtol: 0,
                    atol: 1e-12, "J vs enumeration")
        expectClose(zip(pi, specRewards).reduce(0) { $0 + $1.0 * $1.1 }, 0.3318122278318339, rtol: 0, atol: 1e-12, "J_base")
        let grad = ExactBoN.valueGradient(logits: specLogits, scores: specScores, rewards: specRewards, n: 3)
        let expected = [-0.0920675647, 0.0920675647, -0.2049001334, 0.2049001334]
        expectClose(grad, expected, rtol: 0, atol: 1e-9, "∇J closed form")
        let fd = ExactBoN.finiteDifference({
            ExactBoN.value(pi: ExactBoN.softmax($0), scores: specScores, rewards: specRewards, n: 3)
        }, at: specLogits)
        expectClose(fd, expected, rtol: 0, atol: 1e-8, "∇J finite differences")
        // §2.2 point 3: REINFORCE on the selected sample is biased, with the spec's expectation.
        let selected = ExactBoN.expectedGradient(pi: pi, scores: specScores, rewards: specRewards, n: 3,
                                                 weights: GroupWeights.selectedOnly)
        expectClose(selected, [-0.1453548249, 0.2057714373, -0.3234931120, 0.2630764995], rtol: 0, atol: 1e-9,
                    "selected-only expectation")
    }

    func testC2TiesClosedFormMatchesEnumerationAndFiniteDifferences() {
        let r: [Double] = [0.5, 0.9, 0.5, 0.2]
        let pi = ExactBoN.softmax(specLogits)
        let bon = ExactBoN.bonDistribution(pi: pi, scores: r, n: 3)
        expectClose(bon, ExactBoN.enumeratedBoNDistribution(pi: pi, scores: r, n: 3), rtol: 0, atol: 1e-12, "ties π_bon")
        expectClose(bon.reduce(0, +), 1, rtol: 0, atol: 1e-12, "Σ π_bon")
        let R: [Double] = [0, 1, 0, 1]
        expectClose(ExactBoN.value(pi: pi, scores: r, rewards: R, n: 3),
                    ExactBoN.enumeratedValue(pi: pi, scores: r, rewards: R, n: 3), rtol: 0, atol: 1e-12, "ties J")
        // Tied responses with DIFFERENT rewards: the gradient needs the (R_y m − A)/m² term.
        for R2 in [[0, 1, 0, 1], [0.3, 0.2, 1.0, 0.6], [1, 0, 0, 1]] as [[Double]] {
            let g = ExactBoN.valueGradient(logits: specLogits, scores: r, rewards: R2, n: 3)
            let fd = ExactBoN.finiteDifference({ ExactBoN.value(pi: ExactBoN.softmax($0), scores: r, rewards: R2, n: 3) },
                                               at: specLogits)
            expectClose(g, fd, rtol: 0, atol: 1e-8, "ties ∇J R=\(R2)")
        }
    }

    func testC3NSampleEstimatorIsUnbiased() {
        let pi = ExactBoN.softmax(specLogits)
        for R in [specRewards, [0.3, 0.2, 1.0, 0.6]] {
            let e = ExactBoN.expectedGradient(pi: pi, scores: specScores, rewards: R, n: 3, weights: GroupWeights.nSample)
            expectClose(e, ExactBoN.valueGradient(logits: specLogits, scores: specScores, rewards: R, n: 3), rtol: 0,
                        atol: 1e-12, "N-sample R=\(R)")
        }
    }

    func testC5BoNSFTVariationalGradient() {
        let pi = ExactBoN.softmax(specLogits)
        expectClose(ExactBoN.tilt(pi: pi, scores: specScores, lambda: 3),
                    [0.0416856666, 0.2233391706, 0.3699082038, 0.3650669590], rtol: 0, atol: 1e-9, "π_λ")
        let g = ExactBoN.tiltLogProbGradient(logits: specLogits, scores: specScores, lambda: 3, y: 1)
        expectClose(g, [-0.1618428806, 0.9566784227, -0.5796676588, -0.2151678833], rtol: 0, atol: 1e-9, "∇log π_λ(y*)")
        let fd = ExactBoN.finiteDifference({ ExactBoN.tiltLogProb(logits: $0, scores: specScores, lambda: 3, y: 1) },
                                           at: specLogits)
        expectClose(g, fd, rtol: 0, atol: 1e-9, "§2.1 formula vs finite differences")
        // λ = 0 is SFT: ∇log π(y*) = e_y* − π.
        expectClose(ExactBoN.tiltLogProbGradient(logits: specLogits, scores: specScores, lambda: 0, y: 1),
                    ExactBoN.scoreFunction(pi, 1), rtol: 0, atol: 1e-14, "λ = 0")
    }

    func testC6LeaveOneOutIsUnbiasedWithAndWithoutTies() {
        let pi = ExactBoN.softmax(specLogits)
        let cases: [([Double], [Double])] = [(specScores, [0.3, 0.2, 1.0, 0.6]), ([0.5, 0.9, 0.5, 0.2], [0, 1, 1, 0])]
        for (r, R) in cases {
            let e = ExactBoN.expectedGradient(pi: pi, scores: r, rewards: R, n: 3, weights: GroupWeights.leaveOneOut)
            let fd = ExactBoN.finiteDifference({ ExactBoN.value(pi: ExactBoN.softmax($0), scores: r, rewards: R, n: 3) },
                                               at: specLogits)
            expectClose(e, fd, rtol: 0, atol: 1e-8, "LOO r=\(r)")
        }
    }

    func testEstimatorsOnRandomFixturesWithAndWithoutTies() {
        for ties in [false, true] {
            for (i, (logits, r, R)) in randomFixtures(count: 6, k: 4, ties: ties, binary: ties, seed: ties ? 7 : 8).enumerated() {
                let pi = ExactBoN.softmax(logits)
                for n in [1, 2, 4] {
                    let exact = ExactBoN.valueGradient(logits: logits, scores: r, rewards: R, n: n)
                    let fd = ExactBoN.finiteDifference({ ExactBoN.value(pi: ExactBoN.softmax($0), scores: r, rewards: R, n: n) },
                                                       at: logits)
                    expectClose(exact, fd, rtol: 0, atol: 1e-8, "closed form vs FD fixture \(i) ties=\(ties) N=\(n)")
                    expectClose(ExactBoN.bonDistribution(pi: pi, scores: r, n: n),
                                ExactBoN.enumeratedBoNDistribution(pi: pi, scores: r, n: n), rtol: 0, atol: 1e-12, "π_bon")
                    for (name, f) in [("nSample", GroupWeights.nSample), ("leaveOneOut", GroupWeights.leaveOneOut)] as
                        [(String, ([Double], [Double]) -> [Double])] {
                        expectClose(ExactBoN.expectedGradient(pi: pi, scores: r, rewards: R, n: n, weights: f), exact,
                                    rtol: 0, atol: 1e-12, "\(name) fixture \(i) ties=\(ties) N=\(n)")
                    }
                }
            }
        }
    }

    func testSelectedOnlyIsBiasedByTheMissingTerm() {
        // E[R(y*)∇log π(y*)] = ∇J − E_{π_bon}[R ∇log(π_bon/π)]; check the gap is exactly that term.
        let (logits, r, R) = (specLogits, specScores, specRewards)
        let pi = ExactBoN.softmax(logits)
        let sel = ExactBoN.expectedGradient(pi: pi, scores: r, rewards: R, n: 3, weights: GroupWeights.selectedOnly)
        let exact = ExactBoN.valueGradient(logits: logits, scores: r, rewards: R, n: 3)
        let bon = ExactBoN.bonDistribution(pi: pi, scores: r, n: 3)
        var missing = [Double](repeating: 0, count: 4)
        for y in 0..<4 {
            let g = ExactBoN.finiteDifference({ th in
                let p = ExactBoN.softmax(th)
                return log(ExactBoN.bonDistribution(pi: p, scores: r, n: 3)[y] / p[y])
            }, at: logits)
            for k in 0..<4 { missing[k] += bon[y] * R[y] * g[k] }
        }
        expectClose(zip(sel, missing).map { $0 + $1 }, exact, rtol: 0, atol: 1e-8, "selected + missing = ∇J")
    }

    func testC7VariationalFormFourAndItsFirstTermOnlyApproximation() {
        let (full, first) = ExactBoN.tiltValueGradient(logits: specLogits, scores: specScores, rewards: specRewards, lambda: 3)
        let fd = ExactBoN.finiteDifference({ ExactBoN.tiltValue(logits: $0, scores: specScores, rewards: specRewards, lambda: 3) },
                                           at: specLogits)
        expectClose(full, fd, rtol: 0, atol: 1e-9, "form 4 vs FD of J_λ")
        // Dropping λ∇Q is not a small approximation here: report and require a sizeable gap.
        let gap = zip(full, first).map { abs($0 - $1) }.max()!
        let norm = full.map { abs($0) }.max()!
        print("C7: full ∇J_λ = \(full), first term only = \(first), max gap \(gap) (relative \(gap / norm))")
        XCTAssertGreaterThan(gap / norm, 0.2, "first-term-only should differ markedly from form 4")
    }

    func testC8LambdaTable() {
        let table: [(n: Int, kl: Double, win: Double, lam: Double, tiltWin: Double, klLin: Double, winLin: Double)] = [
            (2, 0.193147, 0.666667, 2.2886, 0.675907, 0.040652, 0.581977),
            (4, 0.636294, 0.8, 4.9169, 0.803996, 0.306869, 0.719062),
            (8, 1.204442, 0.888889, 9.0545, 0.889675, 0.953211, 0.858056),
            (16, 1.835089, 0.941176, 17.0319, 0.941287, 1.708055, 0.933334),
            (32, 2.496986, 0.969697, 33.0158, 0.969711, 2.433987, 0.967742),
        ]
        for row in table {
            expectClose(ExactBoN.atomlessBoNKL(n: row.n), row.kl, rtol: 0, atol: 1e-6, "BoN KL N=\(row.n)")
            expectClose(Double(row.n) / Double(row.n + 1), row.win, rtol: 0, atol: 1e-6, "win-rate")
            let lam = ExactBoN.lambda(n: row.n, rule: .klMatched)
            expectClose(lam, row.lam, rtol: 0, atol: 1e-4, "λ_N KL-matched N=\(row.n)")
            expectClose(ExactBoN.atomlessTiltWinRate(lam), row.tiltWin, rtol: 0, atol: 1e-6, "tilt win-rate N=\(row.n)")
            let lin = ExactBoN.lambda(n: row.n, rule: .linearised)
            XCTAssertEqual(lin, Double(row.n - 1))
            expectClose(ExactBoN.atomlessTiltKL(lin), row.klLin, rtol: 0, atol: 1e-6, "KL at N−1, N=\(row.n)")
            expectClose(ExactBoN.atomlessTiltWinRate(lin), row.winLin, rtol: 0, atol: 1e-6, "win at N−1, N=\(row.n)")
        }
        XCTAssertEqual(ExactBoN.lambda(n: 1, rule: .klMatched), 0)
    }

    func testC9BestOfNEvaluationEstimatorIsUnbiased() {
        let pi = ExactBoN.softmax(specLogits)
        let R: [Double] = [0.3, 0.2, 1.0, 0.6]
        for (r, n) in [(specScores, 3), ([0.5, 0.9, 0.5, 0.2], 2)] {
            var e = 0.0
            ExactBoN.enumerateTuples(pi: pi, n: 5) { t, p in
                e += p * Estimators.bestOfN(scores: t.map { r[$0] }, rewards: t.map { R[$0] }, n: n)
            }
            expectClose(e, ExactBoN.value(pi: pi, scores: r, rewards: R, n: n), rtol: 0, atol: 1e-12, "Bo-\(n) from 5")
        }
    }

    func testC10Reductions() {
        let pi = ExactBoN.softmax(specLogits)
        expectClose(ExactBoN.bonDistribution(pi: pi, scores: specScores, n: 1), pi, rtol: 0, atol: 1e-15, "N=1 π_bon = π")
        XCTAssertEqual(ExactBoN.lambda(n: 1, rule: .linearised), 0)
        // BoN-RL at N = 1 is REINFORCE: LOO weights are R.
        XCTAssertEqual(GroupWeights.leaveOneOut(scores: [0.4], rewards: [0.7]), [0.7])
        for (logits, r, R) in randomFixtures(count: 4, k: 5, ties: true, binary: false, seed: 3) {
            let p = ExactBoN.softmax(logits)
            for n in 1...6 { expectClose(ExactBoN.bonDistribution(pi: p, scores: r, n: n).reduce(0, +), 1, rtol: 0, atol: 1e-12) }
            // Monotone E[R|r] (R = r here) ⇒ J non-decreasing in N.
            let js = (1...8).map { ExactBoN.value(pi: p, scores: r, rewards: r, n: $0) }
            for i in 1..<js.count { XCTAssertGreaterThanOrEqual(js[i], js[i - 1] - 1e-12) }
            _ = R
        }
    }

    func testC11TemperatureCoScalingAndMetaStrategy() {
        let q = [0.6, 0.3, 0.1]
        let rows: [(n: Int, t: Double, best: Double, atOne: Double)] = [
            (2, 0.654, 0.6873, 0.6760), (4, 1.499, 0.8549, 0.8470), (8, 3.404, 0.9704, 0.9393),
            (16, 7.373, 0.99882, 0.98047), (32, 15.36, 0.999998, 0.99656),
        ]
        for row in rows {
            let (t, v) = ExactBoN.optimalTemperature(q: q, n: row.n)
            expectClose(t, row.t, rtol: 2e-3, atol: 0, "T*(\(row.n))")
            expectClose(v, row.best, rtol: 0, atol: 1e-4, "pass@N at T*")
            expectClose(ExactBoN.latentPassAtN(q: q, temperature: 1, n: row.n), row.atOne, rtol: 0, atol: 1e-4, "pass@N at T=1")
        }
        // N = 1: pass@1 rises as T → 0 (greedy), towards 0.6.
        XCTAssertEqual(ExactBoN.latentPassAtN(q: q, temperature: 1, n: 1), 0.46, accuracy: 1e-12)
        XCTAssertEqual(ExactBoN.latentPassAtN(q: q, temperature: 0.02, n: 1), 0.6, accuracy: 1e-6)
        let meta: [(n: Int, pi: [Double], pass: Double, pass1: Double)] = [
            (1, [1, 0, 0], 0.6, 0.6), (2, [0.6667, 0.3333, 0], 0.7, 0.5),
            (4, [0.509448, 0.381943, 0.108608], 0.858344, 0.4311),
            (8, [0.411037, 0.349732, 0.239231], 0.970502, 0.3755),
            (32, [0.351095, 0.336422, 0.312484], 0.999998, 0.3428),
        ]
        for row in meta {
            let p = ExactBoN.metaStrategyOptimum(q: q, n: row.n)
            expectClose(p, row.pi, rtol: 0, atol: 1e-4, "π* N=\(row.n)")
            expectClose(ExactBoN.latentPassAtN(q: q, policy: p, n: row.n), row.pass, rtol: 0, atol: 1e-6, "pass@N(π*)")
            expectClose(ExactBoN.latentPassAtN(q: q, policy: p, n: 1), row.pass1, rtol: 0, atol: 1e-4, "pass@1(π*)")
            // π* beats greedy (0.6) and every temperature policy at the same N.
            XCTAssertGreaterThanOrEqual(ExactBoN.latentPassAtN(q: q, policy: p, n: row.n) + 1e-9,
                                        ExactBoN.optimalTemperature(q: q, n: row.n).passAtN)
        }
    }
}
