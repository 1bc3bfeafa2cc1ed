// Multi-step environments: the second kind of actor work (the first is BoN groups).
//
// An environment is a seeded, replayable finite-horizon process with discrete actions 0..<actionCount:
//   o₀ = reset(seed);  (o_{t+1}, r_t, done_t, truncated_t) = step(a_t)
// `done` (terminated) means the episode reached an absorbing end: the value of what follows is 0.
// `truncated` means the episode was cut by a time limit: the process would go on, so learners bootstrap with
// V(o_{t+1}) (Pardo et al. 2018, "Time limits in RL"). At most one of the two is set on a step.
// The same seed and the same actions give the same observations and rewards (tests check this).
// Invalid actions (outside 0..<actionCount) and stepping a finished (or never reset) episode throw
// `EnvironmentError`; they are never undefined behaviour.
//
// Observations are either a vector of `observationSize` floats (MLP policies) or a token sequence in the char
// tokenizer's ids (the transformer policy); `observationSize` is the vector length, or the maximum token count.

import BonfireMath
import BonfireModel

package enum Observation: Sendable, Equatable {
    case vector([Float])
    case tokens([Int])

    /// The vector payload; precondition-fails on token observations (a programmer error: wrong policy type).
    package var vector: [Float] {
        guard case .vector(let v) = self else { preconditionFailure("Observation: expected a vector observation, got tokens") }
        return v
    }

    /// The token payload; precondition-fails on vector observations.
    package var tokens: [Int] {
        guard case .tokens(let t) = self else { preconditionFailure("Observation: expected token observation, got a vector") }
        return t
    }
}

package struct StepResult: Sendable, Equatable {
    /// o_{t+1}: the observation after the action (for a finished episode: its final observation).
    package var observation: Observation
    /// r_t
    package var reward: Float
    /// Terminated: absorbing end, no bootstrap.
    package var done: Bool
    /// Cut by a time limit: bootstrap with V(observation).
    package var truncated: Bool
    /// Free-form diagnostics (e.g. "goal": "3", "hasKey": "1"). Never needed for learning.
    package var info: [String: String]

    package init(observation: Observation, reward: Float, done: Bool, truncated: Bool = false,
                 info: [String: String] = [:]) {
        self.observation = observation; self.reward = reward; self.done = done; self.truncated = truncated
        self.info = info
    }

    /// The episode is over (either way); call `reset` before stepping again.
    package var isLast: Bool { done || truncated }
}

package struct EnvironmentError: Error, CustomStringConvertible, Equatable {
    package enum Kind: Sendable, Equatable { case invalidAction, episodeOver, notReset }
    package var kind: Kind
    package var message: String
    package init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    package var description: String { message }
}

package protocol Environment: Sendable {
    /// Short stable name ("gridworld", "keydoor", "guess").
    var name: String { get }
    /// Actions are 0..<actionCount.
    var actionCount: Int { get }
    /// Vector length, or the maximum number of tokens of a token observation.
    var observationSize: Int { get }
    /// Starts a new episode; the whole episode is a function of `seed` and the actions taken.
    mutating func reset(seed: UInt64) -> Observation
    /// Applies `action`. Throws on an invalid action or after the episode ended.
    mutating func step(_ action: Int) throws(EnvironmentError) -> StepResult
    /// Expected returns of the optimal and of the uniform random policy (how learning is judged).
    func referenceReturns() -> ReferenceReturns
}

extension Environment {
    /// Shared validation for `step`: the episode is live and the action is in range.
    package func checkStep(action: Int, started: Bool, finished: Bool) throws(EnvironmentError) {
        if !started { throw EnvironmentError(.notReset, "\(name): step called before reset(seed:); call reset first") }
        if finished {
            throw EnvironmentError(.episodeOver, "\(name): step called after the episode ended; call reset(seed:) to start a new one")
        }
        guard action >= 0 && action < actionCount else {
            throw EnvironmentError(.invalidAction, "\(name): action \(action) is invalid; valid actions are 0..<\(actionCount)")
        }
    }
}

/// Names the command line and configs use.
package enum EnvironmentKind: String, Codable, Sendable, CaseIterable {
    case gridworld, keydoor, guess

    /// A fresh environment of this kind with its default config. Adding an environment: its file and one case here.
    package func make() -> any Environment {
        switch self {
        case .gridworld: GridWorld()
        case .keydoor: KeyDoor()
        case .guess: GuessNumber()
        }
    }

    /// Discount γ tuned for this environment (docs/results.md).
    package var defaultGamma: Double {
        switch self {
        case .gridworld: 0.9
        case .keydoor: 0.97
        case .guess: 1
        }
    }
}

/// Reference returns an environment documents so learning can be judged.
package struct ReferenceReturns: Sendable, Equatable, Codable {
    /// Expected undiscounted return of the optimal (Bayes-optimal for latent goals) policy.
    package var optimal: Double
    /// Expected undiscounted return of the uniform random policy.
    package var random: Double
    package init(optimal: Double, random: Double) { self.optimal = optimal; self.random = random }
}
