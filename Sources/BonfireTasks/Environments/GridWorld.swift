// GridWorld with a latent goal that changes between sessions inside one episode (the DynaMITE-RL setting,
// Liang et al. 2024, arXiv 2402.15957: the agent must infer the current latent from rewards).
//
//   Grid size×size (default 5×5), the agent starts in the centre. Actions: 0 stay, 1 up, 2 down, 3 left, 4 right
//   (moving into a wall leaves the agent in place). An episode is `sessions` sessions of `sessionLength` steps.
//   At the start of each session the goal g is drawn uniformly from the 4 corners (independently of the past,
//   so it changes with probability 3/4); the agent keeps its position across sessions. Reward r_t = 1 if the agent
//   stands on g after step t, else 0. The episode terminates (done) after sessions·sessionLength steps: the
//   horizon is part of the task and visible in the observation.
//
// The goal is never observed. The observation carries the reward history in summary form, the Bayes-sufficient
// statistic of this POMDP, so that a memoryless MLP can act Bayes-optimally:
//   [ one-hot position (size²) | last reward | step-in-session / sessionLength | session / sessions |
//     corner status ×4: −1 visited this session without reward, +1 rewarded this session, 0 unknown ]
// (size² + 7 floats; 32 for 5×5.) The posterior over g is uniform over the "unknown" corners unless a corner is +1.
//
// Reference returns (exact, by dynamic programming over (steps left, position, corner statuses)):
// `referenceReturns()`; for the defaults (5×5, 3 sessions × 12 steps) the Bayes-optimal expected return is
// 15.75 and the uniform-random policy's is 1.2000 (EnvironmentTests recompute both and check them by simulation).

import BonfireMath

package struct GridWorld: Environment {
    package struct Config: Codable, Sendable, Equatable {
        /// Side of the square grid. Default 5.
        package var size = 5
        /// Sessions per episode; the goal is redrawn at each. Default 3.
        package var sessions = 3
        /// Steps per session. Default 12.
        package var sessionLength = 12
        package init(size: Int = 5, sessions: Int = 3, sessionLength: Int = 12) {
            self.size = size; self.sessions = sessions; self.sessionLength = sessionLength
        }
    }

    package let config: Config
    package var name: String { "gridworld" }
    package var actionCount: Int { 5 }
    package var observationSize: Int { config.size * config.size + 7 }

    /// Agent position as row·size + column.
    package private(set) var position = 0
    /// Index of the current goal corner in `corners`.
    package private(set) var goal = 0
    package private(set) var session = 0
    package private(set) var stepInSession = 0
    private var status: [Float] = [0, 0, 0, 0]
    private var lastReward: Float = 0
    private var rng = RNG(seed: 0)
    private var started = false
    private var finished = false

    package init(config: Config = Config()) {
        precondition(config.size >= 2 && config.sessions >= 1 && config.sessionLength >= 1,
                     "GridWorld: need size ≥ 2, sessions ≥ 1, sessionLength ≥ 1, got \(config)")
        self.config = config
    }

    /// Cells of the 4 corners: top-left, top-right, bottom-left, bottom-right.
    package var corners: [Int] {
        let s = config.size
        return [0, s - 1, (s - 1) * s, s * s - 1]
    }

    package var start: Int { (config.size / 2) * config.size + config.size / 2 }

    package mutating func reset(seed: UInt64) -> Observation {
        rng = RNG(seed: seed, stream: 0x6772_6964)
        position = start
        session = 0; stepInSession = 0
        goal = rng.int(4)
        status = [0, 0, 0, 0]
        lastReward = 0
        started = true; finished = false
        return observe()
    }

    package mutating func step(_ action: Int) throws(EnvironmentError) -> StepResult {
        try checkStep(action: action, started: started, finished: finished)
        position = GridWorld.move(position, action, size: config.size)
        let reward: Float = position == corners[goal] ? 1 : 0
        if let c = corners.firstIndex(of: position) { status[c] = reward > 0 ? 1 : -1 }
        lastReward = reward
        stepInSession += 1
        var info = ["goal": String(goal), "session": String(session)]
        if stepInSession == config.sessionLength {
            stepInSession = 0
            session += 1
            if session == config.sessions {
                finished = true
            } else {
                goal = rng.int(4)
                status = [0, 0, 0, 0]
            }
        }
        info["nextGoal"] = String(goal)
        return StepResult(observation: observe(), reward: reward, done: finished, info: info)
    }

    private func observe() -> Observation {
        let n = config.size * config.size
        var o = [Float](repeating: 0, count: observationSize)
        o[position] = 1
        o[n] = lastReward
        o[n + 1] = Float(stepInSession) / Float(config.sessionLength)
        o[n + 2] = Float(session) / Float(config.sessions)
        for c in 0..<4 { o[n + 3 + c] = status[c] }
        return .vector(o)
    }

    package static func move(_ p: Int, _ a: Int, size s: Int) -> Int {
        let r = p / s, c = p % s
        switch a {
        case 1: return r > 0 ? p - s : p
        case 2: return r < s - 1 ? p + s : p
        case 3: return c > 0 ? p - 1 : p
        case 4: return c < s - 1 ? p + 1 : p
        default: return p
        }
    }

    // MARK: reference returns by dynamic programming

    /// Exact expected undiscounted returns of the Bayes-optimal policy and of the uniform random policy.
    /// Belief state: (steps left in session h, position, corner statuses ∈ {−1, 0, +1}⁴). Sessions are independent
    /// given the position at the boundary, so W_s(pos) (value with s sessions left) chains them.
    package func referenceReturns() -> ReferenceReturns {
        ReferenceReturns(optimal: dpValue(optimal: true), random: dpValue(optimal: false))
    }

    private func dpValue(optimal: Bool) -> Double {
        let s = config.size, cells = s * s, L = config.sessionLength
        let cs = corners
        // status code: base-3 digits (0 unknown, 1 eliminated, 2 confirmed) over 4 corners → 81 codes.
        func digit(_ code: Int, _ c: Int) -> Int { (code / [1, 3, 9, 27][c]) % 3 }
        func setDigit(_ code: Int, _ c: Int, _ d: Int) -> Int { code + (d - digit(code, c)) * [1, 3, 9, 27][c] }
        var next = [Double](repeating: 0, count: cells)   // W_{s-1}(pos) at the session boundary
        for _ in 0..<config.sessions {
            // V[h][pos][code], h = steps left in this session.
            var vPrev = [Double](repeating: 0, count: cells * 81)   // h = 0
            for p in 0..<cells { for code in 0..<81 { vPrev[p * 81 + code] = next[p] } }
            for _ in 1...L {
                var vCur = [Double](repeating: 0, count: cells * 81)
                for p in 0..<cells {
                    for code in 0..<81 {
                        var best = -Double.infinity, sum = 0.0
                        for a in 0..<5 {
                            let q = GridWorld.move(p, a, size: s)
                            var value = 0.0
                            if let c = cs.firstIndex(of: q) {
                                let confirmed = (0..<4).first { digit(code, $0) == 2 }
                                let unknown = (0..<4).filter { digit(code, $0) == 0 }
                                if let g = confirmed {
                                    value = g == c ? 1 + vPrev[q * 81 + code] : vPrev[q * 81 + code]
                                } else if digit(code, c) == 1 {
                                    value = vPrev[q * 81 + code]
                                } else {
                                    let pg = 1 / Double(unknown.count)
                                    value = pg * (1 + vPrev[q * 81 + setDigit(code, c, 2)])
                                        + (1 - pg) * vPrev[q * 81 + setDigit(code, c, 1)]
                                }
                            } else {
                                value = vPrev[q * 81 + code]
                            }
                            best = max(best, value); sum += value
                        }
                        vCur[p * 81 + code] = optimal ? best : sum / 5
                    }
                }
                vPrev = vCur
            }
            next = (0..<cells).map { vPrev[$0 * 81] }
        }
        return next[start]
    }
}
