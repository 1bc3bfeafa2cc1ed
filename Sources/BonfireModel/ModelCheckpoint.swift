// The one checkpoint format of every learner (GPT policies, GPT with value head, MLP actor-critics): a safetensors
// file (BonfireMath/SafeTensors.swift) holding
//   tensors:  one F32 tensor per layout entry, plus the AdamW moments "adam.m.<name>" / "adam.v.<name>";
//   metadata: "bonfire.format" = "checkpoint-v1", "bonfire.model" = "gpt" | "mlp", "bonfire.config" = the model's
//             config JSON, "bonfire.tokenizer_version" (gpt), "bonfire.step", "bonfire.adam" (hyper-parameters + step);
//             every other key is the caller's (run id, policy version, resolved run config, …).
// Files are written atomically with a CRC32 in the metadata and refused when not finite (SafeTensors.swift).
// `Checkpoint` (Checkpoint.swift) writes GPT checkpoints through this code; the runtime's learners write
// their state through `save(_:optimizer:step:metadata:to:)` and read it back with `load(from:into:)`.
import BonfireMath
import Foundation

/// A model whose parameters live in one buffer described by a layout, with a JSON-encodable config.
package protocol CheckpointModel: AnyObject {
    associatedtype Config: Codable & Equatable
    /// "gpt" or "mlp": what `bonfire.model` records.
    static var checkpointKind: String { get }
    var config: Config { get }
    var layout: ParameterLayout { get }
    var params: [Float] { get set }
}

extension GPT: CheckpointModel { package static var checkpointKind: String { "gpt" } }
extension MLP: CheckpointModel { package static var checkpointKind: String { "mlp" } }

package enum ModelCheckpoint {
    static let format = "checkpoint-v1"

    struct AdamState: Codable {
        var learningRate: Float, beta1: Float, beta2: Float, eps: Float, weightDecay: Float, step: Int
    }

    /// Writes `model` (and the optimizer's state) to `url`, creating its directory.
    package static func save<M: CheckpointModel>(_ model: M, optimizer: AdamW?, step: Int, metadata: [String: String],
                                                to url: URL) throws {
        if let i = SafeTensors.firstNonFinite(model.params) {
            let name = model.layout.entries.first { $0.range.contains(i) }?.name ?? "?"
            throw CheckpointError("refusing to write \(url.lastPathComponent): parameter \(i) (\(name)) is \(model.params[i]); the update that produced it must be skipped and the last good parameters kept")
        }
        if let opt = optimizer, let i = SafeTensors.firstNonFinite(opt.m) ?? SafeTensors.firstNonFinite(opt.v) {
            throw CheckpointError("refusing to write \(url.lastPathComponent): AdamW moment \(i) is not finite; the update that produced it must be skipped")
        }
        var meta: [String: String] = [:]
        for (k, v) in metadata {
            precondition(!k.hasPrefix("bonfire."), "ModelCheckpoint.save: metadata key \(k) uses the reserved prefix bonfire.")
            meta[k] = v
        }
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        meta["bonfire.format"] = format
        meta["bonfire.model"] = M.checkpointKind
        meta["bonfire.config"] = String(decoding: try enc.encode(model.config), as: UTF8.self)
        meta["bonfire.tokenizer_version"] = String(Tokenizer.version)
        meta["bonfire.step"] = String(step)
        var tensors: [SafeTensors.NamedTensor] = model.layout.entries.map { ($0.name, $0.shape, Array(model.params[$0.range])) }
        if let opt = optimizer {
            let st = AdamState(learningRate: opt.learningRate, beta1: opt.beta1, beta2: opt.beta2, eps: opt.eps,
                               weightDecay: opt.weightDecay, step: opt.step)
            meta["bonfire.adam"] = String(decoding: try enc.encode(st), as: UTF8.self)
            if !opt.m.isEmpty {
                precondition(opt.m.count == model.params.count, "ModelCheckpoint.save: AdamW state \(opt.m.count) vs params \(model.params.count)")
                for e in model.layout.entries { tensors.append(("adam.m." + e.name, e.shape, Array(opt.m[e.range]))) }
                for e in model.layout.entries { tensors.append(("adam.v." + e.name, e.shape, Array(opt.v[e.range]))) }
            }
        }
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try SafeTensors.write(to: url, tensors: tensors, metadata: meta, requireFinite: true)
    }

    /// The model config a checkpoint records (throws naming the file when it is not a checkpoint of kind `M`).
    package static func config<M: CheckpointModel>(of url: URL, as: M.Type) throws -> M.Config {
        let file = try SafeTensors.read(from: url)
        return try config(file.metadata, url: url, as: M.self)
    }

    static func config<M: CheckpointModel>(_ meta: [String: String], url: URL, as: M.Type) throws -> M.Config {
        guard meta["bonfire.format"] == format else {
            throw CheckpointError("\(url.path) is not a Bonfire \(format) file (bonfire.format = \(meta["bonfire.format"] ?? "missing"))")
        }
        let kind = meta["bonfire.model"] ?? "gpt"
        guard kind == M.checkpointKind else {
            throw CheckpointError("\(url.path) holds a \(kind) model, this role needs a \(M.checkpointKind) model; use a checkpoint of this job")
        }
        guard let s = meta["bonfire.config"], let c = try? JSONDecoder().decode(M.Config.self, from: Data(s.utf8)) else {
            throw CheckpointError("\(url.path): metadata bonfire.config is missing or not a \(M.checkpointKind) config")
        }
        return c
    }

    /// Loads a checkpoint into an existing model: kind, config, every tensor name and shape must match.
    /// Returns the optimizer (when saved), the step and the caller's metadata.
    @discardableResult
    package static func load<M: CheckpointModel>(from url: URL, into model: M)
        throws -> (optimizer: AdamW?, step: Int, metadata: [String: String]) {
        let file = try SafeTensors.read(from: url, requireChecksum: true)
        let meta = file.metadata
        let c = try config(meta, url: url, as: M.self)
        guard c == model.config else {
            throw CheckpointError("\(url.path): model config \(c) does not match this run's \(model.config); resume with the config the run started with")
        }
        let tv = meta["bonfire.tokenizer_version"] ?? "missing"
        if M.checkpointKind == "gpt", tv != String(Tokenizer.version) {
            throw CheckpointError("\(url.path): tokenizer version \(tv), this build uses \(Tokenizer.version); retrain or convert the checkpoint")
        }
        return try fill(model, file: file, source: url.path)
    }

    /// Copies a checkpoint's tensors into `model` (every layout name and shape must match; no stray tensors),
    /// rebuilds the AdamW state, and refuses non-finite parameters or optimizer settings. Returns the optimizer,
    /// the step and the caller's metadata. Shared by `load(from:into:)` and `Checkpoint` (GPT).
    static func fill<M: CheckpointModel>(_ model: M, file: (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]),
                                         source: String) throws -> (optimizer: AdamW?, step: Int, metadata: [String: String]) {
        let meta = file.metadata
        func take(_ name: String, _ e: ParameterLayout.Entry) throws -> [Float] {
            guard let t = file.tensors[name] else { throw CheckpointError("\(source): tensor \(name) is missing") }
            guard t.shape == e.shape, t.data.count == e.range.count else {
                throw CheckpointError("\(source): tensor \(name) has shape \(t.shape), model expects \(e.shape)")
            }
            return t.data
        }
        var params = model.params
        for e in model.layout.entries { params.replaceSubrange(e.range, with: try take(e.name, e)) }
        let known = Set(model.layout.entries.map(\.name))
        for name in file.tensors.keys where !name.hasPrefix("adam.") && !known.contains(name) {
            throw CheckpointError("\(source): tensor \(name) is not part of the model layout")
        }
        var opt: AdamW? = nil
        if let s = meta["bonfire.adam"] {
            guard let st = try? JSONDecoder().decode(AdamState.self, from: Data(s.utf8)) else {
                throw CheckpointError("\(source): metadata bonfire.adam is not valid")
            }
            guard st.step >= 0, st.learningRate.isFinite, st.beta1.isFinite, st.beta2.isFinite, st.eps.isFinite,
                  st.weightDecay.isFinite else {
                throw CheckpointError("\(source): metadata bonfire.adam holds non-finite or negative values")
            }
            var o = AdamW(learningRate: st.learningRate, beta1: st.beta1, beta2: st.beta2, eps: st.eps,
                          weightDecay: st.weightDecay, layout: model.layout)
            o.step = st.step
            if let first = model.layout.entries.first, file.tensors["adam.m." + first.name] != nil {
                var m = [Float](repeating: 0, count: params.count), v = m
                for e in model.layout.entries {
                    m.replaceSubrange(e.range, with: try take("adam.m." + e.name, e))
                    v.replaceSubrange(e.range, with: try take("adam.v." + e.name, e))
                }
                o.m = m; o.v = v
            }
            opt = o
        }
        if let i = SafeTensors.firstNonFinite(params) {
            throw CheckpointError("\(source): parameter \(i) is \(params[i]); refusing to load non-finite parameters — use an older checkpoint")
        }
        model.params = params
        let step = Int(meta["bonfire.step"] ?? "0") ?? 0
        return (opt, step, meta.filter { !$0.key.hasPrefix("bonfire.") })
    }
}
