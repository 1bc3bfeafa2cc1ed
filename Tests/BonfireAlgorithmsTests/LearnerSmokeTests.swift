// Every learner runs a few steps on a tiny GPT and a synthetic task ("the first response token should have an even
// id"; verifier score = R + noise): the loss is finite, parameters change, and the quantity the learner targets moves
// the right way on a fixed batch (the surrogate Σ_i w_i log π(y_i) with the learner's own weights, and for the
// reward learners the mean log-probability of rewarded minus unrewarded responses).

import XCTest
import Foundation
import BonfireTasks
import BonfireMath
import BonfireModel
import BonfireAlgorithms
import BonfireTestSupport

final class LearnerSmokeTests: XCTestCase {
    let cfg = GPTConfig(vocabSize: 64, contextLength: 32, layers: 1, heads: 2, dim: 32)

    func reward(_ response: [Int]) -> Double { (response.first ?? 1) % 2 == 0 ? 1 : 0 }

    func makeBatch(model: GPT, n: Int, seed: UInt64, version: Int = 0) -> BoNBatch {
        var rng = RNG(seed: seed)
        let prompts: [[Int]] = [[10, 11], [12, 13, 14], [20], [30, 31]]
        let sc = SamplingConfig(temperature: 1, maxNewTokens: 5)
        let out = model.sample(prompts: prompts, samplesPerPrompt: n, config: sc, rng: &rng)
        return BoNBatch(groups: prompts.indices.map { p in
            let rs = out[p]
            let R = rs.map { reward($0.tokens) }
            var noise = RNG(seed: seed, stream: UInt64(p))
            return BoNGroup(promptTokens: prompts[p], responses: rs.map(\.tokens), behaviourLogProbs: rs.map(\.logProbs),
                            behaviourVersion: version, scores: R.map { $0 + 0.8 * noise.uniform() }, rewards: R,
                            itemIndex: p)
        })
    }

    func sequenceLogProbs(_ model: GPT, _ g: BoNGroup) -> [Double] {
        model.tokenLogProbs(g.responses.map { [Tokenizer.bos] + g.promptTokens + $0 }).map {
            $0[g.promptTokens.count...].reduce(0) { $0 + Double($1) }
        }
    }

    func surrogate(_ model: GPT, _ batch: BoNBatch, _ w: [[Double]]) -> Double {
        zip(batch.groups, w).reduce(0) { acc, gw in
            acc + zip(sequenceLogProbs(model, gw.0), gw.1).reduce(0) { $0 + $1.0 * $1.1 }
        }
    }

    func correctMinusWrong(_ model: GPT, _ batch: BoNBatch) -> Double {
        var c = 0.0, nc = 0.0, w = 0.0, nw = 0.0
        for g in batch.groups {
            for (lp, R) in zip(sequenceLogProbs(model, g), g.rewards) {
                if R > 0.5 { c += lp; nc += 1 } else { w += lp; nw += 1 }
            }
        }
        return c / max(nc, 1) - w / max(nw, 1)
    }

    func runGroupLearner(_ learner: some GroupLearner, n: Int, file: StaticString = #filePath, line: UInt = #line) {
        let model = GPT(config: cfg, seed: 3)
        let batch = makeBatch(model: model, n: n, seed: 17)
        let w = batch.groups.map(learner.groupWeights)
        XCTAssertGreaterThan(w.flatMap { $0 }.map(abs).reduce(0, +), 0, "\(learner.name): fixed batch has signal", file: file, line: line)
        let p0 = model.params
        let s0 = surrogate(model, batch, w), m0 = correctMinusWrong(model, batch)
        var opt = AdamW(learningRate: 3e-3, weightDecay: 0)
        for _ in 0..<8 {
            let st = learner.step(batch: batch, model: model, optimizer: &opt, currentVersion: 0)
            XCTAssert(st.loss.isFinite && st.gradNorm.isFinite, "\(learner.name): loss \(st.loss)", file: file, line: line)
        }
        XCTAssertNotEqual(model.params, p0, "\(learner.name): params changed", file: file, line: line)
        let s1 = surrogate(model, batch, w), m1 = correctMinusWrong(model, batch)
        print("\(learner.name): surrogate \(s0) → \(s1), logπ(correct) − logπ(wrong) \(m0) → \(m1)")
        XCTAssertGreaterThan(s1, s0, "\(learner.name): surrogate objective rises", file: file, line: line)
        XCTAssertGreaterThan(m1, m0, "\(learner.name): rewarded responses gain probability", file: file, line: line)
    }

    func testRLLearners() {
        var c = RL.Config(); c.reward = .system
        runGroupLearner(RL(config: c), n: 4)
        c.reward = .verifier; c.update.ppoClip = 0.2
        runGroupLearner(RL(config: c), n: 4)
    }

    func testBoNRLLearners() {
        var c = BoNRL.Config(); c.variant = .verifier
        runGroupLearner(BoNRL(config: c), n: 4)
        c.variant = .system
        runGroupLearner(BoNRL(config: c), n: 4)
    }

    func testBoNRLBLearners() {
        runGroupLearner(BoNRLB(), n: 4)
        runGroupLearner(BoNRLB(config: .positiveOnlyDefaults), n: 4)
    }

    func testKLToReferenceAndStaleImportanceWeightsRun() {
        let model = GPT(config: cfg, seed: 3), ref = GPT(config: cfg, seed: 3)
        let batch = makeBatch(model: model, n: 4, seed: 17, version: 0)
        var c = RL.Config(); c.update.klCoefficient = 0.1; c.update.importance = ImportanceConfig(mode: .group, rhoBar: 1)
        var opt = AdamW(learningRate: 3e-3, weightDecay: 0)
        // Version 0 samples are stale at version 1: ratios are computed; after one step they differ from 1.
        RL(config: c).step(batch: batch, model: model, optimizer: &opt, currentVersion: 0, reference: ref)
        let st = RL(config: c).step(batch: batch, model: model, optimizer: &opt, currentVersion: 1, reference: ref)
        XCTAssert(st.loss.isFinite)
        XCTAssertNotEqual(st.meanImportanceRatio, 1)
        XCTAssertLessThanOrEqual(st.meanImportanceRatio, 1 + 1e-9, "truncated at ρ̄ = 1")
    }

    func testSFTAndBoNSFT() {
        let demos = [Demonstration(promptTokens: [10, 11], response: [20, 22, 24, Tokenizer.eos]),
                     Demonstration(promptTokens: [12], response: [26, 28, Tokenizer.eos])]
        func demoLL(_ m: GPT) -> Double {
            m.tokenLogProbs(demos.map { [Tokenizer.bos] + $0.promptTokens + $0.response }).enumerated().reduce(0) {
                $0 + $1.element[demos[$1.offset].promptTokens.count...].reduce(0) { $0 + Double($1) }
            }
        }
        // SFT: demonstration likelihood rises.
        let m1 = GPT(config: cfg, seed: 4)
        var o1 = AdamW(learningRate: 3e-3, weightDecay: 0)
        let ll0 = demoLL(m1)
        for _ in 0..<8 { XCTAssert(SFT().step(demonstrations: demos, model: m1, optimizer: &o1).loss.isFinite) }
        XCTAssertGreaterThan(demoLL(m1), ll0 + 1)

        // BoN-SFT with N = 1 is exactly SFT (identical parameters after the same steps).
        let m2 = GPT(config: cfg, seed: 4)
        var o2 = AdamW(learningRate: 3e-3, weightDecay: 0)
        var c1 = BoNSFT.Config(); c1.n = 1
        let samples = makeBatch(model: m2, n: 4, seed: 9).groups
        let ex = demos.enumerated().map { i, d in
            BoNSFTExample(demonstration: d, expertScore: 1,
                          samples: BoNGroup(promptTokens: d.promptTokens, responses: samples[i].responses,
                                            behaviourLogProbs: samples[i].behaviourLogProbs, behaviourVersion: 0,
                                            scores: samples[i].scores, rewards: samples[i].rewards, itemIndex: i))
        }
        for _ in 0..<8 { BoNSFT(config: c1).step(examples: ex, model: m2, optimizer: &o2, currentVersion: 0) }
        XCTAssertEqual(m2.params, m1.params, "BoN-SFT(N=1) ≡ SFT")

        // BoN-SFT with N = 8 (KL-matched λ): finite, params change, demonstrations still gain likelihood, and the
        // surrogate with its own weights rises.
        let m3 = GPT(config: cfg, seed: 4)
        var o3 = AdamW(learningRate: 3e-3, weightDecay: 0)
        let bon = BoNSFT(config: BoNSFT.Config())
        XCTAssertEqual(bon.lambda, 9.0545, accuracy: 1e-3)
        let seqs = bon.sequences(ex, currentVersion: 0)
        XCTAssertGreaterThan(seqs.count, demos.count, "policy samples carry weight")
        func sur(_ m: GPT) -> Double {
            let lps = m.tokenLogProbs(seqs.map(\.tokens))
            return zip(seqs, lps).reduce(0) { $0 + $1.0.weight * $1.1[$1.0.promptTokens.count...].reduce(0) { $0 + Double($1) } }
        }
        let p0 = m3.params, s0 = sur(m3), l0 = demoLL(m3)
        for _ in 0..<8 { XCTAssert(bon.step(examples: ex, model: m3, optimizer: &o3, currentVersion: 0).loss.isFinite) }
        XCTAssertNotEqual(m3.params, p0)
        XCTAssertGreaterThan(sur(m3), s0)
        XCTAssertGreaterThan(demoLL(m3), l0)
    }

    func testStaleSamplesGetTheTruncatedSequenceRatio() {
        let model = GPT(config: cfg, seed: 3)
        let batch = makeBatch(model: model, n: 4, seed: 17, version: 0)
        // Behaviour log-probs shifted by +0.1 per token: ρ_i = exp(−0.1·L_i) < 1 (no truncation at ρ̄ = 1);
        // shifted by −0.1: ρ_i > 1, truncated to exactly 1.
        for shift: Float in [0.1, -0.1] {
            var b = batch
            for g in b.groups.indices {
                let cur = model.tokenLogProbs(b.groups[g].responses.map { [Tokenizer.bos] + b.groups[g].promptTokens + $0 })
                b.groups[g].behaviourLogProbs = cur.map { Array($0[b.groups[g].promptTokens.count...]).map { $0 + shift } }
            }
            let w = b.groups.map { RL().groupWeights($0) }
            let seqs = PolicyGradient.sequences(batch: b, weights: w, currentVersion: 1).filter { $0.weight != 0 }
            let expected = seqs.map { min(1, exp(-Double(shift) * Double($0.response.count))) }.reduce(0, +) / Double(seqs.count)
            var opt = AdamW(learningRate: 1e-3, weightDecay: 0)
            let clone = GPT(config: cfg, seed: 3)
            let st = PolicyGradient.update(model: clone, optimizer: &opt, sequences: seqs, config: RL().update)
            expectClose(st.meanImportanceRatio, expected, rtol: 1e-4, atol: 1e-6, "mean ρ with shift \(shift)")
            XCTAssertEqual(ImportanceWeights.sequenceRatio(current: [0.5, -1][...], behaviour: [0.25, -1.5]), exp(0.75),
                           accuracy: 1e-12)
        }
    }
}
