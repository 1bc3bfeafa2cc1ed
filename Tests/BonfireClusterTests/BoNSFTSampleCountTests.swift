// A bon-sft run draws the M policy samples per prompt its BoN correction needs (algorithm.bonSFTSamples, default
// BoNSFT.recommendedSamples(N′) = 4N′ in [8, 32]): the actor's BoNGroupSource samples M, the learner accepts groups of
// M and rejects groups of sampling.groupSize, and trains on them. Other algorithms keep sampling.groupSize.
import XCTest
import Foundation
import BonfireAlgorithms
import BonfireCluster
import BonfireMath
import BonfireWire

final class BoNSFTSampleCountTests: XCTestCase {
    func testBoNSFTRunsSampleTheRecommendedMAndOthersTheGroupSize() throws {
        for (n, m) in [(1, 8), (4, 16), (8, 32), (16, 32)] {
            let c = try RunConfig.load(sets: ["algorithm.name=bon-sft", "algorithm.trainN=\(n)", "sampling.groupSize=\(max(n, 8))"])
            XCTAssertEqual(c.responsesPerGroup, m, "bon-sft N′=\(n)")
            XCTAssertEqual(c.algorithmOptions.bonSFT().config.samplesPerPrompt, m)
        }
        let explicit = try RunConfig.load(sets: ["algorithm.name=bon-sft", "algorithm.trainN=8", "algorithm.bonSFTSamples=12"])
        XCTAssertEqual(explicit.responsesPerGroup, 12)
        for a in AlgorithmKind.allCases where a != .bonSFT {
            let c = try RunConfig.load(sets: ["algorithm.name=\(a.rawValue)", "algorithm.trainN=8", "sampling.groupSize=8"])
            XCTAssertEqual(c.responsesPerGroup, 8, a.rawValue)
        }
    }

    func testBadBonSFTSamplesIsRejectedByName() {
        for bad in ["1", "-3", "100000"] {
            XCTAssertThrowsError(try RunConfig.load(sets: ["algorithm.bonSFTSamples=\(bad)"])) { e in
                XCTAssertTrue("\(e)".contains("algorithm.bonSFTSamples"), "\(e)")
            }
        }
    }

    func testActorSamplesMAndTheLearnerTrainsOnIt() throws {
        let c = try RunConfig.load(sets: ["algorithm.name=bon-sft", "algorithm.trainN=4", "algorithm.sftWarmupSteps=0",
                                          "learner.groupsPerStep=2", "sampling.maxNewTokens=8"])
        let source = try BoNGroupSource(config: c, actorID: 0)
        let learner = try BoNPolicyLearner(config: c)
        var rng = RNG(seed: 5)
        let messages = try source.produce(version: 0, maxUnits: 2, rng: &rng)
        XCTAssertEqual(messages.count, 1)
        XCTAssertEqual(messages[0].samples, 2 * 16)
        guard case .bonGroups(let batch) = messages[0].payload else { return XCTFail("not a BoN group batch") }
        XCTAssertEqual(batch.groups.map(\.responses.count), [16, 16])
        guard case .units(let groups) = learner.accept(messages[0].payload) else { return XCTFail("M-sample groups rejected") }
        let before = learner.parameters
        let metrics = try learner.update(groups, version: 0)
        XCTAssertTrue(metrics[MetricKey.policyLoss]?.isFinite ?? false)
        XCTAssertNotEqual(learner.parameters, before, "the bon-sft update changed nothing")
        // A group of sampling.groupSize (8) responses is not what this run samples: the learner's admission drops it.
        var short = batch
        short.groups[0].responses = Array(short.groups[0].responses.prefix(8))
        var ctx = ValidationContext(receiver: .learner, runID: c.run.id)
        learner.admission(&ctx)
        ctx.currentVersion = 0
        XCTAssertEqual(ctx.validate(short).reason, .groupSizeMismatch, "a group of 8 was admitted by a run that samples 16")
        XCTAssertEqual(ctx.validate(batch), .valid)
    }
}
