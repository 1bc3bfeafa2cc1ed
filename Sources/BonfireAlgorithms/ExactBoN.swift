// Exact Best-of-N maths on tabular softmax policies (Double), the numerical truth every estimator is tested against
// (SPEC-bon.md §1.2, §2, §3, §5). TEST ORACLE ONLY: production code takes nothing from here (λ_N, g±, ḡ⁺ live in
// BoNWeights.swift; the forwarding members below exist so the tests check the production numbers).
// A "policy" here is one prompt with K responses: logits θ (K), π = softmax(θ), verifier scores r (K) and rewards R (K).
// ∇ always means ∇_θ, and ∇_θ log π(y) = e_y − π.
//
// BoN distribution with ties (§1.2b), ties broken uniformly among the maximal samples:
//   F(s) = P(r ≤ s), F⁻(s) = P(r < s), m(s) = F(s) − F⁻(s)
//   π_bon(y) = π(y)/m(r_y) · [F(r_y)^N − F⁻(r_y)^N]
//   J(N) = Σ_y π_bon(y) R(y) = Σ_s [F_s^N − F⁻_s^N]·A_s/m_s with A_s = Σ_{r_y = s} π_y R_y.
// Closed-form gradient (ties allowed), for y in score level t (treating J as a function of unnormalised π):
//   ∂J/∂π_y = Σ_{s ≥ t} N F_s^{N−1} A_s/m_s − Σ_{s > t} N F⁻_s^{N−1} A_s/m_s + (F_t^N − F⁻_t^N)(R_y m_t − A_t)/m_t²
//   ∂J/∂θ_m = π_m (∂J/∂π_m − Σ_j π_j ∂J/∂π_j)                                         (softmax chain rule)
// Brute force: `enumerateTuples` visits all K^N tuples with their probability Π π(y_i); `expectedGradient` gives the
// exact expectation of any per-sample-weight estimator Σ_i w_i(tuple) ∇log π(y_i).
// Binary case (§1.2d): r = R ∈ {0,1}, p = P(R = 0): π_bon = π[R(1−p^N)/(1−p) + (1−R)p^{N−1}], J = 1 − p^N,
//   ∇J = N p^{N−1} G with G = E_π[R ∇log π].
// Variational tilt (§1.2c): Q(y) = F(r_y) (≥, ties count as wins), π_λ ∝ π·exp(λQ), ∇Q(y) = E_{y'}[1{r_y ≥ r_y'}∇log π(y')].
//   λ_N rules: linearised λ = N − 1, or KL-matched: solve KL(c) = log N − (N−1)/N in the atomless model, where the
//   tilt's win-rate is w(c) = [e^c(c−1)+1]/[c(e^c−1)] and KL(c) = c·w(c) − log((e^c−1)/c).
// BoN-SFT (§2.1, C5): ∇log π_λ(y*) = [∇log π(y*) + λ∇Q(y*)] − E_{π_λ}[∇log π + λ∇Q].
// BoN-RL variational (§2.2 form 4, C7): ∇J_λ = E_{π_λ}[(R − J_λ)(∇log π + λ∇Q)].
// BoN-RLB weights (§2.3, C4, C12): g⁺ = N p^{N−1}/(1−p^N), g⁻ = N p/(1−p), ḡ⁺ = N p^{N−1}(1−p)/(1−p^N).
// Temperature/N co-scaling and the latent-type meta-strategy (§3, C11).

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

package enum ExactBoN {
    // MARK: basics

    package static func softmax(_ logits: [Double]) -> [Double] {
        let m = logits.max() ?? 0
        let e = logits.map { exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// ∇_θ log π(y) = e_y − π.
    package static func scoreFunction(_ pi: [Double], _ y: Int) -> [Double] {
        var g = pi.map { -$0 }
        g[y] += 1
        return g
    }

    /// Central finite differences of f at x (step h).
    package static func finiteDifference(_ f: ([Double]) -> Double, at x: [Double], h: Double = 1e-6) -> [Double] {
        (0..<x.count).map { i in
            var a = x, b = x
            a[i] += h; b[i] -= h
            return (f(a) - f(b)) / (2 * h)
        }
    }

    // MARK: BoN distribution with ties (§1.2b)

    /// F(r_y) and F⁻(r_y) for every response.
    package static func cdf(pi: [Double], scores r: [Double]) -> (le: [Double], lt: [Double]) {
        precondition(pi.count == r.count, "cdf: pi (\(pi.count)) and scores (\(r.count)) differ")
        var le = [Double](repeating: 0, count: r.count), lt = le
        for y in 0..<r.count {
            for z in 0..<r.count {
                if r[z] <= r[y] { le[y] += pi[z] }
                if r[z] < r[y] { lt[y] += pi[z] }
            }
        }
        return (le, lt)
    }

    /// Win-rate Q_π(y) = P_{y'∼π}(r_y ≥ r_{y'}) = F(r_y).
    package static func winRate(pi: [Double], scores r: [Double]) -> [Double] { cdf(pi: pi, scores: r).le }

    /// π_bon(y) = π(y)/m(r_y)·[F^N − F⁻^N], ties broken uniformly.
    package static func bonDistribution(pi: [Double], scores r: [Double], n: Int) -> [Double] {
        precondition(n >= 1, "bonDistribution: N must be ≥ 1, got \(n)")
        let (le, lt) = cdf(pi: pi, scores: r)
        return (0..<pi.count).map { y in
            let m = le[y] - lt[y]
            return m > 0 ? pi[y] / m * (pow(le[y], Double(n)) - pow(lt[y], Double(n))) : 0
        }
    }

    /// J(N) = E_{π_bon}[R].
    package static func value(pi: [Double], scores r: [Double], rewards R: [Double], n: Int) -> Double {
        zip(bonDistribution(pi: pi, scores: r, n: n), R).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// Closed-form ∇_θ J(N) with ties (file header).
    package static func valueGradient(logits: [Double], scores r: [Double], rewards R: [Double], n: Int) -> [Double] {
        let pi = softmax(logits), K = pi.count, N = Double(n)
        let levels = Array(Set(r)).sorted()
        var F = [Double](), Fm = [Double](), A = [Double](), M = [Double]()
        for s in levels {
            var f = 0.0, fm = 0.0, a = 0.0, m = 0.0
            for z in 0..<K {
                if r[z] <= s { f += pi[z] }
                if r[z] < s { fm += pi[z] }
                if r[z] == s { a += pi[z] * R[z]; m += pi[z] }
            }
            F.append(f); Fm.append(fm); A.append(a); M.append(m)
        }
        var dPi = [Double](repeating: 0, count: K)
        for y in 0..<K {
            let t = levels.firstIndex(of: r[y])!
            var d = 0.0
            for s in t..<levels.count where M[s] > 0 {
                d += N * pow(F[s], N - 1) * A[s] / M[s]
                if s > t { d -= N * pow(Fm[s], N - 1) * A[s] / M[s] }
            }
            if M[t] > 0 { d += (pow(F[t], N) - pow(Fm[t], N)) * (R[y] * M[t] - A[t]) / (M[t] * M[t]) }
            dPi[y] = d
        }
        let mean = zip(pi, dPi).reduce(0) { $0 + $1.0 * $1.1 }
        return (0..<K).map { pi[$0] * (dPi[$0] - mean) }
    }

    // MARK: brute-force enumeration (the test reference)

    /// Calls body(tuple, Π π(y_i)) for every tuple in {0..K−1}^N.
    package static func enumerateTuples(pi: [Double], n: Int, _ body: ([Int], Double) -> Void) {
        let K = pi.count
        var t = [Int](repeating: 0, count: n)
        while true {
            body(t, t.reduce(1.0) { $0 * pi[$1] })
            var i = n - 1
            while i >= 0 {
                t[i] += 1
                if t[i] < K { break }
                t[i] = 0; i -= 1
            }
            if i < 0 { return }
        }
    }

    /// BoN distribution by enumeration with uniform tie-breaking.
    package static func enumeratedBoNDistribution(pi: [Double], scores r: [Double], n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: pi.count)
        enumerateTuples(pi: pi, n: n) { t, p in
            let winners = BoNSelection.winners(t.map { r[$0] })
            for w in winners { out[t[w]] += p / Double(winners.count) }
        }
        return out
    }

    /// J(N) by enumeration.
    package static func enumeratedValue(pi: [Double], scores r: [Double], rewards R: [Double], n: Int) -> Double {
        var j = 0.0
        enumerateTuples(pi: pi, n: n) { t, p in
            j += p * BoNSelection.bestReward(scores: t.map { r[$0] }, rewards: t.map { R[$0] })
        }
        return j
    }

    /// Exact expectation of the estimator Σ_i w_i ∇log π(y_i), where `weights(scores, rewards)` maps a group of n
    /// samples (their verifier scores and rewards) to per-sample weights — the same functions the learners use.
    package static func expectedGradient(pi: [Double], scores r: [Double], rewards R: [Double], n: Int,
                                         weights: ([Double], [Double]) -> [Double]) -> [Double] {
        var g = [Double](repeating: 0, count: pi.count)
        enumerateTuples(pi: pi, n: n) { t, p in
            let w = weights(t.map { r[$0] }, t.map { R[$0] })
            precondition(w.count == n, "expectedGradient: weights returned \(w.count) entries for a group of \(n)")
            for (i, y) in t.enumerated() where w[i] != 0 {
                for k in 0..<pi.count { g[k] += p * w[i] * ((k == y ? 1 : 0) - pi[k]) }
            }
        }
        return g
    }

    // MARK: binary reward (§1.2d)

    /// p_fail = P_π(R = 0) for R ∈ {0,1}.
    package static func failureProbability(pi: [Double], rewards R: [Double]) -> Double {
        zip(pi, R).reduce(0) { $0 + ($1.1 >= 0.5 ? 0 : $1.0) }
    }

    package static func binaryBoNDistribution(pi: [Double], rewards R: [Double], n: Int) -> [Double] {
        let p = failureProbability(pi: pi, rewards: R), N = Double(n)
        return zip(pi, R).map { pi, r in
            r >= 0.5 ? pi * (1 - pow(p, N)) / (1 - p) : pi * pow(p, N - 1)
        }
    }

    /// G = ∇(1 − p) = E_π[R ∇log π].
    package static func passGradient(pi: [Double], rewards R: [Double]) -> [Double] {
        var g = [Double](repeating: 0, count: pi.count)
        for y in 0..<pi.count where R[y] != 0 {
            for k in 0..<pi.count { g[k] += pi[y] * R[y] * ((k == y ? 1 : 0) - pi[k]) }
        }
        return g
    }

    /// pass@N = 1 − p^N.
    package static func passAtN(pFail p: Double, n: Int) -> Double { 1 - pow(p, Double(n)) }

    // MARK: BoN-RLB weights (§2.3) — production values live in BoNWeights; forwarded so tests check the same numbers

    package static func gPlus(p: Double, n: Int) -> Double { BoNWeights.gPlus(p: p, n: n) }
    package static func gMinus(p: Double, n: Int) -> Double { BoNWeights.gMinus(p: p, n: n) }
    package static func gBarPlus(p: Double, n: Int) -> Double { BoNWeights.gBarPlus(p: p, n: n) }
    /// c*(p) = N p^{N−1}, the true pass@N gradient scale: ∇J = c*·G.
    package static func cTrue(p: Double, n: Int) -> Double { BoNWeights.cTrue(p: p, n: n) }

    /// c(p) of E[w(R)∇log π] = c·G when y ∼ π_bon (selection by R) with weight `wPos` on correct and `wNeg` on
    /// incorrect samples: E_{π_bon}[R∇log π] = (1−p^N)/(1−p)·G, E_{π_bon}[(1−R)∇log π] = −p^{N−1}·G.
    package static func cUnderBoN(p: Double, n: Int, wPos: Double, wNeg: Double) -> Double {
        let N = Double(n)
        return wPos * (1 - pow(p, N)) / (1 - p) - wNeg * pow(p, N - 1)
    }
    /// c(p) when y ∼ π: E_π[R∇log π] = G, E_π[(1−R)∇log π] = −G.
    package static func cUnderPolicy(wPos: Double, wNeg: Double) -> Double { wPos - wNeg }

    // MARK: variational tilt (§1.2c, §2.1, §2.2 form 4)

    /// ∇_θ Q(y) for every y: row y is Σ_{y'} π_{y'} 1{r_y ≥ r_{y'}} (e_{y'} − π).
    package static func winRateGradient(pi: [Double], scores r: [Double]) -> [[Double]] {
        let K = pi.count
        return (0..<K).map { y in
            var g = [Double](repeating: 0, count: K)
            for z in 0..<K where r[y] >= r[z] {
                for k in 0..<K { g[k] += pi[z] * ((k == z ? 1 : 0) - pi[k]) }
            }
            return g
        }
    }

    /// π_λ ∝ π·exp(λ Q_π).
    package static func tilt(pi: [Double], scores r: [Double], lambda: Double) -> [Double] {
        let q = winRate(pi: pi, scores: r)
        let u = zip(pi, q).map { $0 * exp(lambda * $1) }
        let z = u.reduce(0, +)
        return u.map { $0 / z }
    }

    /// log π_λ(y|θ) (for finite differences).
    package static func tiltLogProb(logits: [Double], scores r: [Double], lambda: Double, y: Int) -> Double {
        log(tilt(pi: softmax(logits), scores: r, lambda: lambda)[y])
    }

    /// §2.1: ∇log π_λ(y*) = [∇log π(y*) + λ∇Q(y*)] − E_{π_λ}[∇log π + λ∇Q].
    package static func tiltLogProbGradient(logits: [Double], scores r: [Double], lambda: Double, y: Int) -> [Double] {
        let pi = softmax(logits), K = pi.count
        let dQ = winRateGradient(pi: pi, scores: r)
        let pl = tilt(pi: pi, scores: r, lambda: lambda)
        func term(_ z: Int) -> [Double] { (0..<K).map { k in ((k == z ? 1 : 0) - pi[k]) + lambda * dQ[z][k] } }
        var g = term(y)
        for z in 0..<K {
            let t = term(z)
            for k in 0..<K { g[k] -= pl[z] * t[k] }
        }
        return g
    }

    /// BoN-SFT's BoN correction for an expert of score r* (which need not be one of the K responses):
    /// ∇log π_λ(y*) − ∇log π(y*) = λ∇F(r*) − ∇log Z = Σ_y π(y) a(r_y) ∇log π(y), where over the score levels
    /// s_1 < … < s_L with masses m_t, F_t = Σ_{u≤t} m_u and Z = Σ_t m_t e^{λF_t}:
    /// a_t = λ1{r* ≥ s_t} − [e^{λF_t} + λΣ_{u≥t} m_u e^{λF_u}]/Z   (= ∂(λF(r*) − log Z)/∂m_t).
    package static func tiltCorrection(logits: [Double], scores r: [Double], lambda: Double, expertScore rs: Double) -> [Double] {
        let pi = softmax(logits), K = pi.count
        let levels = Array(Set(r)).sorted()
        let m = levels.map { s in (0..<K).reduce(0.0) { $0 + (r[$1] == s ? pi[$1] : 0) } }
        var F = [Double](), acc = 0.0
        for x in m { acc += x; F.append(acc) }
        let e = F.map { exp(lambda * $0) }
        let Z = zip(m, e).reduce(0) { $0 + $1.0 * $1.1 }
        let a = levels.indices.map { t -> Double in
            var tail = 0.0
            for u in t..<levels.count { tail += m[u] * e[u] }
            return (rs >= levels[t] ? lambda : 0) - (e[t] + lambda * tail) / Z
        }
        var g = [Double](repeating: 0, count: K)
        for y in 0..<K {
            let ay = a[levels.firstIndex(of: r[y])!]
            for k in 0..<K { g[k] += pi[y] * ay * ((k == y ? 1 : 0) - pi[k]) }
        }
        return g
    }

    /// λF(r*) − log Z(θ): the part of log π_λ(y*) beyond log π(y*) (finite-difference check of `tiltCorrection`).
    package static func tiltCorrectionObjective(logits: [Double], scores r: [Double], lambda: Double, expertScore rs: Double) -> Double {
        let pi = softmax(logits)
        let q = winRate(pi: pi, scores: r)
        let z = zip(pi, q).reduce(0) { $0 + $1.0 * exp(lambda * $1.1) }
        let f = zip(pi, r).reduce(0) { $0 + ($1.1 <= rs ? $1.0 : 0) }
        return lambda * f - log(z)
    }

    /// Calls body(counts, probability) for every count vector c ∈ ℕ^K with Σc = M, with its multinomial probability
    /// M!/Πc_k! Π π_k^{c_k}: the exact distribution of the multiset of M i.i.d. draws (C(M+K−1, K−1) terms instead of K^M).
    package static func enumerateCounts(pi: [Double], m: Int, _ body: ([Int], Double) -> Void) {
        let K = pi.count
        precondition(K >= 1 && m >= 0, "enumerateCounts: need K ≥ 1 (got \(K)) and M ≥ 0 (got \(m))")
        var logFact = [0.0]
        for i in 1...max(1, m) { logFact.append(logFact[i - 1] + log(Double(i))) }
        var c = [Int](repeating: 0, count: K)
        func rec(_ k: Int, _ left: Int) {
            if k == K - 1 {
                c[k] = left
                var lp = logFact[m], zero = false
                for j in 0..<K {
                    lp -= logFact[c[j]]
                    if c[j] > 0 { if pi[j] <= 0 { zero = true } else { lp += Double(c[j]) * log(pi[j]) } }
                }
                if !zero { body(c, exp(lp)) }
                return
            }
            for x in 0...left { c[k] = x; rec(k + 1, left - x) }
        }
        rec(0, m)
    }

    /// Exact expectation of Σ_k w_k ∇log π(y_k) over M i.i.d. draws y_1..M ∼ π, for a weight function of the sample
    /// (response ids, sorted ascending) that is symmetric under permuting the samples. Enumerates count vectors.
    package static func expectedSampleStep(pi: [Double], m: Int, weights: ([Int]) -> [Double]) -> [Double] {
        var g = [Double](repeating: 0, count: pi.count)
        enumerateCounts(pi: pi, m: m) { c, p in
            let ids = c.indices.flatMap { [Int](repeating: $0, count: c[$0]) }
            let w = weights(ids)
            precondition(w.count == m, "expectedSampleStep: weights returned \(w.count) entries for M = \(m)")
            for (i, y) in ids.enumerated() where w[i] != 0 {
                for k in 0..<pi.count { g[k] += p * w[i] * ((k == y ? 1 : 0) - pi[k]) }
            }
        }
        return g
    }

    /// J_λ = E_{π_λ}[R].
    package static func tiltValue(logits: [Double], scores r: [Double], rewards R: [Double], lambda: Double) -> Double {
        zip(tilt(pi: softmax(logits), scores: r, lambda: lambda), R).reduce(0) { $0 + $1.0 * $1.1 }
    }

    /// §2.2 form 4: full = E_{π_λ}[(R − J_λ)(∇log π + λ∇Q)]; firstTermOnly drops λ∇Q.
    package static func tiltValueGradient(logits: [Double], scores r: [Double], rewards R: [Double],
                                          lambda: Double) -> (full: [Double], firstTermOnly: [Double]) {
        let pi = softmax(logits), K = pi.count
        let dQ = winRateGradient(pi: pi, scores: r)
        let pl = tilt(pi: pi, scores: r, lambda: lambda)
        let J = zip(pl, R).reduce(0) { $0 + $1.0 * $1.1 }
        var full = [Double](repeating: 0, count: K), first = full
        for z in 0..<K {
            let a = pl[z] * (R[z] - J)
            for k in 0..<K {
                let s = (k == z ? 1 : 0) - pi[k]
                first[k] += a * s
                full[k] += a * (s + lambda * dQ[z][k])
            }
        }
        return (full, first)
    }

    // MARK: λ_N rules (§1.2c, C8) — production values live in BoNWeights; forwarded for the tests

    /// Kept so callers written against `BoNWeights.LambdaRule` still compile; new code uses `BoNWeights.LambdaRule`.
    package typealias LambdaRule = BoNWeights.LambdaRule

    package static func atomlessBoNKL(n: Int) -> Double { BoNWeights.atomlessBoNKL(n: n) }
    package static func atomlessTiltWinRate(_ c: Double) -> Double { BoNWeights.atomlessTiltWinRate(c) }
    package static func atomlessTiltKL(_ c: Double) -> Double { BoNWeights.atomlessTiltKL(c) }
    /// λ_N under a rule (λ_1 = 0 under both). Forwarding only: production code calls `BoNWeights.lambda`.
    package static func lambda(n: Int, rule: LambdaRule) -> Double { BoNWeights.lambda(n: n, rule: rule) }

    // MARK: §3 toys (C11)

    /// π_T ∝ q^{1/T}; pass@N(T) = Σ_k q_k (1 − (1 − π_{T,k})^N).
    package static func latentPassAtN(q: [Double], temperature T: Double, n: Int) -> Double {
        let pi = softmax(q.map { log($0) / T })
        return latentPassAtN(q: q, policy: pi, n: n)
    }

    package static func latentPassAtN(q: [Double], policy pi: [Double], n: Int) -> Double {
        zip(q, pi).reduce(0) { $0 + $1.0 * (1 - pow(1 - $1.1, Double(n))) }
    }

    /// T*(N) = argmax_T pass@N(T): grid over log T then golden-section refinement.
    package static func optimalTemperature(q: [Double], n: Int, range: ClosedRange<Double> = 0.01...100)
        -> (temperature: Double, passAtN: Double) {
        let f = { (lt: Double) in latentPassAtN(q: q, temperature: exp(lt), n: n) }
        let a0 = log(range.lowerBound), b0 = log(range.upperBound)
        let steps = 400
        var best = 0, bestV = -Double.infinity
        for i in 0...steps {
            let v = f(a0 + (b0 - a0) * Double(i) / Double(steps))
            if v > bestV { bestV = v; best = i }
        }
        var a = a0 + (b0 - a0) * Double(max(0, best - 1)) / Double(steps)
        var b = a0 + (b0 - a0) * Double(min(steps, best + 1)) / Double(steps)
        let g = (sqrt(5.0) - 1) / 2
        for _ in 0..<100 {
            let c = b - g * (b - a), d = a + g * (b - a)
            if f(c) > f(d) { b = d } else { a = c }
        }
        let t = exp(0.5 * (a + b))
        return (t, latentPassAtN(q: q, temperature: t, n: n))
    }

    /// Meta-strategy optimum of Σ_k q_k(1 − (1 − π_k)^N): π*_k = max(0, 1 − (μ/(N q_k))^{1/(N−1)}), Σπ* = 1.
    package static func metaStrategyOptimum(q: [Double], n: Int) -> [Double] {
        if n == 1 {
            let k = q.indices.max { q[$0] < q[$1] }!
            return q.indices.map { $0 == k ? 1 : 0 }
        }
        let N = Double(n)
        func pol(_ mu: Double) -> [Double] { q.map { max(0, 1 - pow(mu / (N * $0), 1 / (N - 1))) } }
        var lo = 0.0, hi = N * (q.max() ?? 1)   // Σ decreases in μ: 1·K at 0, 0 at hi
        for _ in 0..<200 {
            let mid = 0.5 * (lo + hi)
            if pol(mid).reduce(0, +) > 1 { lo = mid } else { hi = mid }
        }
        return pol(0.5 * (lo + hi))
    }
}
