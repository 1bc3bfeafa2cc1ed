// An actor's policy only samples and scores: through the sources the actor runtime drives (BoNGroupSource,
// TextEpisodeSource) — install, produce, evaluate, swap parameters — it never allocates gradients, so an actor of a
// 124 M-parameter model does not hold 0.47 GiB of them (`bonfire-bench memory`: actor peak RSS 1403 → 928 MiB).
import XCTest
import BonfireAlgorithms
import BonfireCluster
import BonfireMath
import BonfireWire

final class ActorPolicyMemoryTests: XCTestCase {
    func testBoNActorNeverAllocatesGradients() throws {
        let c = try RunConfig.load(sets: ["algorithm.sftWarmupSteps=0", "model.layers=1", "model.dim=32",
                                          "sampling.maxNewTokens=8", "eval.samples=8"])
        let source = try BoNGroupSource(config: c, actorID: 0)
        source.install(parameters: source.model.params.map { $0 * 0.9 })
        var rng = RNG(seed: 1)
        XCTAssertFalse(try source.produce(version: 1, maxUnits: 2, rng: &rng).isEmpty)
        let request = WireEvalRequest(requestID: 1, version: 1, task: c.task.name.rawValue, split: "test",
                                      nList: [1, 4], temperatures: [1.0], numPrompts: 4)
        _ = try source.evaluate(request, version: 1, rng: &rng)
        source.swapParameters(source.model.params)
        XCTAssertFalse(source.model.hasGradients, "the BoN actor's policy allocated gradients")
        // The learner's copy of the same policy does allocate them (else this test could not fail).
        let learner = try BoNPolicyLearner(config: c)
        var groups: [BoNGroup] = []
        for m in try source.produce(version: 0, maxUnits: 2, rng: &rng) {
            if case .units(let g) = learner.accept(m.payload) { groups += g }
        }
        XCTAssertFalse(groups.isEmpty)
        _ = try learner.update(groups, version: 0)
        XCTAssertTrue(learner.model.hasGradients)
    }

    func testTextEpisodeActorNeverAllocatesGradients() throws {
        let c = try RunConfig.load(sets: ["env.name=guess"])
        let source = TextEpisodeSource(config: c, actorID: 1)
        var rng = RNG(seed: 7)
        XCTAssertFalse(try source.produce(version: 1, maxUnits: 2, rng: &rng).isEmpty)
        XCTAssertFalse(source.model.hasGradients, "the text-episode actor's policy allocated gradients")
    }
}
