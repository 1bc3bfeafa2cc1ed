// `bonfire train-verifier` through the real executable: the trunk and ranking options, what it reports (pooled and
// within-prompt AUC, Bo-N against pass@N), and hostile values stopping before any work with a message saying what to do.
import BonfireModel
import BonfireTasks
import Foundation
import XCTest

final class TrainVerifierCommandTests: XCTestCase {
    typealias T = MonitoringTestTools

    func testPolicyTrunkIsTheDefaultWithAPolicyAndTheReportHasTheWithinPromptAUC() throws {
        let exe = try T.bonfireExecutable()
        let dir = T.tempDir("tv-trunk")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // A (random, tiny) policy checkpoint of the default tokenizer.
        let policy = GPT(config: GPTConfig(vocabSize: Tokenizer.vocabSize, contextLength: 64, layers: 1, heads: 2, dim: 16), seed: 1)
        let ckpt = dir.appendingPathComponent("policy.safetensors")
        try Checkpoint.save(model: policy, optimizer: nil, step: 0, metadata: [:], to: ckpt)
        let out = dir.appendingPathComponent("v.safetensors").path
        let r = try T.run(exe, ["train-verifier", "--policy", ckpt.path, "--prompts", "12", "--samples", "4",
                                "--held-out-prompts", "6", "--steps", "5", "--out", out],
                          timeout: 120, env: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertEqual(r.status, 0, r.err)
        XCTAssertTrue(r.out.contains("trunk policy (L1 d16 h2), loss BCE + 1.0 × within-prompt pairwise"), r.out)
        XCTAssertTrue(r.out.contains("held-out within-prompt AUC:"), r.out)
        XCTAssertTrue(r.out.contains("held-out N=4 "), r.out)
        // The verifier has the policy's shape and trunk (plus the scalar head).
        let v = try LearnedVerifier.load(path: out)
        XCTAssertEqual(v.model.config.layers, 1); XCTAssertEqual(v.model.config.dim, 16)
        // A verifier is not a policy.
        let again = try T.run(exe, ["train-verifier", "--policy", out, "--prompts", "4", "--held-out-prompts", "2",
                                    "--steps", "1", "--out", dir.appendingPathComponent("w.safetensors").path],
                              timeout: 60, env: ["OPENBLAS_NUM_THREADS": "1"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.err.contains("is a verifier") && again.err.contains("bonfire train"), again.err)
    }

    func testHostileOptionsStopWithAMessageSayingWhatToDo() throws {
        let exe = try T.bonfireExecutable()
        let dir = T.tempDir("tv-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("v.safetensors").path
        let cases: [([String], [String])] = [
            (["--ranking-weight=-1"], ["--ranking-weight", "≥ 0"]),
            (["--ranking-weight", "nan"], ["--ranking-weight"]),
            (["--ranking-weight", "inf"], ["--ranking-weight", "finite"]),
            (["--trunk", "bogus"], ["--trunk", "policy", "fresh"]),
            (["--trunk", "policy"], ["--trunk policy needs a policy checkpoint", "--trunk fresh"]),
            (["--trunk", "fresh", "--dim", "30", "--heads", "4"], ["divisible"]),
            (["--policy", dir.appendingPathComponent("missing.safetensors").path], ["does not exist"]),
        ]
        for (args, parts) in cases {
            let r = try T.run(exe, ["train-verifier", "--steps", "1", "--prompts", "2", "--held-out-prompts", "1", "--out", out] + args,
                              timeout: 60, env: ["OPENBLAS_NUM_THREADS": "1"])
            XCTAssertNotEqual(r.status, 0, "\(args) should fail; out: \(r.out)")
            for p in parts { XCTAssertTrue(r.err.contains(p), "\(args): message should mention '\(p)':\n\(r.err)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(args) wrote a verifier")
        }
    }
}
