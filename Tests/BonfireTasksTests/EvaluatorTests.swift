// The evaluation runner with a fake sampler: table values match the estimators, JSON and SVG are produced, bad
// settings are rejected with a useful message.
import XCTest
import BonfireModel
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
}
