// Actor-critic learner: gradients of the V-trace surrogate loss match finite differences, chunk validation rejects
// malformed chunks with a message, an update raises the probability of a positive-advantage action and advances the
// policy version, (the runs through the runtime are in BonfireClusterTests/RuntimeTests.swift).
import XCTest
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireAlgorithms
import BonfireTestSupport

final class ActorCriticTests: XCTestCase {
    func makeChunks(D: Int, A: Int, rng: inout RNG) -> [EpisodeChunk] {
        var a = EpisodeChunk(env: "test", observationSize: D)
        for t in 0..<6 {
            a.append(observation: (0..<D).map { _ in Float(rng.normal()) }, action: rng.int(A), reward: Float(rng.normal()),
                     done: t == 2, truncated: false, behaviourLogProb: Float(-rng.uniform() * 2), behaviourVersion: 0)
        }
        a.bootstrapObservation = (0..<D).map { _ in Float(rng.normal()) }
        var b = EpisodeChunk(env: "test", observationSize: D)
        for t in 0..<4 {
            b.append(observation: (0..<D).map { _ in Float(rng.normal()) }, action: rng.int(A), reward: Float(rng.normal()),
                     done: false, truncated: t == 3, behaviourLogProb: Float(-rng.uniform() * 2), behaviourVersion: 0)
        }
        b.bootstrapObservation = (0..<D).map { _ in Float(rng.normal()) }
        var c = EpisodeChunk(env: "test", observationSize: D)
        for t in 0..<3 {
            c.append(observation: (0..<D).map { _ in Float(rng.normal()) }, action: rng.int(A), reward: 1,
                     done: t == 2, truncated: false, behaviourLogProb: -1, behaviourVersion: 0)
        }
        return [a, b, c]
    }

    func testGradientsMatchFiniteDifferencesOfSurrogateLoss() throws {
        var rng = RNG(seed: 4)
        let D = 4, A = 3
        let net = MLP(config: MLPConfig(inputSize: D, actionCount: A, hiddenSizes: [8]), seed: 2)
        for i in net.params.indices { net.params[i] = Float(rng.normal() * 0.4) }
        var cfg = ActorCriticConfig()
        cfg.entropyCoefficient = 0.1
        let learner = ActorCriticLearner(net: net, config: cfg)
        let chunks = makeChunks(D: D, A: A, rng: &rng)
        for c in chunks { try c.validate(actionCount: A) }
        net.zeroGrad()
        let (_, targets) = learner.accumulateGradients(chunks)
        let analytic = net.grads
        var numeric = [Float](repeating: 0, count: net.params.count)
        let eps: Float = 1e-2
        for i in net.params.indices {
            let p0 = net.params[i]
            net.params[i] = p0 + eps; let lp = learner.surrogateLoss(chunks, targets: targets)
            net.params[i] = p0 - eps; let lm = learner.surrogateLoss(chunks, targets: targets)
            net.params[i] = p0
            numeric[i] = Float((lp - lm) / Double(2 * eps))
        }
        let maxDiff = zip(analytic, numeric).map { abs($0 - $1) }.max()!
        print("actor-critic surrogate gradient check: maxdiff \(maxDiff)")
        expectClose(analytic, numeric, rtol: 2e-2, atol: 1e-3, "d surrogate / dθ")
    }

    func testChunkValidationRejectsMalformedChunks() {
        var c = EpisodeChunk(env: "t", observationSize: 2)
        XCTAssertThrowsError(try c.validate())   // empty
        c.append(observation: [0, 1], action: 0, reward: 0, done: false, truncated: true, behaviourLogProb: 0, behaviourVersion: 0)
        c.append(observation: [0, 1], action: 0, reward: 0, done: false, truncated: false, behaviourLogProb: 0, behaviourVersion: 0)
        c.bootstrapObservation = [1, 1]
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("truncation at step 0")) }
        c.truncations[0] = false
        XCTAssertNoThrow(try c.validate(actionCount: 2))
        XCTAssertThrowsError(try c.validate(actionCount: 0))
        c.bootstrapObservation = []
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("bootstrap")) }
        c.dones[1] = true
        XCTAssertNoThrow(try c.validate())
    }

    func testUpdateRaisesProbabilityOfPositiveAdvantageActionAndAdvancesVersion() throws {
        var chunk = EpisodeChunk(env: "t", observationSize: 2)
        // Action 2 in state [1, 0] gives reward 1 then the episode terminates.
        chunk.append(observation: [1, 0], action: 2, reward: 1, done: true, truncated: false,
                     behaviourLogProb: Float(log(1.0 / 3)), behaviourVersion: 0)
        // Policy only (c_v = 0, value head stays at its initial V(x) < 1 here, so A = ρ(1 − V) > 0).
        let net = MLP(config: MLPConfig(inputSize: 2, actionCount: 3, hiddenSizes: [8]), seed: 1)
        var cfg = ActorCriticConfig()
        cfg.valueCoefficient = 0; cfg.entropyCoefficient = 0; cfg.learningRate = 1e-2
        let learner = ActorCriticLearner(net: net, config: cfg)
        func prob() -> Double { exp(MLP.logSoftmax(net.forward([1, 0], batch: 1).logits, row: 0, count: 3)[2]) }
        let v0 = Double(net.forward([1, 0], batch: 1).values[0])
        XCTAssertLessThan(v0, 1)
        let before = prob()
        for _ in 0..<20 { try learner.update([chunk]) }
        XCTAssertEqual(learner.version, 20)
        XCTAssertGreaterThan(prob(), before + 0.2)
        // Full loss: the value moves toward the return 1.
        let net2 = MLP(config: MLPConfig(inputSize: 2, actionCount: 3, hiddenSizes: [8]), seed: 1)
        var cfg2 = ActorCriticConfig()
        cfg2.learningRate = 1e-2
        let learner2 = ActorCriticLearner(net: net2, config: cfg2)
        for _ in 0..<50 { try learner2.update([chunk]) }
        let v1 = Double(net2.forward([1, 0], batch: 1).values[0])
        XCTAssertLessThan(abs(v1 - 1), 0.5 * abs(v0 - 1), "value \(v0) → \(v1), return 1")
    }
}
