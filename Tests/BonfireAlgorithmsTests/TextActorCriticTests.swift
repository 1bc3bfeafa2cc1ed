import BonfireAlgorithms
import BonfireMath
import BonfireModel
import XCTest

/// The text actor-critic update (the learning run through the runtime is BonfireClusterTests/RuntimeTests).
final class TextActorCriticTests: XCTestCase {
    func episode(_ model: GPT, reward: Double) -> TextEpisode {
        var e = TextEpisode()
        e.observations = [[1, 5, 6], [1, 5, 6, 7, 8]]
        e.actions = [7, 9]
        let lps = model.tokenLogProbs([[1, 5, 6, 7], [1, 5, 6, 7, 8, 9]])
        e.behaviourLogProbs = lps.map { $0.last! }
        e.rewards = [0, reward]
        return e
    }

    func testAPositiveReturnRaisesTheActionsLogProbAndTheValueMovesTowardTheReturn() {
        let model = GPT(config: GPTConfig(vocabSize: 16, contextLength: 8, layers: 1, heads: 2, dim: 16, scalarHead: true), seed: 2)
        var opt = AdamW(learningRate: 1e-2, beta2: 0.999, weightDecay: 0, layout: model.layout)
        var c = TextActorCriticConfig()
        c.entropyCoefficient = 0
        let lp0 = model.tokenLogProbs([[1, 5, 6, 7, 8, 9]])[0].last!
        let v0 = model.scalarForward([[1, 5, 6, 7, 8]])[0]
        for _ in 0..<20 {
            let st = TextActorCritic.update(model: model, optimizer: &opt, episodes: [episode(model, reward: 1)], config: c)
            XCTAssertTrue(st.policyLoss.isFinite && st.valueLoss.isFinite)
            XCTAssertEqual(st.meanRho, 1, accuracy: 1e-4, "on-policy: ρ = 1")
        }
        XCTAssertGreaterThan(model.tokenLogProbs([[1, 5, 6, 7, 8, 9]])[0].last!, lp0)
        let v1 = model.scalarForward([[1, 5, 6, 7, 8]])[0]
        XCTAssertLessThan(abs(v1 - 1), abs(v0 - 1), "value \(v0) → \(v1), return 1")
    }
}
