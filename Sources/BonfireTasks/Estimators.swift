// Evaluation estimators from n ≥ N i.i.d. samples per prompt (SPEC-bon.md §5 C9), all unbiased, all exact
// expectations over a uniformly random N-subset of the n samples (no Monte Carlo).
//
// Bo-N accuracy with ties (uniform tie-breaking, expected value). Group the n samples by distinct verifier score s;
// for group s let a_s = #samples with score < s, m_s = #samples with score = s, R̄_s = mean reward in the group.
// A uniform N-subset has maximum score s with probability [C(a_s + m_s, N) − C(a_s, N)] / C(n, N); given that, the
// tie-broken pick is, by symmetry, a uniform member of the group, so its expected reward is R̄_s. Hence
//     boN = Σ_s [C(a_s + m_s, N) − C(a_s, N)] / C(n, N) · R̄_s.
// Without ties (m_s = 1, a_s = j − 1 for the j-th smallest) this is SPEC's Σ_j C(j−1, N−1)/C(n, N) · R_(j).
// The N-subset average is unbiased for E[R(y*)] with y* the best of N i.i.d. draws: an N-subset of n i.i.d. draws is
// itself N i.i.d. draws. Ratios C(j, N)/C(n, N) = Π_{i<N} (j−i)/(n−i) are computed as products (no overflow).
//
// pass@k (Chen et al. 2021): 1 − C(n−c, k)/C(n, k), c = #correct. It is boN with r = R binary: the R = 1 group has
// a = n − c, m = c, R̄ = 1, contributing 1 − C(n−c, k)/C(n, k).
//
// Majority vote (math; any task with answer keys): the k-subset's most frequent non-nil answer wins, ties between
// answers broken uniformly; its reward counts (all samples with one answer share R; R̄ of the answer is used). A subset
// with no non-nil answer scores 0. Expected value over uniform k-subsets: for answer g with count c_g,
//   P(g wins) = Σ_{t≥1} C(c_g, t) Σ_{u: u_h ≤ t ∀h≠g} Π_h C(c_h, u_h) · C(c_nil, k − t − Σu) / (1 + #{h: u_h = t}) / C(n, k),
// computed by a dynamic programme over the other answers with state (Σu, #ties). P(g wins) depends only on c_g and the
// other counts, so it is computed once per distinct count value.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

package enum Estimators {
    /// C(j, N) / C(n, N) for 0 ≤ j ≤ n, N ≤ n.
    package static func binomialRatio(_ j: Int, _ N: Int, _ n: Int) -> Double {
        precondition(N >= 0 && N <= n && j >= 0 && j <= n, "binomialRatio: need 0 ≤ N ≤ n, 0 ≤ j ≤ n; got j=\(j) N=\(N) n=\(n)")
        if j < N { return 0 }
        var r = 1.0
        for i in 0..<N { r *= Double(j - i) / Double(n - i) }
        return r
    }

    /// Unbiased pass@k from n samples of which c are correct.
    package static func passAtK(n: Int, c: Int, k: Int) -> Double {
        precondition(n >= 1 && k >= 1 && k <= n && c >= 0 && c <= n, "passAtK: need 1 ≤ k ≤ n, 0 ≤ c ≤ n; got n=\(n) c=\(c) k=\(k)")
        return 1 - binomialRatio(n - c, k, n)
    }

    /// Unbiased Bo-N accuracy from n = scores.count ≥ N samples: expected reward of the highest-score sample of a
    /// uniform N-subset, ties broken uniformly (expected value). scores[i] is r(x, y_i), rewards[i] is R(x, y_i).
    package static func bestOfN(scores: [Double], rewards: [Double], n N: Int) -> Double {
        let n = scores.count
        precondition(rewards.count == n, "bestOfN: scores (\(n)) and rewards (\(rewards.count)) differ in length")
        precondition(N >= 1 && N <= n, "bestOfN: need 1 ≤ N ≤ n, got N=\(N) n=\(n)")
        precondition(!scores.contains { $0.isNaN }, "bestOfN: NaN verifier score")
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var total = 0.0
        var start = 0
        while start < n {
            var end = start
            var sumR = 0.0
            while end < n && scores[order[end]] == scores[order[start]] { sumR += rewards[order[end]]; end += 1 }
            let m = end - start
            let pMax = binomialRatio(end, N, n) - binomialRatio(start, N, n)
            total += pMax * sumR / Double(m)
            start = end
        }
        return total
    }

    /// Expected majority-vote reward over uniform k-subsets of the n samples (k = nil: all n). answers[i] == nil means
    /// the sample has no valid answer (does not vote). rewards[i] is R of sample i.
    package static func majorityVote(answers: [String?], rewards: [Double], k: Int? = nil) -> Double {
        let n = answers.count
        precondition(rewards.count == n, "majorityVote: answers (\(n)) and rewards (\(rewards.count)) differ in length")
        let k = k ?? n
        precondition(k >= 1 && k <= n && n <= 1000, "majorityVote: need 1 ≤ k ≤ n ≤ 1000, got k=\(k) n=\(n)")
        var count: [String: Int] = [:]
        var rewardSum: [String: Double] = [:]
        var nilCount = 0
        for (a, r) in zip(answers, rewards) {
            guard let a else { nilCount += 1; continue }
            count[a, default: 0] += 1
            rewardSum[a, default: 0] += r
        }
        let keys = Array(count.keys)
        if keys.isEmpty { return 0 }
        let counts = keys.map { count[$0]! }
        let logTotal = logBinomial(n, k)
        func w(_ a: Int, _ b: Int) -> Double { (b < 0 || b > a) ? 0 : exp(logBinomial(a, b)) }
        var winProbByCount: [Int: Double] = [:]
        for cg in Set(counts) {
            // Others: all groups, minus one group with count cg.
            var others = counts
            others.remove(at: others.firstIndex(of: cg)!)
            var p = 0.0
            for t in 1...min(cg, k) {
                let room = k - t
                let maxTies = others.filter { $0 >= t }.count
                // dp[used][ties], scaled by exp(-logTotal) at the start to keep values bounded.
                var dp = [[Double]](repeating: [Double](repeating: 0, count: maxTies + 1), count: room + 1)
                dp[0][0] = exp(logBinomial(cg, t) - logTotal)
                for ch in others {
                    var next = [[Double]](repeating: [Double](repeating: 0, count: maxTies + 1), count: room + 1)
                    for used in 0...room {
                        for j in 0...maxTies where dp[used][j] != 0 {
                            for u in 0...min(ch, t, room - used) {
                                let j2 = u == t ? j + 1 : j
                                next[used + u][j2] += dp[used][j] * w(ch, u)
                            }
                        }
                    }
                    dp = next
                }
                for used in 0...room {
                    let fill = w(nilCount, room - used)
                    if fill == 0 { continue }
                    for j in 0...maxTies where dp[used][j] != 0 { p += dp[used][j] * fill / Double(1 + j) }
                }
            }
            winProbByCount[cg] = p
        }
        var total = 0.0
        for (key, c) in zip(keys, counts) { total += winProbByCount[c]! * rewardSum[key]! / Double(c) }
        return total
    }

    package static func logBinomial(_ n: Int, _ k: Int) -> Double {
        precondition(k >= 0 && k <= n, "logBinomial: need 0 ≤ k ≤ n, got n=\(n) k=\(k)")
        return lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// Mean and standard error of the mean (sample sd / √count; 0 for one value).
    package static func meanAndStandardError(_ xs: [Double]) -> (mean: Double, standardError: Double) {
        precondition(!xs.isEmpty, "meanAndStandardError: empty input")
        let m = xs.reduce(0, +) / Double(xs.count)
        guard xs.count > 1 else { return (m, 0) }
        let v = xs.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(xs.count - 1)
        return (m, (v / Double(xs.count)).squareRoot())
    }
}
