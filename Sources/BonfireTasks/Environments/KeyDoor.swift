// KeyDoor: a sparse-reward chain that needs exploration.
//
//   Cells 0..<length in a row. The key lies in cell 0, the door in cell length−1, the agent starts in `start`.
//   Actions: 0 left, 1 right (walls at both ends keep the agent in place). Entering cell 0 picks up the key.
//   Entering the door cell WITH the key gives reward 1 and terminates (done); without the key nothing happens.
//   Every other step gives reward 0. After `maxSteps` steps the episode is truncated (a time limit, not part of
//   the state: learners bootstrap).
//   Observation: [ one-hot cell (length) | has key ] → length + 1 floats.
//
// The only reward needs `start` steps away from the door, then length−1 steps back past the start: a policy that
// greedily heads for the door never sees a reward. Reference returns (`referenceReturns()`): the optimal
// undiscounted return is 1 (reached in start + length − 1 steps ≤ maxSteps); the uniform random policy's success
// probability within maxSteps is computed exactly by dynamic programming over (steps left, cell, key). For the
// defaults (length 10, start 3, maxSteps 40) it is 0.0981 (EnvironmentTests recompute it and check by simulation).

import BonfireMath

package struct KeyDoor: Environment {
    package struct Config: Codable, Sendable, Equatable {
        /// Number of cells. Default 10.
        package var length = 10
        /// Start cell (key at 0, door at length−1). Default 3.
        package var start = 3
        /// Time limit; the episode is truncated after this many steps. Default 40.
        package var maxSteps = 40
        package init(length: Int = 10, start: Int = 3, maxSteps: Int = 40) {
            self.length = length; self.start = start; self.maxSteps = maxSteps
        }
    }

    package let config: Config
    package var name: String { "keydoor" }
    package var actionCount: Int { 2 }
    package var observationSize: Int { config.length + 1 }

    package private(set) var position = 0
    package private(set) var hasKey = false
    package private(set) var steps = 0
    private var started = false
    private var finished = false

    package init(config: Config = Config()) {
        precondition(config.length >= 3 && config.start > 0 && config.start < config.length - 1 && config.maxSteps >= 1,
                     "KeyDoor: need length ≥ 3 and 0 < start < length−1, maxSteps ≥ 1, got \(config)")
        self.config = config
    }

    /// Fewest steps to the reward: to the key, then to the door.
    package var shortestSolution: Int { config.start + config.length - 1 }

    /// The chain is deterministic; the seed is accepted for the common interface (and replays trivially).
    package mutating func reset(seed: UInt64) -> Observation {
        position = config.start; hasKey = false; steps = 0
        started = true; finished = false
        return observe()
    }

    package mutating func step(_ action: Int) throws(EnvironmentError) -> StepResult {
        try checkStep(action: action, started: started, finished: finished)
        position = action == 0 ? max(0, position - 1) : min(config.length - 1, position + 1)
        if position == 0 { hasKey = true }
        steps += 1
        let success = hasKey && position == config.length - 1
        let truncated = !success && steps >= config.maxSteps
        finished = success || truncated
        return StepResult(observation: observe(), reward: success ? 1 : 0, done: success, truncated: truncated,
                          info: ["hasKey": hasKey ? "1" : "0"])
    }

    private func observe() -> Observation {
        var o = [Float](repeating: 0, count: observationSize)
        o[position] = 1
        o[config.length] = hasKey ? 1 : 0
        return .vector(o)
    }

    /// Optimal return 1 (if the time limit allows the shortest solution); random = P(success within maxSteps)
    /// under uniform actions, exact.
    package func referenceReturns() -> ReferenceReturns {
        let n = config.length
        // p[cell + n·key] = P(success within h steps left)
        var p = [Double](repeating: 0, count: 2 * n)
        for _ in 0..<config.maxSteps {
            var q = [Double](repeating: 0, count: 2 * n)
            for key in 0..<2 { for c in 0..<n {
                var s = 0.0
                for a in 0..<2 {
                    let d = a == 0 ? max(0, c - 1) : min(n - 1, c + 1)
                    let k = (key == 1 || d == 0) ? 1 : 0
                    s += (k == 1 && d == n - 1) ? 1 : p[d + n * k]
                }
                q[c + n * key] = s / 2
            } }
            p = q
        }
        return ReferenceReturns(optimal: shortestSolution <= config.maxSteps ? 1 : 0, random: p[config.start])
    }
}
