// Hostile and careless inputs to the Hugging Face loader: unsupported architectures and config values must throw an
// error naming the field, the value and what is supported; damaged files (truncated, wrong shapes, missing or extra
// tensors, unknown dtypes, NaN weights, shard names escaping the directory) must throw — never trap.
import XCTest
import Foundation
import BonfireMath
import BonfireModel

final class HFLoaderTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-hf-loader-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    /// A writable copy of a fixture directory.
    func copy(_ name: String) throws -> URL {
        let dst = tmp.appendingPathComponent(name)
        try FileManager.default.copyItem(at: try HFReferenceFixtureTests.fixtureDir(name), to: dst)
        return dst
    }

    func editConfig(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("config.json")
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&obj)
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
    }

    func expectError(_ dir: URL, mentions words: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try HFCausalLM.load(directory: dir), file: file, line: line) { e in
            let s = "\(e)"
            for w in words { XCTAssertTrue(s.contains(w), "error \"\(s)\" should mention \(w)", file: file, line: line) }
        }
    }

    // MARK: config.json

    func testUnsupportedConfigValuesNameTheFieldTheValueAndWhatIsSupported() throws {
        let cases: [(String, (inout [String: Any]) -> Void, [String])] = [
            ("llama_gqa_llama3", { $0["model_type"] = "gemma" }, ["model_type", "gemma", "supported", "llama"]),
            ("llama_gqa_llama3", { $0.removeValue(forKey: "model_type") }, ["model_type", "missing"]),
            ("llama_gqa_llama3", { $0["architectures"] = ["LlamaForSequenceClassification"] }, ["architectures", "LlamaForCausalLM"]),
            ("llama_gqa_llama3", { $0["hidden_act"] = "gelu" }, ["hidden_act", "gelu", "silu"]),
            ("llama_gqa_llama3", { $0["mlp_bias"] = true }, ["mlp_bias"]),
            ("llama_gqa_llama3", { $0["pretraining_tp"] = 2 }, ["pretraining_tp", "2"]),
            ("llama_gqa_llama3", { var r = $0["rope_parameters"] as! [String: Any]; r["rope_type"] = "yarn"; $0["rope_parameters"] = r },
             ["rope_type", "yarn", "linear", "llama3"]),
            ("llama_gqa_llama3", { $0.removeValue(forKey: "rope_parameters"); $0["rope_theta"] = 10000.0
                                   $0["rope_scaling"] = ["type": "dynamic", "factor": 2.0] }, ["rope_scaling.rope_type", "dynamic"]),
            ("llama_gqa_llama3", { var r = $0["rope_parameters"] as! [String: Any]; r.removeValue(forKey: "low_freq_factor"); $0["rope_parameters"] = r },
             ["low_freq_factor", "missing"]),
            ("llama_gqa_llama3", { $0["num_key_value_heads"] = 3 }, ["num_key_value_heads", "3"]),
            ("llama_gqa_llama3", { $0["num_attention_heads"] = -4 }, ["num_attention_heads", "-4"]),
            ("llama_gqa_llama3", { $0["hidden_size"] = 1e30 }, ["hidden_size"]),
            ("llama_gqa_llama3", { $0["hidden_size"] = "32" }, ["hidden_size"]),
            ("llama_gqa_llama3", { $0["vocab_size"] = true }, ["vocab_size"]),
            ("llama_gqa_llama3", { $0["head_dim"] = 7 }, ["head_dim", "7"]),
            ("llama_gqa_llama3", { $0["partial_rotary_factor"] = 0.5 }, ["partial_rotary_factor"]),
            ("llama_gqa_llama3", { $0["tie_word_embeddings"] = "yes" }, ["tie_word_embeddings"]),
            ("qwen2_bias_sharded", { $0["use_sliding_window"] = true }, ["use_sliding_window"]),
            ("gpt2", { $0["activation_function"] = "relu" }, ["activation_function", "relu", "gelu_new"]),
            ("gpt2", { $0["n_inner"] = 100 }, ["n_inner", "100"]),
            ("gpt2", { $0["layer_norm_epsilon"] = 1e-6 }, ["layer_norm_epsilon"]),
            ("gpt2", { $0["tie_word_embeddings"] = false }, ["tie_word_embeddings"]),
            ("gpt2", { $0["scale_attn_by_inverse_layer_idx"] = true }, ["scale_attn_by_inverse_layer_idx"]),
        ]
        for (i, (name, edit, words)) in cases.enumerated() {
            let d = try copy(name)
            try editConfig(d, edit)
            expectError(d, mentions: words)
            try FileManager.default.removeItem(at: d)
            _ = i
        }
    }

    func testMissingOrGarbledConfigThrows() throws {
        let d = try copy("gpt2")
        try Data("{not json".utf8).write(to: d.appendingPathComponent("config.json"))
        expectError(d, mentions: ["config.json", "JSON"])
        try Data("[1, 2]".utf8).write(to: d.appendingPathComponent("config.json"))
        expectError(d, mentions: ["object"])
        try FileManager.default.removeItem(at: d.appendingPathComponent("config.json"))
        expectError(d, mentions: ["config.json"])
        expectError(tmp.appendingPathComponent("does-not-exist"), mentions: ["config.json"])
    }

    /// A config whose sizes disagree with the stored tensors → a shape error naming the tensor.
    func testShapeMismatchNamesTheTensor() throws {
        let d = try copy("llama_gqa_llama3")
        try editConfig(d, { $0["intermediate_size"] = 40 })
        expectError(d, mentions: ["mlp.gate_proj.weight", "shape"])
        let g = try copy("gpt2")
        try editConfig(g, { $0["n_positions"] = 64 })
        expectError(g, mentions: ["wpe.weight", "shape"])
    }

    // MARK: safetensors files

    func testTruncatedAndGarbageWeightFilesThrow() throws {
        let d = try copy("llama_f16_bias_mqa")
        let f = d.appendingPathComponent("model.safetensors")
        let whole = try Data(contentsOf: f)
        for cut in [whole.count - 1, whole.count / 2, 100, 9, 3, 0] {
            try whole.prefix(cut).write(to: f)
            expectError(d, mentions: ["model.safetensors"])
        }
        var huge = whole; huge.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        try huge.write(to: f)
        expectError(d, mentions: ["header length"])
        var garbage = whole; garbage.replaceSubrange(8..<20, with: [UInt8](repeating: 0x41, count: 12))
        try garbage.write(to: f)
        expectError(d, mentions: ["header"])
        try FileManager.default.removeItem(at: f)
        expectError(d, mentions: ["model.safetensors"])
    }

    /// Rewrites the fixture's tensors (as f32) after `edit` changes the list.
    func rewrite(_ d: URL, _ edit: (inout [(String, [Int], [Float], HFDType)]) -> Void) throws {
        let lm = try HFCausalLM.load(directory: try HFReferenceFixtureTests.fixtureDir(d.lastPathComponent))
        var items: [(String, [Int], [Float], HFDType)] = lm.mapping().map { m in
            var v = Array(lm.model.params[m.entry.range])
            if m.transpose { let R = m.shape[0], C = m.shape[1]; v = (0..<(R * C)).map { i in v[(i % C) * R + i / C] } }
            return (m.hf, m.shape, v, .f32)
        }
        edit(&items)
        try HFSafeTensorsWriter.write(items.map { it in
            HFSafeTensorsWriter.Item(name: it.0, shape: it.1, dtype: it.3) { p in for (i, x) in it.2.enumerated() { p[i] = x } }
        }, metadata: ["format": "pt"], to: d.appendingPathComponent("model.safetensors"))
    }

    func testMissingExtraAndNonFiniteTensorsThrow() throws {
        let d = try copy("llama_gqa_llama3")
        try rewrite(d) { $0.removeAll { $0.0 == "model.layers.1.self_attn.v_proj.weight" } }
        expectError(d, mentions: ["model.layers.1.self_attn.v_proj.weight", "missing"])
        try rewrite(d) { $0.append(("model.layers.0.self_attn.q_norm.weight", [8], [Float](repeating: 1, count: 8), .f32)) }
        expectError(d, mentions: ["q_norm", "not part"])
        try rewrite(d) { $0.append(("model.layers.0.self_attn.rotary_emb.inv_freq", [4], [1, 2, 3, 4], .f32)) }
        XCTAssertNoThrow(try HFCausalLM.load(directory: d), "rotary inv_freq buffers of older checkpoints are ignored")
        // Non-finite values: written raw (the writer refuses them), so patch bytes of a valid file.
        try rewrite(d) { _ in }
        let f = d.appendingPathComponent("model.safetensors")
        var bytes = [UInt8](try Data(contentsOf: f))
        let n = bytes.count
        bytes.replaceSubrange((n - 4)..<n, with: [0x00, 0x00, 0xC0, 0x7F])   // NaN as the last f32
        try Data(bytes).write(to: f)
        expectError(d, mentions: ["non-finite"])
    }

    func testUnsupportedDTypeAndInconsistentOffsetsThrow() throws {
        func file(_ header: String, payload: Int) -> Data {
            var h = Array(header.utf8); while h.count % 8 != 0 { h.append(0x20) }
            var d = [UInt8](); var n = UInt64(h.count); for _ in 0..<8 { d.append(UInt8(n & 0xFF)); n >>= 8 }
            return Data(d + h + [UInt8](repeating: 0, count: payload))
        }
        let d = try copy("gpt2")
        let f = d.appendingPathComponent("model.safetensors")
        let bad: [(String, Int, String)] = [
            ("{\"transformer.wte.weight\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "I32"),
            ("{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "needs 12 bytes"),
            ("{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,800]}}", 8, "outside"),
            ("{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape"),
            ("{\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, "shape"),
            ("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlaps"),
            ("{\"a\":{\"dtype\":\"F32\"}}", 0, "data_offsets"),
        ]
        for (h, payload, word) in bad {
            try file(h, payload: payload).write(to: f)
            expectError(d, mentions: [word])
        }
        // A valid file with a tensor of the right name but the wrong dtype width is caught by the byte count, and a
        // tensor stored with a different dtype than the rest loads (converted) — per-tensor dtype is kept.
    }

    func testShardIndexThatEscapesTheDirectoryOrDisagreesWithShardsThrows() throws {
        let d = try copy("qwen2_bias_sharded")
        let idx = d.appendingPathComponent("model.safetensors.index.json")
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: idx)) as! [String: Any]
        var map = obj["weight_map"] as! [String: String]
        let first = map.keys.sorted()[0]
        let original = map[first]!
        map[first] = "../../etc/passwd"
        obj["weight_map"] = map
        try JSONSerialization.data(withJSONObject: obj).write(to: idx)
        expectError(d, mentions: ["not a file name"])
        // Listed in the other shard than where it is.
        let other = Set(map.values).subtracting([original, "../../etc/passwd"]).first!
        map[first] = other
        obj["weight_map"] = map
        try JSONSerialization.data(withJSONObject: obj).write(to: idx)
        expectError(d, mentions: ["index"])
        map[first] = "model-99999.safetensors"
        obj["weight_map"] = map
        try JSONSerialization.data(withJSONObject: obj).write(to: idx)
        expectError(d, mentions: ["model-99999.safetensors"])
        try Data("{\"weight_map\": 3}".utf8).write(to: idx)
        expectError(d, mentions: ["weight_map"])
    }

    func testSavingIntoAShardedDirectoryIsRefused() throws {
        let d = try copy("qwen2_bias_sharded")
        let lm = try HFCausalLM.load(directory: d)
        XCTAssertThrowsError(try lm.save(to: d)) { XCTAssertTrue("\($0)".contains("sharded"), "\($0)") }
    }

    /// A fresh model's generated config.json is read back to the same configuration (llama and qwen2).
    func testFreshModelConfigRoundTrips() throws {
        let c = LlamaConfig(vocabSize: 20, dim: 16, hidden: 24, layers: 1, heads: 4, kvHeads: 2, contextLength: 16,
                            rmsEps: 1e-5, ropeTheta: 5e5,
                            ropeScaling: .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192),
                            tiedHead: false)
        let lm = HFCausalLM(fresh: c, seed: 3, dtype: .bf16)
        let out = tmp.appendingPathComponent("fresh")
        try lm.save(to: out)
        let back = try HFCausalLM.load(directory: out)
        XCTAssertEqual(back.config, .llama(c, .llama))
        var q = c; q.qkvBias = true
        let lq = HFCausalLM(fresh: q, architecture: .qwen2, seed: 3)
        try lq.save(to: tmp.appendingPathComponent("fresh-q"))
        XCTAssertEqual(try HFCausalLM.load(directory: tmp.appendingPathComponent("fresh-q")).config, .llama(q, .qwen2))
    }
}
