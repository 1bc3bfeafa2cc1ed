// Verifiers: the score r(x, y) Best-of-N selects by. Never merged with the environment reward R (Task.swift).
//   oracle  r = R.
//   noisy   R observed through a binary channel with false-positive rate α (R = 0 read as 1) and false-negative rate β
//           (R = 1 read as 0), then made continuous: r = 0.5 + 0.5u for an observed 1, r = 0.5u for an observed 0,
//           u ~ U[0, 1). Deterministic per (seed, item id, response) (FNV hash of the text → RNG stream), so the same
//           response always gets the same score. With `continuous: false`, r ∈ {0, 1} (ties happen).
//   learned a scalar-head transformer scorer (LearnedVerifier.swift).

import BonfireMath

package protocol Verifier {
    /// "oracle", "noisy(fp=0.1,fn=0.2)", "learned:path".
    var name: String { get }
    /// One score per response; larger is better.
    func scores(item: TaskItem, responses: [String]) -> [Double]
}

package struct OracleVerifier: Verifier, Sendable {
    package let task: any VerifiableTask
    package init(task: any VerifiableTask) { self.task = task }
    package var name: String { "oracle" }
    package func scores(item: TaskItem, responses: [String]) -> [Double] {
        responses.map { task.reward(item: item, response: $0).reward }
    }
}

package struct NoisyVerifier: Verifier, Sendable {
    package let task: any VerifiableTask
    package let falsePositiveRate: Double
    package let falseNegativeRate: Double
    package let continuous: Bool
    package let seed: UInt64

    package init(task: any VerifiableTask, falsePositiveRate: Double = 0.1, falseNegativeRate: Double = 0.1,
                 continuous: Bool = true, seed: UInt64 = 0) {
        precondition((0...1).contains(falsePositiveRate) && (0...1).contains(falseNegativeRate),
                     "NoisyVerifier: rates must be in [0, 1], got fp=\(falsePositiveRate) fn=\(falseNegativeRate)")
        self.task = task
        self.falsePositiveRate = falsePositiveRate
        self.falseNegativeRate = falseNegativeRate
        self.continuous = continuous
        self.seed = seed
    }

    package var name: String { "noisy(fp=\(falsePositiveRate),fn=\(falseNegativeRate))" }

    package func scores(item: TaskItem, responses: [String]) -> [Double] {
        responses.map { response in
            let R = task.reward(item: item, response: response).reward
            var rng = RNG(seed: seed, stream: 0x6E6F_6973, ContentHash.fnv1a64(item.id + "|" + response))
            let flip = rng.uniform()
            let observed: Bool = R >= 0.5 ? flip >= falseNegativeRate : flip < falsePositiveRate
            let u = rng.uniform()
            if !continuous { return observed ? 1 : 0 }
            return observed ? 0.5 + 0.5 * u : 0.5 * u
        }
    }
}
