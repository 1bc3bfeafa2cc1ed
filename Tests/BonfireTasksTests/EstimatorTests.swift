// Each evaluation estimator equals the exact expectation obtained by enumerating all N-subsets (and, for
// unbiasedness, all n-tuples of i.i.d. draws) on small fixtures, with and without score ties (SPEC-bon.md §5 C9).
import XCTest
import BonfireTestSupport
import BonfireTasks

final class EstimatorTests: XCTestCase {
    /// All size-k subsets of 0..<n.
    private func subsets(_ n: Int, _ k: Int) -> [[Int]] {
        if k == 0 { return [[]] }
        if n < k { return [] }
        return subsets(n - 1, k) + subsets(n - 1, k - 1).map { $0 + [n - 1] }
    }

    /// BoN value of one set of samples with uniform tie-breaking among the maximal scores.
    private func bonValue(_ idx: [Int], _ r: [Double], _ R: [Double]) -> Double {
        let m = idx.map { r[$0] }.max()!
        let top = idx.filter { r[$0] == m }
        return top.map { R[$0] }.reduce(0, +) / Double(top.count)
    }

    private func enumeratedBoN(_ r: [Double], _ R: [Double], _ N: Int) -> Double {
        let all = subsets(r.count, N)
        return all.map { bonValue($0, r, R) }.reduce(0, +) / Double(all.count)
    }

    func testBestOfNEqualsSubsetEnumerationWithoutTies() {
        let r = [0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.8]
        let R = [1.0, 0.0, 1.0, 1.0, 0.0, 0.5, 1.0]
        for N in 1...r.count {
            expectClose(Estimators.bestOfN(scores: r, rewards: R, n: N), enumeratedBoN(r, R, N), rtol: 1e-12, atol: 1e-12, "N=\(N)")
        }
        // SPEC's tie-free form Σ_j C(j−1, N−1)/C(n, N) R_(j).
        let order = r.indices.sorted { r[$0] < r[$1] }
        let N = 3
        var spec = 0.0
        for (j, i) in order.enumerated() where j + 1 >= N {
            spec += Estimators.binomialRatio(j, N - 1, r.count - 1) * Double(N) / Double(r.count) * R[i]
        }
        expectClose(Estimators.bestOfN(scores: r, rewards: R, n: N), spec, rtol: 1e-12, atol: 1e-12, "SPEC form")
    }

    func testBestOfNEqualsSubsetEnumerationWithTies() {
        var rng = RNGBox(seed: 42)
        for trial in 0..<30 {
            let n = 3 + rng.int(6)
            let r = (0..<n).map { _ in Double(rng.int(3)) / 2 }            // heavy ties
            let R = (0..<n).map { _ in Double(rng.int(2)) }
            for N in 1...n {
                expectClose(Estimators.bestOfN(scores: r, rewards: R, n: N), enumeratedBoN(r, R, N),
                            rtol: 1e-12, atol: 1e-12, "trial \(trial) N=\(N) r=\(r) R=\(R)")
            }
        }
        // All tied: Bo-N is the mean reward for every N.
        expectClose(Estimators.bestOfN(scores: [1, 1, 1, 1], rewards: [1, 0, 0, 1], n: 3), 0.5, rtol: 0, atol: 1e-15, "all tied")
    }

    /// Exact J_bon for N i.i.d. draws from π with uniform tie-breaking, by enumerating all N-tuples.
    private func exactBoN(_ pi: [Double], _ r: [Double], _ R: [Double], _ N: Int) -> Double {
        var total = 0.0
        var tuple = [Int](repeating: 0, count: N)
        func rec(_ pos: Int, _ p: Double) {
            if pos == N { total += p * bonValue(tuple, r, R); return }
            for y in 0..<pi.count { tuple[pos] = y; rec(pos + 1, p * pi[y]) }
        }
        rec(0, 1)
        return total
    }

    /// E over all n-tuples of i.i.d. draws of the estimator computed on that tuple.
    private func expectedEstimator(_ pi: [Double], _ n: Int, _ estimate: ([Int]) -> Double) -> Double {
        var total = 0.0
        var tuple = [Int](repeating: 0, count: n)
        func rec(_ pos: Int, _ p: Double) {
            if pos == n { total += p * estimate(tuple); return }
            for y in 0..<pi.count { tuple[pos] = y; rec(pos + 1, p * pi[y]) }
        }
        rec(0, 1)
        return total
    }

    func testBestOfNIsUnbiasedOnSpecFixtureC9() {
        let pi = [0.2071552608, 0.1028702581, 0.4610325114, 0.2289419697]
        let N = 3, n = 5
        // C1: the exact value in the spec.
        expectClose(exactBoN(pi, [0.1, 0.9, 0.4, 0.7], [0, 1, 0, 1], N), 0.7016709319916683, rtol: 1e-8, atol: 1e-9, "C1 J_bon")
        for (r, R) in [([0.1, 0.9, 0.4, 0.7], [0.3, 0.2, 1.0, 0.6]),        // C6, distinct scores
                       ([0.5, 0.9, 0.5, 0.2], [0.0, 1.0, 1.0, 0.0]),        // C6 with ties
                       ([0.5, 0.9, 0.5, 0.2], [0.0, 1.0, 0.0, 1.0])] {      // C2 ties
            let e = expectedEstimator(pi, n) { t in
                Estimators.bestOfN(scores: t.map { r[$0] }, rewards: t.map { R[$0] }, n: N)
            }
            expectClose(e, exactBoN(pi, r, R, N), rtol: 1e-10, atol: 1e-12, "E[estimator] = J_bon for r=\(r) R=\(R)")
        }
    }

    func testPassAtKIsEnumerationAndTheBinaryCaseOfBoN() {
        for n in 1...8 {
            for c in 0...n {
                let R = (0..<n).map { $0 < c ? 1.0 : 0.0 }
                for k in 1...n {
                    let all = subsets(n, k)
                    let exact = Double(all.filter { s in s.contains { R[$0] == 1 } }.count) / Double(all.count)
                    let p = Estimators.passAtK(n: n, c: c, k: k)
                    expectClose(p, exact, rtol: 1e-12, atol: 1e-12, "pass@\(k) n=\(n) c=\(c)")
                    expectClose(Estimators.bestOfN(scores: R, rewards: R, n: k), p, rtol: 1e-12, atol: 1e-12, "Bo-N with r=R")
                }
            }
        }
        // Unbiased for 1 − (1−p)^k: exact expectation over Binomial(n, p).
        let p = 0.3, n = 10, k = 4
        var e = 0.0
        for c in 0...n {
            let w = exp(Estimators.logBinomial(n, c)) * pow(p, Double(c)) * pow(1 - p, Double(n - c))
            e += w * Estimators.passAtK(n: n, c: c, k: k)
        }
        expectClose(e, 1 - pow(1 - p, Double(k)), rtol: 1e-12, atol: 1e-12, "E[pass@k] = 1−(1−p)^k")
        // Large n does not overflow.
        XCTAssertEqual(Estimators.passAtK(n: 1000, c: 1, k: 500), 0.5, accuracy: 1e-12)
    }

    private func enumeratedMajority(_ answers: [String?], _ R: [Double], _ k: Int) -> Double {
        let all = subsets(answers.count, k)
        var total = 0.0
        for s in all {
            var counts: [String: Int] = [:]
            var reward: [String: Double] = [:]
            for i in s { if let a = answers[i] { counts[a, default: 0] += 1; reward[a] = R[i] } }
            guard let m = counts.values.max() else { continue }
            let winners = counts.filter { $0.value == m }.map { $0.key }
            total += winners.map { reward[$0]! }.reduce(0, +) / Double(winners.count)
        }
        return total / Double(all.count)
    }

    func testMajorityVoteEqualsSubsetEnumerationWithTiesAndInvalidAnswers() {
        var rng = RNGBox(seed: 7)
        let alphabet: [String?] = ["1", "2", "3", "4", nil]
        for trial in 0..<40 {
            let n = 2 + rng.int(8)
            let answers = (0..<n).map { _ in alphabet[rng.int(alphabet.count)] }
            let correct = "1"
            let R = answers.map { $0 == correct ? 1.0 : 0.0 }
            for k in 1...n {
                expectClose(Estimators.majorityVote(answers: answers, rewards: R, k: k), enumeratedMajority(answers, R, k),
                            rtol: 1e-9, atol: 1e-12, "trial \(trial) k=\(k) answers=\(answers)")
            }
            expectClose(Estimators.majorityVote(answers: answers, rewards: R), enumeratedMajority(answers, R, n),
                        rtol: 1e-9, atol: 1e-12, "k = n default")
        }
        XCTAssertEqual(Estimators.majorityVote(answers: [nil, nil], rewards: [0, 0], k: 1), 0)
        // Two-way tie at full n: expected value ½.
        XCTAssertEqual(Estimators.majorityVote(answers: ["1", "2"], rewards: [1, 0]), 0.5, accuracy: 1e-12)
        // Many distinct answers at n = 64 stay fast and in [0, 1].
        let many = (0..<64).map { i -> String? in i < 10 ? "7" : String(i) }
        let v = Estimators.majorityVote(answers: many, rewards: many.map { $0 == "7" ? 1 : 0 }, k: 32)
        XCTAssertTrue(v > 0.9 && v <= 1, "\(v)")
    }

    func testAUCAndStandardError() {
        XCTAssertEqual(Estimators.auc(scores: [0.1, 0.4, 0.35, 0.8], labels: [0, 0, 1, 1]), 0.75)
        XCTAssertEqual(Estimators.auc(scores: [0.5, 0.5], labels: [0, 1]), 0.5)
        XCTAssertNil(Estimators.auc(scores: [0.5, 0.6], labels: [1, 1]))
        let (m, se) = Estimators.meanAndStandardError([1, 0, 1, 0])
        XCTAssertEqual(m, 0.5)
        XCTAssertEqual(se, (1.0 / 3).squareRoot() / 2, accuracy: 1e-12)
    }
}
