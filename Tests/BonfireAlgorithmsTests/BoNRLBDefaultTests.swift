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
        for learner in [BoNRLB(), BoNRLB(config: .positiveOnlyDefaults), BoNRLB(config: .positiveOnlyInGroupGBar)] {
            for n in [1, 2, 3, 4, 6] {
                let e = ExactBoN.expectedGradient(pi: pi, scores: R, rewards: R, n: n) { _, r in learner.weights(rewards: r) }
                expectClose(e, G.map { $0 * cFactor(learner, p: p, n: n) }, rtol: 1e-9, atol: 1e-12, "\(learner.name) N=\(n)")
            }
        }
    }

    func testDefaultsCOverCStarTable() {
        let ps = [0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99], ns = [2, 4, 8, 16, 32]
        let rlb = BoNRLB(), rlbp = BoNRLB(config: .positiveOnlyInGroupGBar)
        print("c/c* of the former BoN-RLB(P) default (π_bon pick, ḡ⁺(p̂), p̂ = (#fail + ½)/(N + 1)); rows N, columns p_fail")
        print("  N  " + ps.map { String(format: " %9.2f", $0) }.joined())
        for n in ns {
            var row = String(format: "%3d  ", n)
            for p in ps {
                let cs = BoNWeights.cTrue(p: p, n: n)
                expectClose(cFactor(rlb, p: p, n: n), cs, rtol: 1e-9, atol: 1e-300, "BoN-RLB default is exact")
                expectClose(cFactor(BoNRLB(config: .positiveOnlyDefaults), p: p, n: n), cs, rtol: 1e-9, atol: 1e-300,
                            "BoN-RLB(P) default is exact")
                row += String(format: " %9.3g", cFactor(rlbp, p: p, n: n) / cs)
            }
            print(row)
        }
        // The former default is the in-group plug-in of an exact weight: still an ascent direction per prompt (c > 0),
        // but the prompts are reweighted (the table).
        for n in ns { for p in ps { XCTAssertGreaterThan(cFactor(rlbp, p: p, n: n), 0) } }
    }
}
