// Environments: replayable from a seed, invalid actions and stepping a finished episode throw, the documented
// reference returns equal exact dynamic programming and agree with Monte-Carlo simulation of the same policies.
import XCTest
import BonfireMath
import BonfireModel
import BonfireTasks

final class EnvironmentTests: XCTestCase {
    /// Rolls out uniform random actions; returns (observations, rewards) for replay checks.
    func rollout<E: Environment>(_ env: inout E, seed: UInt64, actionSeed: UInt64, actions: Int? = nil) throws -> ([Observation], [Float]) {
        var rng = RNG(seed: actionSeed)
        var obs = [env.reset(seed: seed)], rewards: [Float] = []
        while true {
            let r = try env.step(rng.int(actions ?? env.actionCount))
            obs.append(r.observation); rewards.append(r.reward)
            if r.isLast { break }
        }
        return (obs, rewards)
    }

    func checkReplayAndErrors<E: Environment>(_ make: () -> E) throws {
        var a = make(), b = make()
        let (oa, ra) = try rollout(&a, seed: 42, actionSeed: 1)
        let (ob, rb) = try rollout(&b, seed: 42, actionSeed: 1)
        XCTAssertEqual(oa, ob, "\(a.name): same seed and actions replay the same episode")
        XCTAssertEqual(ra, rb)
        XCTAssertThrowsError(try a.step(0), "\(a.name): stepping after the end") { e in
            XCTAssertEqual((e as? EnvironmentError)?.kind, .episodeOver)
        }
        var c = make()
        XCTAssertThrowsError(try c.step(0)) { XCTAssertEqual(($0 as? EnvironmentError)?.kind, .notReset) }
        _ = c.reset(seed: 1)
        for bad in [-1, c.actionCount] {
            XCTAssertThrowsError(try c.step(bad)) { XCTAssertEqual(($0 as? EnvironmentError)?.kind, .invalidAction) }
        }
        XCTAssertNoThrow(try c.step(c.actionCount - 1), "\(c.name): an invalid action leaves the episode usable")
    }

    func testAllEnvironmentsReplayAndRejectInvalidUse() throws {
        try checkReplayAndErrors { GridWorld() }
        try checkReplayAndErrors { KeyDoor() }
        try checkReplayAndErrors { GuessNumber() }
    }

    // MARK: GridWorld

    func testGridWorldGoalChangesBetweenSessionsAndObservationLayout() throws {
        var env = GridWorld()
        XCTAssertEqual(env.observationSize, 32)
        var goalsPerSession = Set<[Int]>()
        for seed in 0..<50 as Range<UInt64> {
            let o = env.reset(seed: seed).vector
            XCTAssertEqual(o.count, 32); XCTAssertEqual(o[12], 1, "starts in the centre")
            var goals: [Int] = [env.goal]
            var t = 0, last: StepResult?
            repeat {
                last = try env.step(0)
                t += 1
                if t % 12 == 0 && !last!.done { goals.append(env.goal) }
            } while !last!.done
            XCTAssertEqual(t, 36); XCTAssertFalse(last!.truncated)
            goalsPerSession.insert(goals)
        }
        XCTAssertGreaterThan(goalsPerSession.filter { Set($0).count > 1 }.count, 20, "goal changes between sessions")
        // Walking to a corner: reward iff it is the goal, corner status updates, resets at the next session.
        _ = env.reset(seed: 3)
        let goal = env.goal
        var r = StepResult(observation: .vector([]), reward: 0, done: false)
        for _ in 0..<2 { r = try env.step(1) }   // up twice
        for _ in 0..<2 { r = try env.step(3) }   // left twice → top-left corner (cell 0)
        XCTAssertEqual(env.position, 0)
        let o = r.observation.vector
        XCTAssertEqual(r.reward, goal == 0 ? 1 : 0)
        XCTAssertEqual(o[25], r.reward, "last reward")
        XCTAssertEqual(o[28], goal == 0 ? 1 : -1, "corner 0 status")
        XCTAssertEqual(o[26], 4.0 / 12.0, accuracy: 1e-6)
    }

    func testGridWorldReferenceReturnsMatchSimulation() throws {
        let env = GridWorld()
        let ref = env.referenceReturns()
        print("gridworld reference returns: optimal \(ref.optimal), random \(ref.random)")
        XCTAssertEqual(ref.optimal, 15.75, accuracy: 1e-6, "documented in GridWorld.swift and docs/results.md")
        XCTAssertEqual(ref.random, 1.200003, accuracy: 1e-6)
        // Random policy by simulation.
        var sim = GridWorld(), total = 0.0
        let episodes = 4000
        for e in 0..<episodes {
            let (_, rewards) = try rollout(&sim, seed: UInt64(e), actionSeed: UInt64(e) + 99)
            total += Double(rewards.reduce(0, +))
        }
        XCTAssertEqual(total / Double(episodes), ref.random, accuracy: 0.08)
        // A hand-written belief policy (visit corners nearest first, stay on the goal) is a lower bound ≤ optimal.
        var hand = 0.0
        for e in 0..<1000 {
            var g = GridWorld()
            var o = g.reset(seed: UInt64(e)).vector
            var done = false
            while !done {
                let status = Array(o[28..<32]), pos = g.position
                func dist(_ c: Int) -> Int { abs(c / 5 - pos / 5) + abs(c % 5 - pos % 5) }
                var target: Int? = nil
                if let k = status.firstIndex(of: 1) {
                    target = g.corners[k]
                } else {
                    for k in 0..<4 where status[k] == 0 {
                        if target == nil || dist(g.corners[k]) < dist(target!) { target = g.corners[k] }
                    }
                }
                var a = 0
                if let t = target, t != pos {
                    a = t / 5 < pos / 5 ? 1 : t / 5 > pos / 5 ? 2 : t % 5 < pos % 5 ? 3 : 4
                }
                let r = try g.step(a)
                hand += Double(r.reward); o = r.observation.vector; done = r.done
            }
        }
        hand /= 1000
        print("gridworld hand-written belief policy: \(hand)")
        XCTAssertLessThanOrEqual(hand, ref.optimal + 0.3)
        XCTAssertGreaterThan(hand, 0.85 * ref.optimal)
    }

    // MARK: KeyDoor

    func testKeyDoorNeedsTheKeyAndTruncatesAtTheTimeLimit() throws {
        var env = KeyDoor()
        _ = env.reset(seed: 0)
        // Straight to the door without the key: no reward, no termination.
        var r = try env.step(1)
        for _ in 0..<5 { r = try env.step(1) }
        XCTAssertEqual(env.position, 9); XCTAssertEqual(r.reward, 0); XCTAssertFalse(r.done)
        // Optimal: 3 lefts then 9 rights = 12 steps, reward 1, done.
        _ = env.reset(seed: 0)
        var total: Float = 0, steps = 0
        for a in [0, 0, 0] + [Int](repeating: 1, count: 9) { r = try env.step(a); total += r.reward; steps += 1 }
        XCTAssertEqual(total, 1); XCTAssertTrue(r.done); XCTAssertFalse(r.truncated)
        XCTAssertEqual(steps, env.shortestSolution)
        // Always left: truncated after maxSteps, never done.
        _ = env.reset(seed: 0)
        for _ in 0..<39 { XCTAssertFalse(try env.step(0).isLast) }
        r = try env.step(0)
        XCTAssertTrue(r.truncated); XCTAssertFalse(r.done)
    }

    func testKeyDoorReferenceReturnsMatchSimulation() throws {
        let ref = KeyDoor().referenceReturns()
        print("keydoor reference returns: optimal \(ref.optimal), random \(ref.random)")
        XCTAssertEqual(ref.optimal, 1)
        XCTAssertEqual(ref.random, 0.098128, accuracy: 1e-6, "documented in KeyDoor.swift and docs/results.md")
        var env = KeyDoor(), wins = 0.0
        for e in 0..<20000 { wins += Double(try rollout(&env, seed: 0, actionSeed: UInt64(e)).1.reduce(0, +)) }
        XCTAssertEqual(wins / 20000, ref.random, accuracy: 0.006)
    }

    // MARK: GuessNumber

    func testGuessNumberTranscriptAndBisectionIsOptimal() throws {
        var env = GuessNumber()
        let o = env.reset(seed: 7).tokens
        XCTAssertEqual(Tokenizer.decode(o), "guess 0-9:")
        XCTAssertEqual(o.first, Tokenizer.bos)
        // Bisection with the answers returned by the environment.
        var total = 0.0, episodes = 0, turnsSum = 0
        for seed in 0..<200 as Range<UInt64> {
            _ = env.reset(seed: seed)
            var lo = 0, hi = 9, done = false
            while !done {
                let g = (lo + hi + 1) / 2
                let r = try env.step(GuessNumber.digitBase + g)
                total += Double(r.reward); done = r.done
                switch r.info["answer"] { case "<": hi = g - 1; case ">": lo = g + 1; default: break }
            }
            XCTAssertEqual(Tokenizer.decode(env.transcript).last, "=")
            episodes += 1; turnsSum += env.turns
        }
        let ref = env.referenceReturns()
        print("guess reference returns: optimal \(ref.optimal), random \(ref.random); bisection mean \(total / 200)")
        XCTAssertEqual(ref.optimal, 0.81, accuracy: 1e-6, "E[turns] = 2.9 for n = 10")
        // Random valid digits: 0.01 expected reward per turn alive, Σ_{t<6} 0.9ᵗ = (1 − 0.9⁶)/0.1 = 4.68559 turns.
        XCTAssertEqual(ref.random, 0.0468559, accuracy: 1e-6)
        XCTAssertEqual(total / 200, ref.optimal, accuracy: 0.06)
        // A malformed token is a valid action with a penalty and a "?" answer.
        _ = env.reset(seed: 1)
        let r = try env.step(try Tokenizer.encode("x")[0])
        XCTAssertEqual(r.reward, -0.1, accuracy: 1e-7); XCTAssertEqual(r.info["answer"], "?"); XCTAssertFalse(r.done)
    }
}
