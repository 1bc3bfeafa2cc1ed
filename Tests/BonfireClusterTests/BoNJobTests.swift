// BoNJob's learner at start-up (BoNPolicyLearner.prepare): the SFT warm-up on the task's reference solutions.
import XCTest
import BonfireCluster
import BonfireMath
import BonfireWire

final class BoNJobTests: XCTestCase {
    /// A learning rate far too high makes the warm-up diverge: prepare throws, naming the key, the default and the
    /// other way out, instead of publishing non-finite parameters as version 0 (which every actor rejected, and the
    /// job waited for rollouts forever). The default rate trains to finite parameters.
    func testDivergedWarmupStopsTheLearnerSayingWhatToChange() throws {
        let small = ["algorithm.sftWarmupSteps=20", "model.layers=1", "model.dim=32"]
        let learner = try BoNPolicyLearner(config: try RunConfig.load(sets: small + ["algorithm.sftWarmupLearningRate=1e10"]))
        XCTAssertThrowsError(try learner.prepare(tick: {}, log: { _ in })) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("SFT warm-up diverged") && m.contains("algorithm.sftWarmupLearningRate = 1")
                          && m.contains("the default is 0.002") && m.contains("algorithm.sftWarmupSteps=0"), m)
        }
        let ok = try BoNPolicyLearner(config: try RunConfig.load(sets: small))
        XCTAssertNoThrow(try ok.prepare(tick: {}, log: { _ in }))
        XCTAssertTrue(ok.parameters.allSatisfy(\.isFinite))
    }
    /// An update that leaves a parameter finite but beyond what every actor accepts (±1e6) is rolled back and
    /// counted, like a non-finite one: published, every actor rejected it and the job stalled waiting for rollouts.
    func testUpdateBeyondTheActorsParameterBoundIsRolledBack() throws {
        let c = try RunConfig.load(sets: ["algorithm.name=sft", "algorithm.learningRate=1e10", "algorithm.sftWarmupSteps=0",
                                          "learner.groupsPerStep=2", "sampling.maxNewTokens=8", "model.layers=1", "model.dim=32"])
        let source = try BoNGroupSource(config: c, actorID: 0)
        let learner = try BoNPolicyLearner(config: c)
        var rng = RNG(seed: 5)
        let messages = try source.produce(version: 0, maxUnits: 2, rng: &rng)
        guard case .units(let groups) = learner.accept(messages[0].payload) else { return XCTFail("groups rejected") }
        let before = learner.parameters
        _ = try learner.update(groups, version: 0)
        XCTAssertEqual(learner.parameters, before, "a step of 1e10 (Adam: |Δθ| ≈ learning rate) was applied")
        XCTAssertEqual(learner.runningMetrics[MetricKey.skippedUpdates], 1)
        // At a sane rate the same update goes through.
        let sane = try BoNPolicyLearner(config: try RunConfig.load(sets: ["algorithm.name=sft", "algorithm.sftWarmupSteps=0",
            "learner.groupsPerStep=2", "sampling.maxNewTokens=8", "model.layers=1", "model.dim=32"]))
        _ = try sane.update(groups, version: 0)
        XCTAssertNotEqual(sane.parameters, before)
        XCTAssertEqual(sane.runningMetrics[MetricKey.skippedUpdates], 0)
    }
}
