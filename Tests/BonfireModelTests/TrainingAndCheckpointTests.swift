// End-to-end: the model + AdamW overfit a tiny reverse task; checkpoints round-trip bit-exactly and reject mismatches.
import XCTest
import Foundation
import BonfireMath
import BonfireModel

final class TrainingAndCheckpointTests: XCTestCase {
    /// BOS a b c d | d c b a EOS over letters 3..<11; loss on the answer half only.
    func testOverfitsTinyReverseTaskToNearZeroLoss() {
        let cfg = GPTConfig(vocabSize: 16, contextLength: 12, layers: 2, heads: 2, dim: 32)
        let m = GPT(config: cfg, seed: 1)
        var opt = AdamW(learningRate: 3e-3, beta1: 0.9, beta2: 0.99, weightDecay: 0.0, layout: m.layout)
        var rng = RNG(seed: 2)
        let data: [[Int]] = (0..<16).map { _ in
            let x = (0..<4).map { _ in 3 + rng.int(8) }
            return [1] + x + [15] + x.reversed() + [2]
        }
        let answerFrom = 5   // predict tokens at positions 6… (targets t+1 ≥ 6)
        var loss: Float = .infinity
        for step in 0..<300 {
            m.zeroGrad()
            let stats = m.forwardBackward(data) { lps in
                lps.map { row in row.indices.map { t in t >= answerFrom ? 1 / Float(16 * 5) : 0 } }
            }
            loss = stats.loss
            clipGradNorm(&m.grads, maxNorm: 1)
            opt.update(params: &m.params, grads: m.grads)
            if loss < 0.01 { print("reverse task: loss \(loss) at step \(step)"); break }
        }
        XCTAssertLessThan(loss, 0.02, "mean answer-token NLL after training")
        var r = RNG(seed: 0)
        let out = m.sample(prompts: [Array(data[3].prefix(6))], samplesPerPrompt: 1,
                           config: SamplingConfig(temperature: 0, maxNewTokens: 5), rng: &r)
        XCTAssertEqual(out[0][0].tokens, Array(data[3].suffix(5)))
    }

    func tmp(_ n: String) -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-ckpt-\(ProcessInfo.processInfo.processIdentifier)-\(n)")
    }

    func testCheckpointRoundTripIsBitExactWithOptimizerState() throws {
        let cfg = GPTConfig(vocabSize: 16, contextLength: 8, layers: 1, heads: 2, dim: 8, scalarHead: true)
        let m = GPT(config: cfg, seed: 3)
        var opt = AdamW(learningRate: 1e-3, weightDecay: 0.1, layout: m.layout)
        m.zeroGrad()
        m.forwardBackward([[1, 3, 4, 5]]) { $0.map { $0.map { _ in 1 } } }
        opt.update(params: &m.params, grads: m.grads)
        let url = tmp("rt.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Checkpoint.save(model: m, optimizer: opt, step: 42, metadata: ["run": "abc", "note": "x"], to: url)
        let loaded = try Checkpoint.load(from: url)
        XCTAssertEqual(loaded.config, cfg)
        XCTAssertEqual(loaded.step, 42)
        XCTAssertEqual(loaded.metadata, ["run": "abc", "note": "x"])
        XCTAssertEqual(loaded.model.params.map(\.bitPattern), m.params.map(\.bitPattern))
        XCTAssertEqual(loaded.model.layout, m.layout)
        let lo = try XCTUnwrap(loaded.optimizer)
        XCTAssertEqual(lo, opt)
        // Into an existing model.
        let other = GPT(config: cfg, seed: 99)
        let r = try Checkpoint.load(from: url, into: other)
        XCTAssertEqual(other.params, m.params)
        XCTAssertEqual(r.step, 42)
        XCTAssertEqual(r.optimizer?.m, opt.m)
    }

    func testLoadingIntoAMismatchedModelNamesTheTensor() throws {
        let url = tmp("mm.safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        let cfg = GPTConfig(vocabSize: 16, contextLength: 8, layers: 1, heads: 2, dim: 8)
        try Checkpoint.save(model: GPT(config: cfg, seed: 1), optimizer: nil, step: 0, metadata: [:], to: url)
        XCTAssertThrowsError(try Checkpoint.load(from: url, into: GPT(config: GPTConfig(vocabSize: 16, contextLength: 8, layers: 1, heads: 2, dim: 16), seed: 1))) {
            XCTAssertTrue("\($0)".contains("config"), "\($0)")
        }
        // A raw file whose tensor has a wrong shape (config metadata matches) names the tensor.
        let m = GPT(config: cfg, seed: 1)
        var tensors: [SafeTensors.NamedTensor] = m.layout.entries.map { ($0.name, $0.shape, Array(m.params[$0.range])) }
        let k = tensors.firstIndex { $0.name == "h.0.attn.c_attn.weight" }!
        tensors[k] = (tensors[k].name, [tensors[k].data.count], tensors[k].data)
        let meta = try SafeTensors.read(from: url).metadata
        try SafeTensors.write(to: url, tensors: tensors, metadata: meta)
        XCTAssertThrowsError(try Checkpoint.load(from: url)) { XCTAssertTrue("\($0)".contains("h.0.attn.c_attn.weight"), "\($0)") }
        var bad = meta; bad["bonfire.tokenizer_version"] = "0"
        try SafeTensors.write(to: url, tensors: tensors, metadata: bad)
        XCTAssertThrowsError(try Checkpoint.load(from: url)) { XCTAssertTrue("\($0)".contains("tokenizer"), "\($0)") }
    }
}
