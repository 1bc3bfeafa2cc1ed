// The evaluation runner with a fake sampler: table values match the estimators, JSON and SVG are produced, bad
// settings are rejected with a useful message.
import XCTest
import BonfireMath
import BonfireModel
import Foundation
import BonfireTasks

final class EvaluatorTests: XCTestCase {
    /// Item i at temperature T: the first (i mod 4) of 8 samples are correct; the rest are wrong answers.
    private func fakeSampler(_ items: [TaskItem], _ n: Int, _ T: Double) -> [[String]] {
        items.map { item in
            let good = item.index % 4
            return (0..<n).map { j in j < good ? item.reference : "\(Int(item.answer)! + 1 + j % 2)#" }
        }
    }

    func testTableMatchesEstimatorsAndOracleBoNEqualsPassAtN() throws {
        let task = MathTask(seed: 1)
        let items = task.items(split: .test, range: 0..<12)
        let settings = EvalSettings(samples: 8, nList: [1, 2, 4, 8], temperatures: [0.5, 1.0], promptsPerBatch: 5, progress: false)
        let report = try Evaluator(task: task, verifier: OracleVerifier(task: task), settings: settings)
            .run(items: items, sampler: fakeSampler)
        XCTAssertEqual(report.rows.count, 8)
        for N in [1, 2, 4, 8] {
            let row = report.row(n: N, temperature: 1.0)!
            let expected = items.map { Estimators.passAtK(n: 8, c: $0.index % 4, k: N) }
            XCTAssertEqual(row.passAtN, expected.reduce(0, +) / 12, accuracy: 1e-12)
            XCTAssertEqual(row.boN, row.passAtN, accuracy: 1e-12, "oracle Bo-N = pass@N")
            XCTAssertEqual(row.passAtNStdErr, Estimators.meanAndStandardError(expected).standardError, accuracy: 1e-12)
            XCTAssertEqual(row.meanReward, items.map { Double($0.index % 4) / 8 }.reduce(0, +) / 12, accuracy: 1e-12)
            XCTAssertGreaterThan(row.passAtNStdErr, 0)
        }
        // Majority: wrong answers split 2 ways, so the correct answer wins for item indices with 3 correct of 8.
        let expectedMajority = items.map { item -> Double in
            let ys = fakeSampler([item], 8, 0.5)[0]
            return Estimators.majorityVote(answers: ys.map { task.answerKey(item: item, response: $0) },
                                           rewards: ys.map { task.reward(item: item, response: $0).reward }, k: 8)
        }
        XCTAssertEqual(report.row(n: 8, temperature: 0.5)!.majority!, expectedMajority.reduce(0, +) / 12, accuracy: 1e-12)
        XCTAssertGreaterThan(report.row(n: 8, temperature: 0.5)!.majority!, 0)
        // JSON round trip and SVG.
        let data = try JSONEncoder().encode(report)
        let back = try JSONDecoder().decode(EvalReport.self, from: data)
        XCTAssertEqual(back.rows, report.rows)
        let svg = EvalPlot.svg(report)
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 4, "pass@N and Bo-N per temperature")
        XCTAssertTrue(svg.contains("T=0.5") && svg.contains("Bo-N"))
        XCTAssertTrue(report.table().contains("pass@N"))
    }

    func testNoisyVerifierBoNIsBelowPassAtN() throws {
        let task = MathTask(seed: 1)
        let items = task.items(split: .test, range: 0..<40)
        let settings = EvalSettings(samples: 8, nList: [1, 8], temperatures: [1.0], progress: false)
        let report = try Evaluator(task: task, verifier: NoisyVerifier(task: task, falsePositiveRate: 0.3, falseNegativeRate: 0.3),
                                   settings: settings).run(items: items, sampler: fakeSampler)
        let r8 = report.row(n: 8, temperature: 1.0)!, r1 = report.row(n: 1, temperature: 1.0)!
        XCTAssertEqual(r1.boN, r1.passAtN, accuracy: 1e-12, "N = 1: the verifier does not matter")
        XCTAssertLessThan(r8.boN, r8.passAtN)
        XCTAssertNotNil(r8.majority)
        XCTAssertGreaterThan(r8.boN, r1.boN, "a better-than-chance verifier helps")
    }

    func testBadSettingsAreRejectedWithAHint() {
        let task = MathTask(seed: 1)
        let items = task.items(split: .test, range: 0..<2)
        for (s, hint) in [(EvalSettings(samples: 4, nList: [1, 8]), "samples"),
                          (EvalSettings(samples: 4, nList: []), "N list"),
                          (EvalSettings(samples: 4, nList: [1], temperatures: [-1]), "temperatures")] {
            XCTAssertThrowsError(try Evaluator(task: task, verifier: OracleVerifier(task: task), settings: s)
                .run(items: items, sampler: fakeSampler)) { XCTAssertTrue("\($0)".contains(hint), "\($0)") }
        }
        let short: Evaluator.Sampler = { items, _, _ in items.map { _ in ["1#"] } }
        XCTAssertThrowsError(try Evaluator(task: task, verifier: OracleVerifier(task: task),
                                           settings: EvalSettings(samples: 2, nList: [1], progress: false))
            .run(items: items, sampler: short))
    }

    func testGPTSamplerRunsEndToEnd() throws {
        let task = CodeTask(seed: 2)
        let model = GPT(config: GPTConfig(contextLength: 64, layers: 1, heads: 2, dim: 32), seed: 1)
        let settings = EvalSettings(samples: 4, nList: [1, 4], temperatures: [1.0], progress: false, majority: false)
        let report = try Evaluator(task: task, verifier: OracleVerifier(task: task), settings: settings)
            .run(model: model, items: task.items(split: .test, range: 0..<3), seed: 3)
        XCTAssertEqual(report.rows.count, 2)
        XCTAssertNil(report.rows[0].majority, "not computed, not reported as 0")
        XCTAssertTrue(report.table().contains(" - "))
        XCTAssertTrue(report.rows.allSatisfy { (0...1).contains($0.passAtN) && (0...1).contains($0.boN) })
    }

    // MARK: diversity (distinct final answers, token entropy)

    /// Data/samples (shipped with the repository).
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Data/samples")

    func testDistinctAnswersCountNormalisedFinalAnswersAndIgnoreMalformedOnes() throws {
        let task = try JSONLTask(path: Self.samples.appendingPathComponent("gsm8k-style.jsonl").path)
        let split = [Split.train, .validation, .test].max { task.count(split: $0) < task.count(split: $1) }!
        let items = task.items(split: split, range: 0..<min(3, task.count(split: split)))
        XCTAssertFalse(items.isEmpty)
        // "1.0", "1" and \boxed{1} are one answer; "1,000" and "1000" another; "2" a third; no answer is not one.
        let varied = ["#### 1.0", "#### 1", "so \\boxed{1}", "#### 2", "#### 1,000", "#### 1000", "no final answer", "####"]
        let settings = EvalSettings(samples: 8, nList: [1, 8], temperatures: [1.0], progress: false)
        let evaluator = Evaluator(task: task, verifier: OracleVerifier(task: task), settings: settings)
        let report = try evaluator.run(items: items, sampler: { items, n, _ in items.map { _ in varied } })
        let row = try XCTUnwrap(report.row(n: 8, temperature: 1.0))
        XCTAssertEqual(try XCTUnwrap(row.distinctAnswers), 3, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(row.distinctAnswersStdErr), 0, accuracy: 1e-12)
        XCTAssertNil(row.tokenEntropy, "a text-only sampler reports no entropy")
        XCTAssertEqual(report.row(n: 1, temperature: 1.0)?.distinctAnswers, row.distinctAnswers, "the same for every N")
        // Identical samples: one answer; all malformed: none.
        let same = try evaluator.run(items: items, sampler: { items, n, _ in items.map { _ in Array(repeating: "#### 7", count: n) } })
        XCTAssertEqual(same.rows[0].distinctAnswers, 1)
        let none = try evaluator.run(items: items, sampler: { items, n, _ in items.map { _ in Array(repeating: "seven", count: n) } })
        XCTAssertEqual(none.rows[0].distinctAnswers, 0)
        XCTAssertEqual(Evaluator.distinctAnswers(["1", nil, "1", "2", nil]), 2)
    }

    func testDistinctCodeAnswersAreDistinctBehaviourOnTheTests() throws {
        let task = CodeTask(seed: 2)
        let item = task.item(split: .test, index: 0)
        // The reference and textually different programs with the same outputs are one answer; a program with
        // other outputs is a second; one that does not parse is none.
        let programs = [item.reference, "(\(item.reference))+0", "0+(\(item.reference))", "x*1000+777", "x+"]
        let keys = programs.map { task.answerKey(item: item, response: $0) }
        XCTAssertNotNil(keys[0])
        XCTAssertEqual(Evaluator.distinctAnswers(keys), 2, "\(programs) → \(keys)")
    }

    func testTokenEntropyAveragesOverTokensThenSamplesThenPrompts() throws {
        let task = MathTask(seed: 1)
        let items = task.items(split: .test, range: 0..<2)
        // Prompt 0: samples with token entropies [1, 1] and [4] → (1 + 4) / 2 = 2.5 (not the token mean 2);
        // an empty response is skipped. Prompt 1: [0.5] and [0.5, 0.5, 0.5] → 0.5. Mean over prompts 1.5.
        let sampler: Evaluator.EntropySampler = { items, n, _ in
            items.map { item in
                item.index == 0
                    ? [EvalSample(text: "1#", tokenEntropies: [1, 1]), EvalSample(text: "2#", tokenEntropies: [4]),
                       EvalSample(text: "", tokenEntropies: [])]
                    : [EvalSample(text: "1#", tokenEntropies: [0.5]), EvalSample(text: "1#", tokenEntropies: [0.5, 0.5, 0.5]),
                       EvalSample(text: "1#", tokenEntropies: [0.5])]
            }
        }
        let settings = EvalSettings(samples: 3, nList: [1], temperatures: [0.7], progress: false)
        let report = try Evaluator(task: task, verifier: OracleVerifier(task: task), settings: settings)
            .run(items: items, entropySampler: sampler)
        let row = report.rows[0]
        XCTAssertEqual(try XCTUnwrap(row.tokenEntropy), 1.5, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(row.tokenEntropyStdErr), Estimators.meanAndStandardError([2.5, 0.5]).standardError, accuracy: 1e-6)
        XCTAssertEqual(row.distinctAnswers, 1.5, "prompt 0: answers 1 and 2; prompt 1: answer 1")
        // Printed and written.
        let table = report.table()
        XCTAssertTrue(table.contains("distinct") && table.contains("entropy") && table.contains("1.500±"), table)
        let back = try JSONDecoder().decode(EvalReport.self, from: try JSONEncoder().encode(report))
        XCTAssertEqual(back.rows, report.rows)
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        XCTAssertTrue(json.contains("\"distinctAnswers\"") && json.contains("\"tokenEntropy\""), json)
        let svg = EvalPlot.svg(report)
        XCTAssertTrue(svg.contains("distinct 1.50, H 1.50"), svg)
    }

    func testAReportWithoutDiversityFieldsStillDecodes() throws {
        let old = #"{"n":1,"temperature":1,"passAtN":0.5,"passAtNStdErr":0.1,"boN":0.5,"boNStdErr":0.1,"meanReward":0.5,"numPrompts":4}"#
        let row = try JSONDecoder().decode(EvalRow.self, from: Data(old.utf8))
        XCTAssertNil(row.distinctAnswers)
        XCTAssertNil(row.tokenEntropy)
    }

    /// A policy with all parameters 0 has logits 0: the uniform distribution over the vocabulary at every T > 0, so
    /// the mean token entropy is log|V|; greedy (T = 0) draws one response for all samples, entropy 0, ≤ 1 answer.
    func testUniformPolicyHasEntropyLogVAndGreedyHasEntropyZero() throws {
        let task = MathTask(seed: 1)
        let config = GPTConfig(contextLength: 64, layers: 1, heads: 2, dim: 32)
        let model = GPT(config: config, seed: 1, randomInit: false)
        XCTAssertTrue(model.params.allSatisfy { $0 == 0 })
        let items = task.items(split: .test, range: 0..<3)
        let settings = EvalSettings(samples: 6, nList: [1, 6], temperatures: [0, 0.5, 1.0], progress: false)
        let report = try Evaluator(task: task, verifier: OracleVerifier(task: task), settings: settings)
            .run(model: model, items: items, maxNewTokens: 8, seed: 4)
        let logV = log(Double(config.vocabSize))
        for T in [0.5, 1.0] {
            let row = try XCTUnwrap(report.row(n: 6, temperature: T))
            XCTAssertEqual(try XCTUnwrap(row.tokenEntropy), logV, accuracy: 1e-4, "T = \(T)")
        }
        let greedy = try XCTUnwrap(report.row(n: 6, temperature: 0))
        XCTAssertEqual(try XCTUnwrap(greedy.tokenEntropy), 0, accuracy: 0)
        XCTAssertLessThanOrEqual(try XCTUnwrap(greedy.distinctAnswers), 1)
        let texts = Evaluator.sampler(model: model, maxNewTokens: 8, seed: 4)(items, 6, 0).map { Set($0.map(\.text)) }
        XCTAssertTrue(texts.allSatisfy { $0.count == 1 }, "greedy samples are identical: \(texts)")
        // top-k keeps k equally likely tokens: entropy log k; recording it does not change the draws.
        let prompt = [[Tokenizer.bos, 5, 6]]
        var r1 = RNG(seed: 9), r2 = RNG(seed: 9)
        let withH = model.sample(prompts: prompt, samplesPerPrompt: 3,
                                 config: SamplingConfig(topK: 5, maxNewTokens: 6, recordEntropy: true), rng: &r1)[0]
        let without = model.sample(prompts: prompt, samplesPerPrompt: 3, config: SamplingConfig(topK: 5, maxNewTokens: 6), rng: &r2)[0]
        XCTAssertEqual(withH.map(\.tokens), without.map(\.tokens))
        XCTAssertTrue(without.allSatisfy { $0.entropies.isEmpty })
        for r in withH {
            XCTAssertEqual(r.entropies.count, r.tokens.count)
            for h in r.entropies { XCTAssertEqual(Double(h), log(5.0), accuracy: 1e-4) }
        }
    }

    /// A trained-looking (random) policy: its entropy rises with the temperature and stays below log|V|.
    func testTokenEntropyRisesWithTemperature() throws {
        let task = CodeTask(seed: 2)
        let model = GPT(config: GPTConfig(contextLength: 64, layers: 1, heads: 2, dim: 32), seed: 1)
        let settings = EvalSettings(samples: 4, nList: [1], temperatures: [0.3, 1.0, 2.0], progress: false, majority: false)
        let report = try Evaluator(task: task, verifier: OracleVerifier(task: task), settings: settings)
            .run(model: model, items: task.items(split: .test, range: 0..<3), seed: 3)
        let h = try [0.3, 1.0, 2.0].map { try XCTUnwrap(report.row(n: 1, temperature: $0)?.tokenEntropy) }
        XCTAssertLessThan(h[0], h[1]); XCTAssertLessThan(h[1], h[2])
        XCTAssertLessThan(h[2], log(Double(model.config.vocabSize)) + 1e-6)
        XCTAssertGreaterThan(h[0], 0)
    }
}
