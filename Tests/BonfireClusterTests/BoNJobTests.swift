// BoNJob's learner at start-up (BoNPolicyLearner.prepare): the SFT warm-up on the task's reference solutions.
import XCTest
import BonfireCluster

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
}
