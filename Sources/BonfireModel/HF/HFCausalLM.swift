// A Hugging Face causal-LM directory as a Bonfire model, and back:
//   load:  config.json → HFModelConfig (strict, HFConfig.swift) → model (GPT for gpt2, LlamaModel for llama/qwen2)
//          → every tensor copied (f32/f16/bf16 → f32) from model.safetensors or the shards of
//          model.safetensors.index.json into the ONE parameter buffer, by name and shape; GPT-2's Conv1D weights
//          (in, out) are transposed into Linear (out, in) order. Missing, extra, mis-shaped tensors → thrown errors.
//   save:  config.json (the original bytes, or generated for a fresh model) + one model.safetensors with the HF
//          names, each tensor in the dtype it was loaded with (or one dtype for all), metadata {"format": "pt"};
//          tokenizer and generation files of the source directory are copied alongside.
// The runtime uses `model.params` / `model.layout` like a GPT's (one blob for broadcast and checkpoints).

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import BonfireMath

package final class HFCausalLM {
    package let config: HFModelConfig
    package let model: any LanguageModel
    /// config.json as read (written back unchanged unless the dtype changes).
    package let configJSON: Data
    /// Stored dtype per HF tensor name (what `save` writes unless told otherwise).
    package let tensorDTypes: [String: HFDType]
    /// Where it was loaded from (nil for a fresh model); tokenizer files are copied from here on save.
    package let sourceDirectory: URL?
    /// GPT-2 only: "transformer." or "" (the prefix the checkpoint's tensor names used).
    let gpt2Prefix: String

    package var architecture: HFArchitecture { config.architecture }
    package var parameterCount: Int { model.layout.totalCount }

    init(config: HFModelConfig, model: any LanguageModel, configJSON: Data, tensorDTypes: [String: HFDType],
         sourceDirectory: URL?, gpt2Prefix: String) {
        self.config = config; self.model = model; self.configJSON = configJSON; self.tensorDTypes = tensorDTypes
        self.sourceDirectory = sourceDirectory; self.gpt2Prefix = gpt2Prefix
    }

    /// A freshly initialised Llama-family model (seeded) with a generated config.json; for benchmarks and tests.
    package convenience init(fresh c: LlamaConfig, architecture: HFArchitecture = .llama, seed: UInt64, dtype: HFDType = .f32) {
        precondition(architecture != .gpt2, "HFCausalLM(fresh:): use a Llama-family architecture")
        let m = LlamaModel(config: c, seed: seed)
        let json = HFCausalLM.configDictionary(c, architecture: architecture, dtype: dtype)
        let data = try! JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        self.init(config: .llama(c, architecture), model: m, configJSON: data,
                  tensorDTypes: Dictionary(uniqueKeysWithValues: m.layout.entries.map { ($0.name, dtype) }),
                  sourceDirectory: nil, gpt2Prefix: "")
    }

    // MARK: tensor mapping

    /// (HF name, stored shape, Bonfire layout entry, transpose) for every parameter of the model.
    package func mapping() -> [(hf: String, shape: [Int], entry: ParameterLayout.Entry, transpose: Bool)] {
        switch config {
        case .llama:
            return model.layout.entries.map { ($0.name, $0.shape, $0, false) }
        case .gpt2:
            return model.layout.entries.map { e in
                let conv = e.name.hasSuffix("c_attn.weight") || e.name.hasSuffix("c_proj.weight") || e.name.hasSuffix("c_fc.weight")
                let hfName = gpt2Prefix + (e.name == "wte" || e.name == "wpe" ? e.name + ".weight" : e.name)
                return (hfName, conv ? [e.shape[1], e.shape[0]] : e.shape, e, conv)
            }
        }
    }

    /// Tensors a checkpoint may carry that are not parameters (non-persistent buffers of older transformers).
    func ignorable(_ name: String) -> Bool {
        switch config {
        case .gpt2: return name.hasSuffix(".attn.bias") || name.hasSuffix(".attn.masked_bias") || name == "lm_head.weight"
        case .llama(let c, _): return name.hasSuffix("rotary_emb.inv_freq") || (c.tiedHead && name == "lm_head.weight")
        }
    }

    // MARK: load

    /// Loads a Hugging Face model directory (config.json + model.safetensors or a sharded index).
    package static func load(directory: URL) throws -> HFCausalLM {
        let cfgURL = directory.appendingPathComponent("config.json")
        let cfgData: Data
        do { cfgData = try Data(contentsOf: cfgURL) } catch {
            throw HFError("cannot read \(cfgURL.path): \(error.localizedDescription); point model.path at a Hugging Face model directory")
        }
        let config = try HFConfigReader(data: cfgData, source: cfgURL.path).modelConfig()
        let store = try HFTensorStore(directory: directory)
        let model: any LanguageModel
        var prefix = ""
        switch config {
        case .gpt2(let c):
            model = GPT(config: c, seed: 0, randomInit: false)
            prefix = store.tensors["transformer.wte.weight"] != nil ? "transformer." : ""
        case .llama(let c, _):
            model = LlamaModel(config: c, seed: 0, randomInit: false)
        }
        let lm = HFCausalLM(config: config, model: model, configJSON: cfgData, tensorDTypes: [:],
                            sourceDirectory: directory, gpt2Prefix: prefix)
        var dtypes: [String: HFDType] = [:]
        let map = lm.mapping()
        // Straight into the model's buffer: no second copy of a large model (the model is discarded on error).
        try model.params.withUnsafeMutableBufferPointer { pb in
            for m in map {
                guard store.tensors[m.hf] != nil else {
                    throw HFError("\(directory.path): tensor \(m.hf) is missing; the checkpoint does not match config.json (\(config.architecture.rawValue))")
                }
                try store.copy(m.hf, shape: m.shape, into: pb.baseAddress! + m.entry.offset, transpose2D: m.transpose)
                dtypes[m.hf] = store.tensors[m.hf]!.dtype
            }
        }
        let known = Set(map.map(\.hf))
        for name in store.tensors.keys.sorted() where !known.contains(name) && !lm.ignorable(name) {
            throw HFError("\(directory.path): tensor \(name) is not part of the \(config.architecture.className) layout Bonfire implements (unsupported architecture variant?)")
        }
        if let bad = model.params.firstIndex(where: { !$0.isFinite }) {
            let name = map.first { $0.entry.range.contains(bad) }?.hf ?? "?"
            throw HFError("\(directory.path): tensor \(name) holds a non-finite value (\(model.params[bad]))")
        }
        return HFCausalLM(config: config, model: model, configJSON: cfgData, tensorDTypes: dtypes,
                          sourceDirectory: directory, gpt2Prefix: prefix)
    }

    // MARK: save

    /// Writes config.json + model.safetensors (+ tokenizer files of the source) into `directory` (created if
    /// needed). `dtype` nil keeps each tensor's loaded dtype. Throws on non-finite parameters (nothing is replaced).
    package func save(to directory: URL, dtype: HFDType? = nil) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: directory, withIntermediateDirectories: true)
        if fm.fileExists(atPath: directory.appendingPathComponent("model.safetensors.index.json").path) {
            throw HFError("\(directory.path) holds a sharded checkpoint (model.safetensors.index.json); save into an empty directory")
        }
        let params = model.params
        let items: [HFSafeTensorsWriter.Item] = mapping().map { m in
            let dt = dtype ?? tensorDTypes[m.hf] ?? .f32
            return HFSafeTensorsWriter.Item(name: m.hf, shape: m.shape, dtype: dt) { dst in
                params.withUnsafeBufferPointer { pb in
                    let src = pb.baseAddress! + m.entry.offset
                    if m.transpose {
                        // stored (R, C) = transpose of the layout's (C, R)
                        let R = m.shape[0], Cc = m.shape[1]
                        for r in 0..<R { for c in 0..<Cc { dst[r * Cc + c] = src[c * R + r] } }
                    } else {
                        dst.update(from: src, count: m.entry.count)
                    }
                }
            }
        }
        try HFSafeTensorsWriter.write(items, metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
        var cfg = configJSON
        if let dtype, var obj = (try? JSONSerialization.jsonObject(with: configJSON)) as? [String: Any] {
            if obj["dtype"] != nil { obj["dtype"] = dtype.torchName } else { obj["torch_dtype"] = dtype.torchName }
            cfg = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
        }
        try cfg.write(to: directory.appendingPathComponent("config.json"), options: .atomic)
        if let src = sourceDirectory, src.standardizedFileURL != directory.standardizedFileURL,
           let names = try? fm.contentsOfDirectory(atPath: src.path) {
            for n in names where n != "config.json" && !n.hasPrefix("model") && !n.hasPrefix(".")
                && (n.hasSuffix(".json") || n.hasSuffix(".txt") || n.hasSuffix(".model")) {
                let dst = directory.appendingPathComponent(n)
                try? fm.removeItem(at: dst)
                try fm.copyItem(at: src.appendingPathComponent(n), to: dst)
            }
        }
    }

    /// config.json contents for a Llama-family config (transformers 4 field names, which 5 also reads).
    package static func configDictionary(_ c: LlamaConfig, architecture: HFArchitecture, dtype: HFDType) -> [String: Any] {
        var d: [String: Any] = [
            "model_type": architecture.rawValue, "architectures": [architecture.className],
            "vocab_size": c.vocabSize, "hidden_size": c.dim, "intermediate_size": c.hidden,
            "num_hidden_layers": c.layers, "num_attention_heads": c.heads, "num_key_value_heads": c.kvHeads,
            "head_dim": c.headDim, "max_position_embeddings": c.contextLength, "rms_norm_eps": Double(c.rmsEps),
            "rope_theta": c.ropeTheta, "hidden_act": "silu", "tie_word_embeddings": c.tiedHead,
            "torch_dtype": dtype.torchName,
        ]
        switch c.ropeScaling {
        case .none: d["rope_scaling"] = NSNull()
        case .linear(let f): d["rope_scaling"] = ["rope_type": "linear", "factor": f]
        case .llama3(let f, let lo, let hi, let old):
            d["rope_scaling"] = ["rope_type": "llama3", "factor": f, "low_freq_factor": lo, "high_freq_factor": hi,
                                 "original_max_position_embeddings": old]
        }
        if architecture == .llama {
            precondition(c.qkvBias == c.outputBias, "configDictionary: llama has one attention_bias for q/k/v/o")
            d["attention_bias"] = c.qkvBias
        } else {
            precondition(c.qkvBias && !c.outputBias, "configDictionary: qwen2 has q/k/v biases and no o_proj bias")
        }
        return d
    }
}
