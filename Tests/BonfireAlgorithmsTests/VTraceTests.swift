// V-trace: equals n-step returns on-policy with ρ̄ = c̄ = ∞; matches the NumPy reference (sum form) off-policy;
// termination vs truncation; a chunk holding several episodes equals the episodes computed one by one.
import XCTest
import Foundation
import BonfireMath
import BonfireAlgorithms
import BonfireTestSupport

final class VTraceTests: XCTestCase {
    let inf = VTrace.Parameters(gamma: 0.9, rhoBar: .infinity, cBar: .infinity, lambda: 1)

    /// n-step return G_t = Σ_{k=t}^{e} γ^{k−t} r_k + γ^{e−t+1} B_e, B_e = 0 at termination, else nextValues[e].
    func nStepReturns(rewards: [Double], nextValues: [Double], dones: [Bool], truncations: [Bool], gamma: Double) -> [Double] {
        let T = rewards.count
        return (0..<T).map { t in
            var g = 0.0, k = t, disc = 1.0
            while true {
                g += disc * rewards[k]
                disc *= gamma
                if dones[k] { break }
                if truncations[k] || k == T - 1 { g += disc * nextValues[k]; break }
                k += 1
            }
            return g
        }
    }

    func testOnPolicyWithInfiniteClipsEqualsNStepReturns() {
        var rng = RNG(seed: 5)
        let T = 15
        let lp = (0..<T).map { _ in -rng.uniform() * 2 }
        let rewards = (0..<T).map { _ in rng.normal() }
        let values = (0..<T).map { _ in rng.normal() }
        var dones = [Bool](repeating: false, count: T), truncs = dones
        dones[4] = true; truncs[9] = true
        var next = VTrace.shifted(values: values, bootstrap: 0.7)
        next[9] = -1.3   // V(final observation) of the truncated episode
        let out = VTrace.compute(targetLogProbs: lp, behaviourLogProbs: lp, rewards: rewards, values: values,
                                 nextValues: next, dones: dones, truncations: truncs, parameters: inf)
        let g = nStepReturns(rewards: rewards, nextValues: next, dones: dones, truncations: truncs, gamma: 0.9)
        expectClose(out.vs, g, rtol: 1e-12, atol: 1e-12, "vs = n-step returns")
        // On-policy, A_t = r_t + γ G_{t+1} − V(x_t) inside an episode.
        XCTAssertEqual(out.pgAdvantages[0], rewards[0] + 0.9 * g[1] - values[0], accuracy: 1e-12)
        XCTAssertEqual(out.pgAdvantages[4], rewards[4] - values[4], accuracy: 1e-12, "no bootstrap at termination")
        XCTAssertEqual(out.pgAdvantages[9], rewards[9] + 0.9 * -1.3 - values[9], accuracy: 1e-12, "bootstrap at truncation")
        XCTAssertEqual(out.rhos, [Double](repeating: 1, count: T))
    }

    func testMatchesNumPyReferenceOffPolicy() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "vtrace_offpolicy", withExtension: "json",
                                                  subdirectory: "Fixtures"), "run Scripts/vtrace_reference.py")
        struct Case: Decodable {
            var gamma, rhoBar, cBar, lambda: Double
            var targetLogProbs, behaviourLogProbs, rewards, values, nextValues, vs, pgAdvantages: [Double]
            var dones, truncations: [Bool]
        }
        struct File: Decodable { var cases: [Case] }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: url))
        XCTAssertGreaterThanOrEqual(file.cases.count, 4)
        for (i, c) in file.cases.enumerated() {
            let out = VTrace.compute(targetLogProbs: c.targetLogProbs, behaviourLogProbs: c.behaviourLogProbs,
                                     rewards: c.rewards, values: c.values, nextValues: c.nextValues, dones: c.dones,
                                     truncations: c.truncations,
                                     parameters: .init(gamma: c.gamma, rhoBar: c.rhoBar, cBar: c.cBar, lambda: c.lambda))
            let maxDiff = zip(out.vs + out.pgAdvantages, c.vs + c.pgAdvantages).map { abs($0 - $1) }.max() ?? 0
            print("vtrace case \(i): T \(c.rewards.count) maxdiff \(maxDiff)")
            expectClose(out.vs, c.vs, rtol: 1e-10, atol: 1e-10, "case \(i) vs")
            expectClose(out.pgAdvantages, c.pgAdvantages, rtol: 1e-10, atol: 1e-10, "case \(i) advantages")
            // Off-policy really matters here: the on-policy targets differ.
            let onPolicy = VTrace.compute(targetLogProbs: c.behaviourLogProbs, behaviourLogProbs: c.behaviourLogProbs,
                                          rewards: c.rewards, values: c.values, nextValues: c.nextValues, dones: c.dones,
                                          truncations: c.truncations, parameters: .init(gamma: c.gamma))
            XCTAssertGreaterThan(zip(onPolicy.vs, c.vs).map { abs($0 - $1) }.max()!, 1e-3)
        }
    }

    func testTerminationDoesNotBootstrapButTruncationDoes() {
        let p = VTrace.Parameters(gamma: 0.5)
        let lp: [Double] = [-0.5, -0.5]
        let values: [Double] = [1, 2], next: [Double] = [2, 10]
        let term = VTrace.compute(targetLogProbs: lp, behaviourLogProbs: lp, rewards: [1, 1], values: values,
                                  nextValues: next, dones: [false, true], truncations: [false, false], parameters: p)
        let trunc = VTrace.compute(targetLogProbs: lp, behaviourLogProbs: lp, rewards: [1, 1], values: values,
                                   nextValues: next, dones: [false, false], truncations: [false, true], parameters: p)
        XCTAssertEqual(term.vs, [1 + 0.5 * 1, 1])
        XCTAssertEqual(trunc.vs, [1 + 0.5 * 6, 1 + 0.5 * 10])
        XCTAssertEqual(term.pgAdvantages[1], 1 - 2)
        XCTAssertEqual(trunc.pgAdvantages[1], 1 + 5 - 2)
    }

    func testChunkWithSeveralEpisodesEqualsEpisodesComputedSeparately() {
        var rng = RNG(seed: 9)
        let T = 11
        let mu = (0..<T).map { _ in -rng.uniform() * 2 }, pi = (0..<T).map { _ in -rng.uniform() * 2 }
        let r = (0..<T).map { _ in rng.normal() }, v = (0..<T).map { _ in rng.normal() }
        var dones = [Bool](repeating: false, count: T)
        dones[2] = true; dones[6] = true
        let next = VTrace.shifted(values: v, bootstrap: 0.4)
        let p = VTrace.Parameters(gamma: 0.95, rhoBar: 1, cBar: 0.9, lambda: 1)
        let whole = VTrace.compute(targetLogProbs: pi, behaviourLogProbs: mu, rewards: r, values: v, nextValues: next,
                                   dones: dones, truncations: [Bool](repeating: false, count: T), parameters: p)
        var vs: [Double] = [], adv: [Double] = []
        for range in [0..<3, 3..<7, 7..<11] {
            let o = VTrace.compute(targetLogProbs: Array(pi[range]), behaviourLogProbs: Array(mu[range]),
                                   rewards: Array(r[range]), values: Array(v[range]), nextValues: Array(next[range]),
                                   dones: Array(dones[range]), truncations: [Bool](repeating: false, count: range.count),
                                   parameters: p)
            vs += o.vs; adv += o.pgAdvantages
        }
        expectClose(whole.vs, vs, rtol: 1e-12, atol: 1e-12, "vs")
        expectClose(whole.pgAdvantages, adv, rtol: 1e-12, atol: 1e-12, "advantages")
        // Clipping is active: some ρ_t hit ρ̄.
        XCTAssertTrue(whole.rhos.contains(1))
    }
}
