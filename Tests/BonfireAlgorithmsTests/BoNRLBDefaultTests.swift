// BoN-RLB and BoN-RLB(P) at their DEFAULT configurations (SPEC-bon.md §2.3, C4, C12). Every estimator whose weights
// depend only on the group's rewards has expectation c(p)·G per prompt (G = ∇(1 − p), p = p_fail); c* = N p^{N−1}.
// With B ∼ Binom(N−1, 1−p) the number of OTHER correct samples, w⁺(k) / w⁻(k) the weight on a correct / incorrect
// sample when k of the N are correct:  c = N·(E[w⁺(1+B)] − E[w⁻(B)])  (E_π[R∇log π] = G, E_π[(1−R)∇log π] = −G).
// The table of c/c* is printed by  swift test -c release --filter BonfireAlgorithmsTests.BoNRLBDefaultTests

import XCTest
import BonfireMath
import BonfireAlgorithms
import BonfireTestSupport

final class BoNRLBDefaultTests: XCTestCase {
    func binom(_ n: Int, _ k: Int, _ q: Double) -> Double {
        var c = 1.0
        for i in 0..<k { c = c * Double(n - i) / Double(i + 1) }
        return c * pow(q, Double(k)) * pow(1 - q, Double(n - k))
    }

    /// c(p) of a learner from its own weight function (formula in the header).
    func cFactor(_ l: BoNRLB, p: Double, n: Int) -> Double {
        func w(_ k: Int) -> (pos: Double, neg: Double) {
            let R = (0..<n).map { $0 < k ? 1.0 : 0.0 }
            let x = l.weights(rewards: R)
            return (k > 0 ? x[0] : 0, k < n ? x[n - 1] : 0)
        }
        var c = 0.0
        for b in 0..<n {
            let pb = binom(n - 1, b, 1 - p)
            c += pb * (w(1 + b).pos - w(b).neg)
        }
        return Double(n) * c
    }

    func testCFactorFormulaEqualsExactEnumeration() {
        let pi = ExactBoN.softmax(specLogits), R = specRewards
        let p = ExactBoN.failureProbability(pi: pi, rewards: R)
        let G = ExactBoN.passGradient(pi: pi, rewards: R)
        for learner in [BoNRLB(), BoNRLB(config: .positiveOnlyDefaults), BoNRLB(config: .positiveOnlyUniqueCorrect), learnerRunsWith(.bonRLBP)] {
            for n in [1, 2, 3, 4, 6] {
                let e = ExactBoN.expectedGradient(pi: pi, scores: R, rewards: R, n: n) { _, r in learner.weights(rewards: r) }
                expectClose(e, G.map { $0 * cFactor(learner, p: p, n: n) }, rtol: 1e-9, atol: 1e-12, "\(learner.name) N=\(n)")
            }
        }
    }

    /// The BoN-RLB learner a run with `algorithm.name = kind` and default options trains with.
    func learnerRunsWith(_ kind: AlgorithmKind) -> BoNRLB {
        guard let l = AlgorithmOptions().groupLearner(kind) as? BoNRLB else {
            XCTFail("\(kind.rawValue) is not a BoNRLB learner"); return BoNRLB()
        }
        return l
    }

    func testRunDefaultsAreUniqueCorrectForBoNRLBAndInGroupGBarForBoNRLBP() {
        XCTAssertEqual(learnerRunsWith(.bonRLB).config.estimator, .uniqueCorrect)
        let p = learnerRunsWith(.bonRLBP).config
        XCTAssertEqual(p.estimator, .bonWeighted)
        XCTAssertTrue(p.positiveOnly)
        XCTAssertEqual(p.pFail, .inGroup(smoothing: 0.5))
        // Positive-only: an all-fail group gives no step; a lone correct sample gets ḡ⁺(p̂), p̂ = (N−1+½)/(N+1).
        let l = learnerRunsWith(.bonRLBP)
        XCTAssertEqual(l.weights(rewards: [0, 0, 0, 0]), [0, 0, 0, 0])
        expectClose(l.weights(rewards: [0, 1, 0, 0]), [0, BoNWeights.gBarPlus(p: 3.5 / 5, n: 4), 0, 0], rtol: 1e-12, atol: 0)
    }

    func testBoNRLBDefaultIsExactAndPositiveOnlyDefaultMatchesTheHeaderTable() {
        let ps = [0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99], ns = [2, 4, 8, 16, 32]
        // The header's table (BoNRLB.swift), 3 significant digits; the last column: max over p of |c − c*| / max_p c*.
        let header: [Int: [Double]] = [
            2: [3.38, 1.95, 1.00, 0.81, 0.73, 0.68, 0.67, 0.67, 0.33],
            4: [41.8, 11.0, 1.90, 1.02, 0.73, 0.59, 0.56, 0.55, 0.46],
            8: [1.6e4, 733, 11.4, 2.38, 1.01, 0.59, 0.53, 0.49, 0.51],
            16: [2.8e9, 4.4e6, 597, 18.1, 2.45, 0.71, 0.56, 0.48, 0.54],
            32: [1.0e20, 1.9e14, 2.1e6, 1.4e3, 18.7, 1.14, 0.69, 0.48, 0.55]]
        let rlb = learnerRunsWith(.bonRLB), rlbp = learnerRunsWith(.bonRLBP)
        print("c/c* of the BoN-RLB(P) default (π_bon pick, ḡ⁺(p̂), p̂ = (#fail + ½)/(N + 1)); rows N′, columns p_fail, last max|c−c*|/max c*")
        print("  N  " + ps.map { String(format: " %9.2f", $0) }.joined())
        for n in ns {
            var row = String(format: "%3d  ", n)
            for (j, p) in ps.enumerated() {
                let cs = BoNWeights.cTrue(p: p, n: n)
                expectClose(cFactor(rlb, p: p, n: n), cs, rtol: 1e-9, atol: 1e-300, "BoN-RLB default is exact")
                expectClose(cFactor(BoNRLB(config: .positiveOnlyUniqueCorrect), p: p, n: n), cs, rtol: 1e-9, atol: 1e-300,
                            "the unique-correct positive-only ablation is exact")
                let ratio = cFactor(rlbp, p: p, n: n) / cs
                row += String(format: " %9.3g", ratio)
                // Per prompt still an ascent direction (c > 0), reweighted as the header says (to its rounding).
                XCTAssertGreaterThan(ratio, 0, "N′=\(n) p=\(p)")
                XCTAssertEqual(ratio, header[n]![j], accuracy: 0.051 * header[n]![j], "header table N′=\(n) p=\(p)")
            }
            let grid = (1..<400).map { Double($0) / 400 }
            let peak = grid.map { BoNWeights.cTrue(p: $0, n: n) }.max()!
            let worst = grid.map { abs(cFactor(rlbp, p: $0, n: n) - BoNWeights.cTrue(p: $0, n: n)) }.max()! / peak
            row += String(format: " | %.3f", worst)
            XCTAssertEqual(worst, header[n]![8], accuracy: 0.01, "header max|c − c*|/max c* N′=\(n)")
            print(row)
        }
    }
}
