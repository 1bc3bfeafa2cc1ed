// GuessNumber: a multi-turn text environment for the transformer policy.
//
//   A hidden number h is drawn uniformly from 0..<n (n ≤ 10, default 10) at reset. The transcript starts as
//   BOS + "guess 0-9:" (for n = 10). Each turn the policy writes ONE token (the action is a token id of the char
//   tokenizer, 0..<64); a digit d < n is a guess, the environment answers "<" (h < d), ">" (h > d) or "=" (h = d),
//   and anything else is a malformed guess answered with "?". The transcript grows by the two tokens
//   (guess, answer) per turn, so the observation is the whole conversation as token ids.
//   Reward: +1 for the correct guess (episode done); −0.1 for every other turn. After `maxTurns` turns without the
//   answer the game is over (done: a rule of the game, not a time limit).
//   Ids outside 0..<64 throw (invalid action); malformed tokens are valid actions with a penalty.
//
// Reference returns (`referenceReturns()`), exact:
//   optimal: interval dynamic programming (the best guess in an interval of k candidates with m turns left)
//     V(k, m) = max_i [ 1/k + (i/k)(−0.1 + V(i, m−1)) + ((k−1−i)/k)(−0.1 + V(k−1−i, m−1)) ],  V(0, ·) = V(·, 0) = 0;
//     for n = 10, maxTurns 6 this is bisection: E[turns] = 2.9, return 1 − 0.1·1.9 = 0.81.
//   random: uniform random valid digits, memoryless: Σ_{t<M} (1−1/n)^t [1/n − 0.1(1 − 1/n)].

import BonfireMath
import BonfireModel

package struct GuessNumber: Environment {
    package struct Config: Codable, Sendable, Equatable {
        /// Numbers are 0..<n, 2 ≤ n ≤ 10 (one digit each). Default 10.
        package var n = 10
        /// Turns before the game is lost. Default 6.
        package var maxTurns = 6
        /// Reward of a wrong or malformed turn. Default −0.1.
        package var turnPenalty: Float = -0.1
        package init(n: Int = 10, maxTurns: Int = 6, turnPenalty: Float = -0.1) {
            self.n = n; self.maxTurns = maxTurns; self.turnPenalty = turnPenalty
        }
    }

    package let config: Config
    package var name: String { "guess" }
    package var actionCount: Int { Tokenizer.vocabSize }
    package var observationSize: Int { prompt.count + 2 * config.maxTurns }

    package private(set) var hidden = 0
    package private(set) var transcript: [Int] = []
    package private(set) var turns = 0
    private var started = false
    private var finished = false
    /// BOS + "guess 0-<n−1>:"
    package let prompt: [Int]

    package init(config: Config = Config()) {
        precondition(config.n >= 2 && config.n <= 10 && config.maxTurns >= 1,
                     "GuessNumber: need 2 ≤ n ≤ 10 and maxTurns ≥ 1, got \(config)")
        self.config = config
        // Only vocabulary characters: cannot fail.
        prompt = [Tokenizer.bos] + (try! Tokenizer.encode("guess 0-\(config.n - 1):"))
    }

    package static let digitBase = 3   // token id of "0"
    package static func answerToken(_ c: Character) -> Int { try! Tokenizer.encode(String(c))[0] }

    package mutating func reset(seed: UInt64) -> Observation {
        var rng = RNG(seed: seed, stream: 0x6775_6573)
        hidden = rng.int(config.n)
        transcript = prompt
        turns = 0
        started = true; finished = false
        return .tokens(transcript)
    }

    package mutating func step(_ action: Int) throws(EnvironmentError) -> StepResult {
        try checkStep(action: action, started: started, finished: finished)
        turns += 1
        let d = action - GuessNumber.digitBase
        let answer: Character
        if d >= 0 && d < config.n {
            answer = hidden < d ? "<" : hidden > d ? ">" : "="
        } else {
            answer = "?"
        }
        transcript += [action, GuessNumber.answerToken(answer)]
        let correct = answer == "="
        finished = correct || turns >= config.maxTurns
        return StepResult(observation: .tokens(transcript), reward: correct ? 1 : config.turnPenalty, done: finished,
                          info: ["answer": String(answer)])
    }

    package func referenceReturns() -> ReferenceReturns {
        let pen = Double(config.turnPenalty), M = config.maxTurns, n = config.n
        var v = [[Double]](repeating: [Double](repeating: 0, count: M + 1), count: n + 1)
        for m in 1...M { for k in 1...n {
            var best = -Double.infinity
            for i in 0..<k {
                let lo = Double(i) / Double(k) * (pen + v[i][m - 1])
                let hi = Double(k - 1 - i) / Double(k) * (pen + v[k - 1 - i][m - 1])
                best = max(best, 1 / Double(k) + lo + hi)
            }
            v[k][m] = best
        } }
        let p = 1 / Double(n)
        var random = 0.0, alive = 1.0
        for _ in 0..<M { random += alive * (p + (1 - p) * pen); alive *= 1 - p }
        return ReferenceReturns(optimal: v[n][M], random: random)
    }
}
