// Verifiers (oracle, noisy, learned) and the verifier factory.
import XCTest
import BonfireModel
import BonfireTasks

final class VerifierTests: XCTestCase {
    func testOracleScoresAreTheReward() {
        let task = MathTask(seed: 1)
        let item = task.item(split: .test, index: 0)
        let ys = [item.reference, "1#", "nonsense", item.answer + "#"]
        XCTAssertEqual(OracleVerifier(task: task).scores(item: item, responses: ys),
                       ys.map { task.reward(item: item, response: $0).reward })
    }

    func testNoisyVerifierIsDeterministicAndHasTheConfiguredErrorRates() {
        let task = MathTask(seed: 1)
        let v = NoisyVerifier(task: task, falsePositiveRate: 0.2, falseNegativeRate: 0.3, seed: 5)
        var fp = 0, neg = 0, fn = 0, pos = 0
        for i in 0..<600 {
            let item = task.item(split: .train, index: i)
            let ys = [item.reference, item.answer + "#", "\(Int(item.answer)! + 1)#", "x#"]
            let s = v.scores(item: item, responses: ys)
            XCTAssertEqual(s, v.scores(item: item, responses: ys), "deterministic per (item, response)")
            XCTAssertEqual(s[0], v.scores(item: item, responses: [ys[0]])[0], "independent of batch composition")
            for (y, score) in zip(ys, s) {
                XCTAssertTrue(score >= 0 && score < 1)
                if task.reward(item: item, response: y).reward == 1 { pos += 1; if score < 0.5 { fn += 1 } }
                else { neg += 1; if score >= 0.5 { fp += 1 } }
            }
        }
        XCTAssertEqual(Double(fp) / Double(neg), 0.2, accuracy: 0.04)
        XCTAssertEqual(Double(fn) / Double(pos), 0.3, accuracy: 0.04)
        let other = NoisyVerifier(task: task, falsePositiveRate: 0.2, falseNegativeRate: 0.3, seed: 6)
        let item = task.item(split: .train, index: 0)
        XCTAssertNotEqual(v.scores(item: item, responses: ["1#"]), other.scores(item: item, responses: ["1#"]))
        // Perfect channel keeps the ordering; binary mode produces ties.
        let perfect = NoisyVerifier(task: task, falsePositiveRate: 0, falseNegativeRate: 0, continuous: false)
        XCTAssertEqual(perfect.scores(item: item, responses: [item.reference, "x"]), [1, 0])
    }

    func testMakeVerifierParsesSpecsAndExplainsErrors() throws {
        let task = MathTask(seed: 1)
        XCTAssertEqual(try makeVerifier(name: "oracle", task: task, seed: 0).name, "oracle")
        let noisy = try makeVerifier(name: "noisy:fp=0.05,fn=0.25", task: task, seed: 0) as? NoisyVerifier
        XCTAssertEqual(noisy?.falsePositiveRate, 0.05)
        XCTAssertEqual(noisy?.falseNegativeRate, 0.25)
        for bad in ["magic", "noisy:fp=2", "learned", "learned:/nonexistent/v.safetensors"] {
            XCTAssertThrowsError(try makeVerifier(name: bad, task: task, seed: 0), bad) { e in
                XCTAssertFalse("\(e)".isEmpty)
            }
        }
    }

    func testLearnedVerifierBeatsChanceOnHeldOutSamples() throws {
        // Labelled data without a policy: references and corrupted copies of level-1/2 math items.
        let task = MathTask(seed: 3, levelWeights: [(1, 1), (2, 1)])
        let train = VerifierData.referenceAndCorrupted(task: task, items: task.items(split: .train, range: 0..<300),
                                                       corruptionsPerItem: 2, seed: 1)
        let heldOut = VerifierData.referenceAndCorrupted(task: task, items: task.items(split: .validation, range: 0..<100),
                                                         corruptionsPerItem: 2, seed: 2)
        let positives = train.filter { $0.label == 1 }.count
        XCTAssertTrue(positives > 250 && positives < train.count - 250, "both classes present (\(positives))")
        let verifier = LearnedVerifier(model: LearnedVerifier.makeModel(
            config: GPTConfig(contextLength: 64, layers: 1, heads: 2, dim: 32, scalarHead: true), seed: 9))
        let scoresOf = { (ex: [VerifierExample]) in ex.map { verifier.scores(item: $0.item, responses: [$0.response])[0] } }
        let before = Estimators.auc(scores: scoresOf(heldOut), labels: heldOut.map { $0.label })!
        let losses = VerifierTrainer.train(verifier, examples: train,
                                           config: VerifierTrainingConfig(steps: 150, batchSize: 32, learningRate: 3e-3),
                                           seed: 4)
        XCTAssertTrue(losses.allSatisfy { $0.isFinite })
        let after = Estimators.auc(scores: scoresOf(heldOut), labels: heldOut.map { $0.label })!
        print("learned verifier held-out AUC: before \(before), after \(after); loss \(losses.first!) → \(losses.suffix(10).reduce(0, +) / 10)")
        XCTAssertGreaterThan(after, 0.6, "held-out AUC beats chance")
        // Round trip through safetensors.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("verifier-\(getpid()).safetensors").path
        try verifier.save(path: path)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let loaded = try makeVerifier(name: "learned:\(path)", task: task, seed: 0)
        let ex = heldOut[0]
        XCTAssertEqual(loaded.scores(item: ex.item, responses: [ex.response]), verifier.scores(item: ex.item, responses: [ex.response]))
    }
}
