import BonfireAlgorithms
import BonfireModel
import BonfireTasks
import XCTest

/// The transformer actor-critic on the multi-turn text environment (GuessNumber): a short run must clearly improve
/// on the untrained policy (which mostly writes malformed guesses, return ≈ −0.46).
final class TextEnvTrainingTests: XCTestCase {
    func testTransformerPolicyLearnsToPlayGuessNumberBetterThanUntrained() throws {
        var c = TextEnvTrainingConfig()
        c.updates = 100
        c.evalEpisodes = 200
        c.seed = 3
        let r = try TextEnvTraining.run(c) { _ in }
        XCTAssertLessThan(r.initialEvalReturn, 0, "untrained policy writes mostly malformed guesses")
        XCTAssertGreaterThan(r.evalReturn, r.initialEvalReturn + 0.15,
                             "return \(r.evalReturn) vs untrained \(r.initialEvalReturn) after \(c.updates) updates")
        XCTAssertEqual(r.curve.count, c.updates)
        XCTAssertTrue(r.curve.allSatisfy { $0[1].isFinite })
    }
}
