// SFT (N′ = 1): maximum likelihood on demonstrations, the inference-unaware baseline of BoN-SFT (SPEC-bon.md §2.1).
//
// Objective: max_θ E_{(x,y*)∼D}[log π_θ(y*|x)];  estimator over a batch of B demonstrations:
//   ĝ = (1/B) Σ_b ∇log π(y*_b|x_b) = (1/B) Σ_b Σ_t ∇log π(y*_{b,t}|x_b, y*_{b,<t})
// i.e. every response token has weight 1/B (prompt tokens 0), then gradient clipping and one AdamW step.

import BonfireMath
import BonfireModel

/// A prompt and a demonstration response (token ids, no BOS; response ends with EOS).
package struct Demonstration: Sendable, Codable, Equatable {
    package var promptTokens: [Int]
    package var response: [Int]
    package init(promptTokens: [Int], response: [Int]) { self.promptTokens = promptTokens; self.response = response }
}

package struct SFT: Sendable {
    package struct Config: Codable, Sendable, Equatable {
        /// Update step options (temperature 1, grad clip 1 by default).
        package var update = UpdateConfig()
        package init() {}
    }
    package var config: Config
    package init(config: Config = Config()) { self.config = config }
    package var name: String { "sft" }

    /// The weighted sequences of one SFT step (weight 1/B each).
    package func sequences(_ demos: [Demonstration]) -> [WeightedSequence] {
        let w = 1 / Double(max(1, demos.count))
        return demos.map { WeightedSequence(promptTokens: $0.promptTokens, response: $0.response, weight: w) }
    }

    @discardableResult
    package func step(demonstrations: [Demonstration], model: any LanguageModel, optimizer: inout AdamW,
                      learningRate: Float? = nil) -> UpdateStats {
        PolicyGradient.update(model: model, optimizer: &optimizer, sequences: sequences(demonstrations),
                              config: config.update, learningRate: learningRate)
    }
}
