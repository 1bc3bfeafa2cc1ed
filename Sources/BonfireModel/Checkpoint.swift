// Checkpoints as safetensors files (see BonfireMath/SafeTensors.swift):
//   tensors:  one F32 tensor per layout entry (names as in GPT.makeLayout, e.g. "h.0.ln_1.weight"), plus, when an
//             optimizer is saved, its moments as "adam.m.<name>" and "adam.v.<name>".
//   metadata: "bonfire.format" = "checkpoint-v1", "bonfire.config" = GPTConfig JSON, "bonfire.tokenizer_version",
//             "bonfire.step", "bonfire.adam" = AdamW hyper-parameters + step (JSON) when saved; every other key is the
//             caller's free-form metadata (keys must not start with "bonfire.").
// Files are written atomically (temp file + rename), so a crash never leaves a half-written checkpoint.

import Foundation
import BonfireMath

package struct CheckpointError: Error, CustomStringConvertible {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { "checkpoint: \(message)" }
}

package struct LoadedCheckpoint {
    package var config: GPTConfig
    package var model: GPT
    package var optimizer: AdamW?
    package var step: Int
    package var metadata: [String: String]
}

package enum Checkpoint {
    static let format = "checkpoint-v1"

    struct AdamState: Codable {
        var learningRate: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step: Int
    }

    package static func save(model: GPT, optimizer: AdamW?, step: Int, metadata: [String: String], to url: URL) throws {
        var meta: [String: String] = [:]
        for (k, v) in metadata {
            precondition(!k.hasPrefix("bonfire."), "Checkpoint.save: metadata key \(k) uses the reserved prefix bonfire.")
            meta[k] = v
        }
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        meta["bonfire.format"] = format
        meta["bonfire.config"] = String(decoding: try enc.encode(model.config), as: UTF8.self)
        meta["bonfire.tokenizer_version"] = String(Tokenizer.version)
        meta["bonfire.step"] = String(step)
        var tensors: [SafeTensors.NamedTensor] = model.layout.entries.map { e in
            (e.name, e.shape, Array(model.params[e.range]))
        }
        if let opt = optimizer {
            let st = AdamState(learningRate: opt.learningRate, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps,
                               weightDecay: opt.weightDecay, step: opt.step)
            meta["bonfire.adam"] = String(decoding: try enc.encode(st), as: UTF8.self)
            if !opt.m.isEmpty {
                precondition(opt.m.count == model.params.count, "Checkpoint.save: AdamW state \(opt.m.count) vs params \(model.params.count)")
                for e in model.layout.entries { tensors.append(("adam.m." + e.name, e.shape, Array(opt.m[e.range]))) }
                for e in model.layout.entries { tensors.append(("adam.v." + e.name, e.shape, Array(opt.v[e.range]))) }
            }
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try SafeTensors.write(to: url, tensors: tensors, metadata: meta)
    }

    /// Loads a checkpoint and builds the model it describes.
    package static func load(from url: URL) throws -> LoadedCheckpoint {
        let file = try SafeTensors.read(from: url)
        let config = try readConfig(file.metadata, url: url)
        let model = GPT(config: config, seed: 0)
        let (opt, step, meta) = try fill(model: model, file: file, url: url)
        return LoadedCheckpoint(config: config, model: model, optimizer: opt, step: step, metadata: meta)
    }

    /// Loads a checkpoint into an existing model; every tensor name and shape must match its layout.
    @discardableResult
    package static func load(from url: URL, into model: GPT) throws -> (optimizer: AdamW?, step: Int, metadata: [String: String]) {
        let file = try SafeTensors.read(from: url)
        return try fill(model: model, file: file, url: url)
    }

    static func readConfig(_ meta: [String: String], url: URL) throws -> GPTConfig {
        guard meta["bonfire.format"] == format else {
            throw CheckpointError("\(url.path) is not a Bonfire \(format) file (bonfire.format = \(meta["bonfire.format"] ?? "missing"))")
        }
        guard let s = meta["bonfire.config"], let c = try? JSONDecoder().decode(GPTConfig.self, from: Data(s.utf8)) else {
            throw CheckpointError("\(url.path): metadata bonfire.config is missing or not a GPTConfig")
        }
        return c
    }

    static func fill(model: GPT, file: (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]),
                     url: URL) throws -> (AdamW?, Int, [String: String]) {
        let meta = file.metadata
        let tv = meta["bonfire.tokenizer_version"] ?? "missing"
        guard tv == String(Tokenizer.version) else {
            throw CheckpointError("\(url.path): tokenizer version \(tv), this build uses \(Tokenizer.version); retrain or convert the checkpoint")
        }
        if let s = meta["bonfire.config"], let c = try? JSONDecoder().decode(GPTConfig.self, from: Data(s.utf8)), c != model.config {
            throw CheckpointError("\(url.path): config \(c) does not match the model's \(model.config)")
        }
        func take(_ name: String, _ e: ParameterLayout.Entry) throws -> [Float] {
            guard let t = file.tensors[name] else { throw CheckpointError("\(url.path): tensor \(name) is missing") }
            guard t.shape == e.shape else {
                throw CheckpointError("\(url.path): tensor \(name) has shape \(t.shape), model expects \(e.shape)")
            }
            return t.data
        }
        var params = model.params
        for e in model.layout.entries { params.replaceSubrange(e.range, with: try take(e.name, e)) }
        let known = Set(model.layout.entries.map(\.name))
        for name in file.tensors.keys where !name.hasPrefix("adam.") && !known.contains(name) {
            throw CheckpointError("\(url.path): tensor \(name) is not part of the model layout")
        }
        var opt: AdamW? = nil
        if let s = meta["bonfire.adam"] {
            guard let st = try? JSONDecoder().decode(AdamState.self, from: Data(s.utf8)) else {
                throw CheckpointError("\(url.path): metadata bonfire.adam is not valid")
            }
            var o = AdamW(learningRate: st.learningRate, beta1: st.beta1, beta2: st.beta2, eps: st.eps,
                          weightDecay: st.weightDecay, layout: model.layout)
            o.step = st.step
            if file.tensors["adam.m.wte"] != nil {
                var m = [Float](repeating: 0, count: params.count), v = m
                for e in model.layout.entries {
                    m.replaceSubrange(e.range, with: try take("adam.m." + e.name, e))
                    v.replaceSubrange(e.range, with: try take("adam.v." + e.name, e))
                }
                o.m = m; o.v = v
            }
            opt = o
        }
        model.params = params
        let step = Int(meta["bonfire.step"] ?? "0") ?? 0
        return (opt, step, meta.filter { !$0.key.hasPrefix("bonfire.") })
    }
}
