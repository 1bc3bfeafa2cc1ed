// Matches the Swift GPT against the PyTorch reference written by Scripts/make-model-fixture.py (float64 maths):
// logits, loss and every parameter gradient. Prints llm.c-style "TENSOR OK maxabs/maxrel" lines. Also writes the
// fixture weights as a Swift checkpoint to $TMPDIR/bonfire-swift-written.safetensors, which
// `python3 Scripts/make-model-fixture.py --check-swift <that file>` loads with Python's safetensors.
import XCTest
import Foundation
import BonfireMath
import BonfireModel

final class ReferenceFixtureTests: XCTestCase {
    func loadFixture() throws -> (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]) {
        guard let url = Bundle.module.url(forResource: "gpt_reference", withExtension: "safetensors", subdirectory: "Fixtures") else {
            XCTFail("fixture missing: run python3 Scripts/make-model-fixture.py"); throw CheckpointError("no fixture")
        }
        return try SafeTensors.read(from: url)
    }

    /// max |a − e| and max |a − e| / max(|e|, floor), floor = 1e-2·max|e| of the tensor: relative error "where
    /// meaningful" (float32 vs the float64 reference leaves ~1e-6 absolute noise on near-zero entries).
    func compare(_ a: [Float], _ e: [Float], _ name: String, rtol: Double = 1e-4) {
        XCTAssertEqual(a.count, e.count, name)
        let scale = Double(e.map { abs($0) }.max() ?? 0)
        var maxAbs = 0.0, maxRel = 0.0
        for (x, y) in zip(a, e) {
            let d = abs(Double(x) - Double(y))
            maxAbs = max(maxAbs, d)
            maxRel = max(maxRel, d / max(abs(Double(y)), 1e-2 * scale, 1e-12))
        }
        print(String(format: "%@ %-28@ maxabs %.3e  maxrel %.3e", maxRel <= rtol ? "OK  " : "FAIL", name, maxAbs, maxRel))
        XCTAssertLessThanOrEqual(maxRel, rtol, "\(name): max relative difference \(maxRel) (max abs \(maxAbs))")
    }

    func testMatchesPyTorchLogitsLossAndEveryGradient() throws {
        let fx = try loadFixture()
        let cfg = try JSONDecoder().decode(GPTConfig.self, from: Data(fx.metadata["config"]!.utf8))
        let temperature = Float(fx.metadata["temperature"]!)!, coef = Float(fx.metadata["entropy_coefficient"]!)!
        let model = GPT(config: cfg, seed: 0)
        for e in model.layout.entries {
            let t = try XCTUnwrap(fx.tensors[e.name], "fixture lacks \(e.name)")
            XCTAssertEqual(t.shape, e.shape, e.name)
            model.params.replaceSubrange(e.range, with: t.data)
        }
        let tok = fx.tensors["batch.tokens"]!, lens = fx.tensors["batch.lengths"]!.data.map { Int($0) }
        let (B, T) = (tok.shape[0], tok.shape[1])
        let seqs = (0..<B).map { b in (0..<lens[b]).map { Int(tok.data[b * T + $0]) } }
        let w = fx.tensors["batch.weights"]!.data
        let weights = (0..<B).map { b in (0..<(lens[b] - 1)).map { w[b * (T - 1) + $0] } }

        // Logits on real rows.
        let lg = model.logits(seqs)
        let ref = fx.tensors["logits"]!.data, V = cfg.vocabSize
        var ours: [Float] = [], theirs: [Float] = []
        for b in 0..<B { for t in 0..<lens[b] { ours += lg[b][t]; theirs += ref[((b * T) + t) * V ..< ((b * T) + t + 1) * V] } }
        compare(ours, theirs, "logits")

        model.zeroGrad()
        let stats = model.forwardBackward(seqs, temperature: temperature, entropyCoefficient: coef) { lps in
            XCTAssertEqual(lps.map(\.count), weights.map(\.count))
            return weights
        }
        compare([stats.loss], fx.tensors["loss"]!.data, "loss")
        for e in model.layout.entries {
            compare(Array(model.grads[e.range]), fx.tensors["grad." + e.name]!.data, "grad." + e.name)
        }

        // Swift-written checkpoint for the Python side (see file header).
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-swift-written.safetensors")
        try Checkpoint.save(model: model, optimizer: nil, step: 7, metadata: ["source": "ReferenceFixtureTests"], to: out)
        print("wrote \(out.path)")
    }
}
