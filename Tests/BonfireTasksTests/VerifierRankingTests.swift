// The learned verifier's within-prompt ranking (LearnedVerifier.swift header): the within-prompt AUC measure, the
// pairwise ranking objective, and the policy-initialised trunk.
import XCTest
import BonfireMath
import BonfireModel
import BonfireTasks

final class VerifierRankingTests: XCTestCase {
    func testWithinPromptAUCAveragesPerPromptAUCsAndSkipsOneClassPrompts() throws {
        // Prompt a: positives {0.9, 0.2}, negative {0.5} → AUC ½. Prompt b: positive 0.1 above negatives 0.0, 0.05 → 1.
        // Prompt c: one class only → skipped. Pooled AUC differs (it compares across prompts).
        let scores: [Double] = [0.9, 0.2, 0.5, 0.1, 0.0, 0.05, 0.7, 0.8]
        let labels: [Double] = [1, 1, 0, 1, 0, 0, 1, 1]
        let groups = ["a", "a", "a", "b", "b", "b", "c", "c"]
        let w = try XCTUnwrap(Estimators.withinPromptAUC(scores: scores, labels: labels, groups: groups))
        XCTAssertEqual(w.prompts, 2)
        XCTAssertEqual(w.mean, 0.75, accuracy: 1e-12)
        XCTAssertEqual(w.standardError, 0.25, accuracy: 1e-12)
        // Groups need not be contiguous: the same data interleaved gives the same answer.
        let perm = [0, 3, 6, 1, 4, 7, 2, 5]
        let v = try XCTUnwrap(Estimators.withinPromptAUC(scores: perm.map { scores[$0] }, labels: perm.map { labels[$0] },
                                                         groups: perm.map { groups[$0] }))
        XCTAssertEqual(v.mean, 0.75, accuracy: 1e-12)
        XCTAssertNil(Estimators.withinPromptAUC(scores: [0.1, 0.2], labels: [1, 0], groups: ["a", "b"]),
                     "no prompt has both labels")
    }

    /// Synthetic task where the prompt predicts the label (the confound that made the BCE verifier rank by prompt
    /// difficulty) and, within a prompt, only the response's relation to the prompt does: response "d#" is correct
    /// iff d equals the prompt's digit. Prompts with an even digit have 7 of 8 samples correct, odd ones 1 of 8.
    func testPairwiseObjectiveLearnsToRankWithinPromptsDespiteAPromptLevelConfound() throws {
        func data(split: Split, prompts: Int, seed: UInt64) -> [VerifierExample] {
            var rng = RNG(seed: seed, stream: 11)
            var out: [VerifierExample] = []
            for p in 0..<prompts {
                let digit = rng.int(10)
                let item = TaskItem(id: "syn/\(split.rawValue)/\(p)", task: "syn", split: split, index: p,
                                    prompt: "q\(digit)=", reference: "\(digit)#", level: 1, answer: "\(digit)")
                let correct = digit % 2 == 0 ? 7 : 1
                for k in 0..<8 {
                    let d = k < correct ? digit : (digit + 1 + rng.int(9)) % 10
                    out.append(VerifierExample(item: item, response: "\(d)#", label: d == digit ? 1 : 0))
                }
            }
            return out
        }
        let train = data(split: .train, prompts: 200, seed: 1), held = data(split: .validation, prompts: 60, seed: 2)
        for loss in VerifierRankingLoss.allCases {
            let verifier = LearnedVerifier(model: LearnedVerifier.makeModel(
                config: GPTConfig(contextLength: 16, layers: 1, heads: 2, dim: 32, scalarHead: true), seed: 3))
            let losses = VerifierTrainer.train(verifier, examples: train,
                                               config: VerifierTrainingConfig(steps: 300, batchSize: 32, learningRate: 3e-3,
                                                                              rankingWeight: 1, rankingLoss: loss), seed: 4)
            XCTAssertTrue(losses.allSatisfy { $0.isFinite }, "\(loss)")
            let scores = held.map { verifier.scores(item: $0.item, responses: [$0.response])[0] }
            let within = try XCTUnwrap(Estimators.withinPromptAUC(scores: scores, labels: held.map { $0.label },
                                                                  groups: held.map { $0.item.id }))
            print("synthetic within-prompt AUC (\(loss)) \(within.mean) ± \(within.standardError) over \(within.prompts) prompts")
            XCTAssertEqual(within.prompts, 60)
            XCTAssertGreaterThan(within.mean, 0.8, "the verifier ranks within prompts (\(loss))")
            // Bo-N with these scores rises with N (what the BCE-only math verifier failed to do).
            var bo = [Int: Double]()
            for n in [1, 4, 8] {
                var total = 0.0
                for g in stride(from: 0, to: held.count, by: 8) {
                    total += Estimators.bestOfN(scores: Array(scores[g..<g + 8]), rewards: held[g..<g + 8].map { $0.label }, n: n)
                }
                bo[n] = total / Double(held.count / 8)
            }
            XCTAssertGreaterThan(bo[8]!, bo[1]! + 0.1, "\(loss): Bo-8 \(bo[8]!) above Bo-1 \(bo[1]!)")
        }
    }

    func testPolicyInitialisedVerifierCopiesTheTrunk() {
        let policy = GPT(config: GPTConfig(contextLength: 16, layers: 1, heads: 2, dim: 16), seed: 5)
        let v = LearnedVerifier.makeModel(initialisedFrom: policy, seed: 6)
        XCTAssertTrue(v.config.scalarHead)
        XCTAssertEqual(v.config.layers, 1); XCTAssertEqual(v.config.dim, 16)
        for e in policy.layout.entries {
            let t = v.layout.entry(named: e.name)!
            XCTAssertEqual(Array(v.params[t.range]), Array(policy.params[e.range]), e.name)
        }
        XCTAssertNotNil(v.layout.entry(named: "score.weight"))
        // Same trunk, so the scalar head reads the policy's final hidden state: two different seeds of the head give
        // different scores, but a model copied twice with the same seed scores identically.
        let a = LearnedVerifier(model: v), b = LearnedVerifier(model: LearnedVerifier.makeModel(initialisedFrom: policy, seed: 6))
        let item = TaskItem(id: "x", task: "x", split: .test, index: 0, prompt: "1+1=", reference: "2#", level: 1, answer: "2")
        XCTAssertEqual(a.scores(item: item, responses: ["2#", "3#"]), b.scores(item: item, responses: ["2#", "3#"]))
    }
}
