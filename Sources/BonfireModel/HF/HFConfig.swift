// Hugging Face `config.json` → a Bonfire architecture description, strictly: every field that changes the maths is
// read, and a value Bonfire does not implement is an error naming the field, the value and what is supported.
// Supported: model_type gpt2 (GPT2LMHeadModel) → the existing `GPT`; llama (LlamaForCausalLM: Llama 2/3, SmolLM) and
// qwen2 (Qwen2ForCausalLM) → `LlamaModel`. Both the transformers 4 layout (`rope_theta` + `rope_scaling`) and the
// transformers 5 layout (`rope_parameters`) are read.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import BonfireMath

package struct HFError: Error, CustomStringConvertible {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { "hf: \(message)" }
}

/// Rotary frequency scaling (`rope_scaling.rope_type` / `rope_parameters.rope_type`).
package enum RopeScaling: Codable, Equatable, Sendable {
    case none
    /// inv_freq / factor.
    case linear(factor: Double)
    /// Llama 3.1: long wavelengths divided by `factor`, short kept, a smooth ramp between.
    case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalContext: Double)
}

/// The Llama-family architecture (Llama, SmolLM, Qwen2).
package struct LlamaConfig: Codable, Equatable, Sendable {
    package var vocabSize: Int
    package var dim: Int
    package var hidden: Int
    package var layers: Int
    package var heads: Int
    package var kvHeads: Int
    package var headDim: Int
    /// max_position_embeddings: the longest sequence accepted.
    package var contextLength: Int
    package var rmsEps: Float
    package var ropeTheta: Double
    package var ropeScaling: RopeScaling
    /// Biases on q_proj, k_proj, v_proj (Qwen2; Llama with attention_bias).
    package var qkvBias: Bool
    /// Bias on o_proj (Llama with attention_bias; not Qwen2).
    package var outputBias: Bool
    package var tiedHead: Bool

    package init(vocabSize: Int, dim: Int, hidden: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int? = nil,
                 contextLength: Int, rmsEps: Float = 1e-5, ropeTheta: Double = 10000, ropeScaling: RopeScaling = .none,
                 qkvBias: Bool = false, outputBias: Bool = false, tiedHead: Bool = true) {
        self.vocabSize = vocabSize; self.dim = dim; self.hidden = hidden; self.layers = layers; self.heads = heads
        self.kvHeads = kvHeads; self.headDim = headDim ?? dim / max(heads, 1); self.contextLength = contextLength
        self.rmsEps = rmsEps; self.ropeTheta = ropeTheta; self.ropeScaling = ropeScaling
        self.qkvBias = qkvBias; self.outputBias = outputBias; self.tiedHead = tiedHead
    }

    /// Rotary inverse frequencies (hd/2), as transformers' ROPE_INIT_FUNCTIONS compute them (in Double here).
    package var inverseFrequencies: [Double] {
        let half = headDim / 2
        let base = (0..<half).map { 1 / pow(ropeTheta, Double(2 * $0) / Double(headDim)) }
        switch ropeScaling {
        case .none: return base
        case .linear(let f): return base.map { $0 / f }
        case .llama3(let factor, let low, let high, let old):
            let lowWave = old / low, highWave = old / high
            return base.map { f in
                let wave = 2 * Double.pi / f
                if wave < highWave { return f }
                if wave > lowWave { return f / factor }
                let smooth = (old / wave - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
    }
}

/// Which Bonfire model a directory maps to.
package enum HFArchitecture: String, Codable, Sendable, CaseIterable {
    case gpt2, llama, qwen2
    package var className: String {
        switch self { case .gpt2: "GPT2LMHeadModel"; case .llama: "LlamaForCausalLM"; case .qwen2: "Qwen2ForCausalLM" }
    }
}

package enum HFModelConfig: Equatable, Sendable {
    case gpt2(GPTConfig)
    case llama(LlamaConfig, HFArchitecture)

    package var architecture: HFArchitecture {
        switch self { case .gpt2: .gpt2; case .llama(_, let a): a }
    }
}

/// Strict reader of a config.json object.
package struct HFConfigReader {
    let json: [String: Any]
    let source: String

    package init(data: Data, source: String) throws {
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: data) } catch {
            throw HFError("\(source): not valid JSON (\(error.localizedDescription)); is this a Hugging Face config.json?")
        }
        guard let d = obj as? [String: Any] else { throw HFError("\(source): top level is not a JSON object") }
        json = d; self.source = source
    }

    /// JSON true/false. Foundation bridges the numbers 0/1 to Bool too, so compare with the class JSONSerialization
    /// uses for booleans (__NSCFBoolean).
    static let boolClassName = "\(type(of: NSNumber(value: true) as Any))"
    static func isBool(_ v: Any) -> Bool { v is Bool && "\(type(of: v))" == boolClassName }

    func unsupported(_ field: String, _ value: Any, _ supported: String) -> HFError {
        HFError("\(source): \(field) = \(value) is not supported (supported: \(supported))")
    }

    func has(_ key: String, in d: [String: Any]? = nil) -> Bool {
        guard let v = (d ?? json)[key] else { return false }
        return !(v is NSNull)
    }

    /// A positive integer ≤ limit, exactly representable.
    func int(_ key: String, in d: [String: Any]? = nil, default def: Int? = nil, min lo: Int = 1, max hi: Int = 1 << 24) throws -> Int {
        guard has(key, in: d) else {
            if let def { return def }
            throw HFError("\(source): required field \(key) is missing")
        }
        let v = (d ?? json)[key]!
        guard !HFConfigReader.isBool(v), let n = v as? NSNumber, let dbl = Optional(n.doubleValue), dbl.isFinite,
              dbl == dbl.rounded(), let i = Int(exactly: dbl), i >= lo, i <= hi else {
            throw HFError("\(source): \(key) = \(v) must be an integer in \(lo)...\(hi)")
        }
        return i
    }

    func double(_ key: String, in d: [String: Any]? = nil, default def: Double? = nil) throws -> Double {
        guard has(key, in: d) else {
            if let def { return def }
            throw HFError("\(source): required field \(key) is missing")
        }
        let v = (d ?? json)[key]!
        guard !HFConfigReader.isBool(v), let n = v as? NSNumber, n.doubleValue.isFinite else {
            throw HFError("\(source): \(key) = \(v) must be a finite number")
        }
        return n.doubleValue
    }

    func bool(_ key: String, default def: Bool) throws -> Bool {
        guard has(key) else { return def }
        guard HFConfigReader.isBool(json[key]!), let b = json[key] as? Bool else { throw HFError("\(source): \(key) = \(json[key]!) must be true or false") }
        return b
    }

    func string(_ key: String, in d: [String: Any]? = nil) throws -> String? {
        guard has(key, in: d) else { return nil }
        guard let s = (d ?? json)[key] as? String else { throw HFError("\(source): \(key) must be a string") }
        return s
    }

    /// The Bonfire model this config describes, or a thrown error naming the first unsupported field.
    package func modelConfig() throws -> HFModelConfig {
        let supportedTypes = HFArchitecture.allCases.map(\.rawValue).joined(separator: ", ")
        guard let mt = try string("model_type") else {
            throw HFError("\(source): model_type is missing (supported: \(supportedTypes))")
        }
        guard let arch = HFArchitecture(rawValue: mt) else { throw unsupported("model_type", mt, supportedTypes) }
        if has("architectures") {
            guard let list = json["architectures"] as? [String], list == [arch.className] else {
                throw unsupported("architectures", json["architectures"]!, "[\"\(arch.className)\"] for model_type \(mt)")
            }
        }
        switch arch {
        case .gpt2: return .gpt2(try gpt2())
        case .llama, .qwen2: return .llama(try llama(arch), arch)
        }
    }

    func gpt2() throws -> GPTConfig {
        let C = try int("n_embd"), H = try int("n_head", max: 4096)
        guard C % H == 0 else { throw HFError("\(source): n_embd \(C) is not divisible by n_head \(H)") }
        if has("n_inner"), try int("n_inner") != 4 * C {
            throw unsupported("n_inner", json["n_inner"]!, "null or 4·n_embd = \(4 * C)")
        }
        let act = try string("activation_function") ?? "gelu_new"
        guard ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"].contains(act) else {
            throw unsupported("activation_function", act, "gelu_new, gelu_pytorch_tanh (tanh-approximate GELU)")
        }
        let eps = try double("layer_norm_epsilon", default: 1e-5)
        guard abs(eps - Double(Ops.layerNormEps)) <= 1e-12 else {
            throw unsupported("layer_norm_epsilon", eps, "1e-5")
        }
        guard try bool("scale_attn_weights", default: true) else { throw unsupported("scale_attn_weights", false, "true") }
        guard !(try bool("scale_attn_by_inverse_layer_idx", default: false)) else {
            throw unsupported("scale_attn_by_inverse_layer_idx", true, "false")
        }
        guard !(try bool("add_cross_attention", default: false)) else { throw unsupported("add_cross_attention", true, "false") }
        guard try bool("tie_word_embeddings", default: true) else {
            throw unsupported("tie_word_embeddings", false, "true for gpt2 (the LM head is the token embedding)")
        }
        return GPTConfig(vocabSize: try int("vocab_size"), contextLength: try int("n_positions"),
                         layers: try int("n_layer", max: 4096), heads: H, dim: C)
    }

    func llama(_ arch: HFArchitecture) throws -> LlamaConfig {
        let C = try int("hidden_size"), H = try int("num_attention_heads", max: 4096)
        let KV = try int("num_key_value_heads", default: H, max: 4096)
        guard H % KV == 0 else {
            throw HFError("\(source): num_attention_heads \(H) is not a multiple of num_key_value_heads \(KV)")
        }
        let hd: Int
        if has("head_dim") { hd = try int("head_dim", max: 1 << 16) } else {
            guard C % H == 0 else { throw HFError("\(source): hidden_size \(C) is not divisible by num_attention_heads \(H)") }
            hd = C / H
        }
        guard hd % 2 == 0 else { throw unsupported("head_dim", hd, "even head dimensions (rotary pairs)") }
        let act = try string("hidden_act") ?? "silu"
        guard act == "silu" else { throw unsupported("hidden_act", act, "silu (SwiGLU MLP)") }
        if has("mlp_bias"), try bool("mlp_bias", default: false) { throw unsupported("mlp_bias", true, "false") }
        if has("pretraining_tp"), try int("pretraining_tp") != 1 { throw unsupported("pretraining_tp", json["pretraining_tp"]!, "1") }
        if has("partial_rotary_factor"), try double("partial_rotary_factor") != 1 {
            throw unsupported("partial_rotary_factor", json["partial_rotary_factor"]!, "1 (full rotary)")
        }
        var qkvBias = false, outBias = false
        switch arch {
        case .qwen2:
            qkvBias = true
            if try bool("use_sliding_window", default: false) {
                throw unsupported("use_sliding_window", true, "false (full causal attention)")
            }
        default:
            let ab = try bool("attention_bias", default: false)
            qkvBias = ab; outBias = ab
        }
        // Rotary: transformers 5 puts theta and scaling into rope_parameters; 4 has rope_theta + rope_scaling.
        var theta = try double("rope_theta", default: 10000)
        var scalingDict: [String: Any]? = nil
        var scalingField = "rope_scaling"
        if has("rope_parameters") {
            guard let rp = json["rope_parameters"] as? [String: Any] else {
                throw HFError("\(source): rope_parameters must be an object (per-layer-type rope parameters are not supported)")
            }
            if has("rope_theta", in: rp) { theta = try double("rope_theta", in: rp) }
            scalingDict = rp; scalingField = "rope_parameters"
        } else if has("rope_scaling") {
            guard let rs = json["rope_scaling"] as? [String: Any] else { throw HFError("\(source): rope_scaling must be an object or null") }
            scalingDict = rs
        }
        guard theta > 0 else { throw unsupported("rope_theta", theta, "a positive base") }
        let ctx = try int("max_position_embeddings", max: 1 << 22)
        var scaling = RopeScaling.none
        if let d = scalingDict {
            let type = try string("rope_type", in: d) ?? string("type", in: d) ?? "default"
            let field = "\(scalingField).rope_type"
            switch type {
            case "default": scaling = .none
            case "linear":
                let f = try double("factor", in: d)
                guard f > 0 else { throw unsupported("\(scalingField).factor", f, "a positive factor") }
                scaling = .linear(factor: f)
            case "llama3":
                let f = try double("factor", in: d), lo = try double("low_freq_factor", in: d)
                let hi = try double("high_freq_factor", in: d)
                let old = try double("original_max_position_embeddings", in: d)
                guard f > 0, lo > 0, hi > lo, old > 0 else {
                    throw HFError("\(source): \(scalingField) llama3 needs factor > 0, 0 < low_freq_factor < high_freq_factor, original_max_position_embeddings > 0; got \(d)")
                }
                scaling = .llama3(factor: f, lowFreqFactor: lo, highFreqFactor: hi, originalContext: old)
            default:
                throw unsupported(field, type, "default, linear, llama3")
            }
        }
        let tiedDefault = false
        return LlamaConfig(vocabSize: try int("vocab_size"), dim: C, hidden: try int("intermediate_size"),
                           layers: try int("num_hidden_layers", max: 4096), heads: H, kvHeads: KV, headDim: hd,
                           contextLength: ctx, rmsEps: Float(try double("rms_norm_eps", default: 1e-6)),
                           ropeTheta: theta, ropeScaling: scaling, qkvBias: qkvBias, outputBias: outBias,
                           tiedHead: try bool("tie_word_embeddings", default: tiedDefault))
    }
}
