// The constants and closed-form weights the BoN learners share (SPEC-bon.md §1.2c, §2.3, C8, C10, C12). Production
// code takes these from here; `ExactBoN` (the test oracle) forwards to them so the tests check the very same numbers.
//
// λ_N of the variational BoN policy π_λ ∝ π·exp(λ_N Q_π) (§1.2c), two rules (λ_1 = 0 under both):
//   .linearised  λ_N = N − 1                      (log(N π Q^{N−1}) with log Q ≈ Q − 1)
//   .klMatched   KL(π_λ‖π) = log N − (N−1)/N      (the atomless BoN KL; Q ∼ U(0,1) under π, so the tilt's win-rate is
//                w(c) = [e^c(c−1)+1]/[c(e^c−1)] and KL(c) = c·w(c) − log((e^c−1)/c), increasing in c; bisection)
//   Reference values (C8): N = 2, 4, 8, 16, 32 → 2.2886, 4.9169, 9.0545, 17.0319, 33.0158.
// Binary-reward BoN weights (§2.3), p = p_fail:
//   g⁺_N(p) = N p^{N−1}/(1 − p^N)   g⁻_N(p) = N p/(1 − p)   ḡ⁺_N(p) = N p^{N−1}(1 − p)/(1 − p^N) ∈ [0, 1]
//   c*_N(p) = N p^{N−1} (∇pass@N = c*·∇(1 − p)).

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

package enum BoNWeights {
    /// How λ_N of the variational BoN policy is chosen (file header).
    package enum LambdaRule: String, Codable, Sendable, CaseIterable {
        /// λ_N = N − 1 (linearised log).
        case linearised
        /// λ_N such that the atomless tilt's KL equals the BoN KL log N − (N−1)/N.
        case klMatched
    }

    /// λ_N under a rule (λ_1 = 0 under both).
    package static func lambda(n: Int, rule: LambdaRule) -> Double {
        precondition(n >= 1, "BoNWeights.lambda: N must be ≥ 1, got \(n)")
        if n == 1 { return 0 }
        switch rule {
        case .linearised: return Double(n - 1)
        case .klMatched:
            let target = atomlessBoNKL(n: n)
            var lo = 0.0, hi = 4.0 * Double(n) + 10   // KL(c) is increasing in c
            for _ in 0..<200 {
                let mid = 0.5 * (lo + hi)
                if atomlessTiltKL(mid) < target { lo = mid } else { hi = mid }
            }
            return 0.5 * (lo + hi)
        }
    }

    /// Atomless BoN KL(π_bon‖π) = log N − (N−1)/N.
    package static func atomlessBoNKL(n: Int) -> Double { log(Double(n)) - Double(n - 1) / Double(n) }

    /// Win-rate of the atomless tilt with λ = c: [e^c(c−1)+1]/[c(e^c−1)] (1/2 at c = 0).
    package static func atomlessTiltWinRate(_ c: Double) -> Double {
        if abs(c) < 1e-8 { return 0.5 + c / 12 }
        return (exp(c) * (c - 1) + 1) / (c * expm1(c))
    }

    /// KL(π_λ‖π) of the atomless tilt: c·w(c) − log((e^c − 1)/c).
    package static func atomlessTiltKL(_ c: Double) -> Double {
        if abs(c) < 1e-8 { return 0 }
        return c * atomlessTiltWinRate(c) - log(expm1(c) / c)
    }

    /// g⁺_N(p) = N p^{N−1}/(1 − p^N): weight on correct samples.
    package static func gPlus(p: Double, n: Int) -> Double {
        let N = Double(n)
        return N * pow(p, N - 1) / (1 - pow(p, N))
    }
    /// g⁻_N(p) = N p/(1 − p): weight on incorrect samples.
    package static func gMinus(p: Double, n: Int) -> Double { Double(n) * p / (1 - p) }
    /// ḡ⁺_N(p) = N p^{N−1}(1 − p)/(1 − p^N): BoN-RLB(P)'s weight on correct BoN picks.
    package static func gBarPlus(p: Double, n: Int) -> Double {
        let N = Double(n)
        return N * pow(p, N - 1) * (1 - p) / (1 - pow(p, N))
    }
    /// c*_N(p) = N p^{N−1}: ∇pass@N = c*·∇(1 − p).
    package static func cTrue(p: Double, n: Int) -> Double { Double(n) * pow(p, Double(n) - 1) }
}
