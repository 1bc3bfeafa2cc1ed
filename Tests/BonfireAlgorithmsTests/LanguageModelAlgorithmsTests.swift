// Every algorithm a run can choose (AlgorithmKind) trains a Llama-family policy through the same entry points the
// learner calls (AlgorithmOptions.groupLearner / .sft / .bonSFT with `any LanguageModel`), with that policy's own BOS
// (UpdateConfig.bos): loss finite, parameters change, and the sequence scored is [bos] + prompt + response.

import XCTest
import Foundation
import BonfireMath
import BonfireModel
import BonfireAlgorithms
import BonfireTestSupport

final class LanguageModelAlgorithmsTests: XCTestCase {
    /// A tiny Llama (GQA, untied head) whose BOS is id 7, not the character tokenizer's 1.
    let cfg = LlamaConfig(vocabSize: 40, dim: 16, hidden: 24, layers: 1, heads: 4, kvHeads: 2, contextLength: 32,
                          tiedHead: false)
    let bos = 7, eos = 3

    func batch(_ model: any LanguageModel, n: Int) -> BoNBatch {
        var rng = RNG(seed: 5)
        let prompts: [[Int]] = [[10, 11], [12, 13, 14], [20], [30, 31]]
        let sc = SamplingConfig(temperature: 1, maxNewTokens: 5, stopToken: eos)
        let out = model.sample(prompts: prompts.map { [bos] + $0 }, samplesPerPrompt: n, config: sc, rng: &rng)
        return BoNBatch(groups: prompts.indices.map { p in
            let rs = out[p]
            // Half of each group rewarded (by position), scores = rewards + a distinct offset: every estimator has signal.
            let R = rs.indices.map { Double($0 % 2) }
            return BoNGroup(promptTokens: prompts[p], responses: rs.map(\.tokens), behaviourLogProbs: rs.map(\.logProbs),
                            behaviourVersion: 0, scores: R.indices.map { R[$0] + 0.01 * Double($0) }, rewards: R,
                            itemIndex: p)
        })
    }

    func testEveryAlgorithmTrainsALlamaPolicyWithItsOwnBOS() throws {
        for kind in AlgorithmKind.allCases {
            let model = LlamaModel(config: cfg, seed: 3)
            var options = AlgorithmOptions()
            options.trainN = 2
            options.bos = bos
            var opt = AdamW(learningRate: 1e-2, layout: model.layout)
            let b = batch(model, n: 4)
            let before = model.params
            let stats: UpdateStats
            switch kind {
            case .sft:
                let demos = b.groups.map { Demonstration(promptTokens: $0.promptTokens, response: [21, 22, eos]) }
                stats = options.sft.step(demonstrations: demos, model: model, optimizer: &opt)
            case .bonSFT:
                let ex = b.groups.map { g in
                    BoNSFTExample(demonstration: Demonstration(promptTokens: g.promptTokens, response: [21, 22, eos]),
                                  expertScore: 2, samples: g)
                }
                stats = { var o = options; o.bonSFTSamples = 4; return o.bonSFT() }().step(examples: ex, model: model, optimizer: &opt, currentVersion: 0)
            default:
                let learner = try XCTUnwrap(options.groupLearner(kind))
                let groups = kind.isBoNAware ? b.groups.flatMap { g in
                    [0, 2].map { s in BoNGroup(promptTokens: g.promptTokens, responses: Array(g.responses[s..<s + 2]),
                                               behaviourLogProbs: Array(g.behaviourLogProbs[s..<s + 2]), behaviourVersion: 0,
                                               scores: Array(g.scores[s..<s + 2]), rewards: Array(g.rewards[s..<s + 2]),
                                               itemIndex: g.itemIndex) }
                } : b.groups
                XCTAssertEqual(learner.update.bos, bos, "\(kind.rawValue): the group learner's update uses the policy's BOS")
                stats = learner.step(batch: BoNBatch(groups: groups), model: model, optimizer: &opt, currentVersion: 0,
                                     reference: model.copy())
            }
            XCTAssertTrue(stats.loss.isFinite && stats.gradNorm.isFinite, "\(kind.rawValue): loss \(stats.loss), grad norm \(stats.gradNorm)")
            XCTAssertGreaterThan(stats.gradNorm, 0, "\(kind.rawValue): a gradient reached the Llama parameters")
            XCTAssertTrue(model.params.allSatisfy(\.isFinite), kind.rawValue)
            XCTAssertNotEqual(model.params, before, "\(kind.rawValue): parameters changed")
        }
    }

    func testTheUpdateScoresBOSPlusPromptPlusResponseWithTheConfiguredBOS() {
        // SFT's loss is −(1/B) Σ_b Σ_t log π(y_t | bos, x, y_<t): recompute it from tokenLogProbs with bos 7 (equal) and
        // with the character BOS 1 (different), so a learner that ignored UpdateConfig.bos fails here.
        let model = LlamaModel(config: cfg, seed: 11)
        let demos = [Demonstration(promptTokens: [10, 11], response: [21, 22, eos]),
                     Demonstration(promptTokens: [30], response: [25, eos])]
        func expected(_ b: Int) -> Double {
            let lps = model.tokenLogProbs(demos.map { [b] + $0.promptTokens + $0.response }, temperature: 1)
            return -zip(demos, lps).reduce(0.0) { acc, d in
                acc + d.1[d.0.promptTokens.count...].reduce(0.0) { $0 + Double($1) }
            } / Double(demos.count)
        }
        var options = AlgorithmOptions()
        options.bos = bos
        var opt = AdamW(learningRate: 0, layout: model.layout)
        let stats = options.sft.step(demonstrations: demos, model: model, optimizer: &opt)
        XCTAssertEqual(Double(stats.loss), expected(bos), accuracy: 1e-4 * max(1, abs(expected(bos))))
        XCTAssertGreaterThan(abs(expected(bos) - expected(Tokenizer.bos)), 1e-3, "the two BOS choices must be distinguishable")
    }
}
