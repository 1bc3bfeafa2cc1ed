// Checkpoints as safetensors files (see BonfireMath/SafeTensors.swift):
//   tensors:  one F32 tensor per layout entry (names as in GPT.makeLayout, e.g. "h.0.ln_1.weight"), plus, when an
//             optimizer is saved, its moments as "adam.m.<name>" and "adam.v.<name>".
//   metadata: "bonfire.format" = "checkpoint-v1", "bonfire.config" = GPTConfig JSON, "bonfire.tokenizer_version",
//             "bonfire.step", "bonfire.adam" = AdamW hyper-parameters + step (JSON) when saved; every other key is the
//             caller's free-form metadata (keys must not start with "bonfire.").
// Files are written crash-safe (temp file, fsync, rename, fsync directory) with a whole-file CRC-32 that `load`
// requires and verifies, so a crash never leaves a half-written checkpoint and a damaged one is detected, never used.
// `save` refuses (throws) to write non-finite parameters or optimizer moments. `CheckpointStore` lists a directory's
// v<version>.safetensors newest first, loads the newest valid one (reporting each corrupt one it skipped) and prunes
// to the last K.

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

    /// Writes a GPT checkpoint: the one format of every learner (ModelCheckpoint.swift). Refuses non-finite
    /// parameters or optimizer moments; atomic, checksummed.
    package static func save(model: GPT, optimizer: AdamW?, step: Int, metadata: [String: String], to url: URL) throws {
        try ModelCheckpoint.save(model, optimizer: optimizer, step: step, metadata: metadata, to: url)
    }

    /// Loads a checkpoint and builds the model it describes.
    package static func load(from url: URL) throws -> LoadedCheckpoint {
        try build(try SafeTensors.read(from: url, requireChecksum: true), source: url.path)
    }

    /// The same from the bytes of a checkpoint file (`source` names it in errors).
    package static func load(data: Data, source: String = "checkpoint") throws -> LoadedCheckpoint {
        try build(try SafeTensors.decode(data, source: source, requireChecksum: true), source: source)
    }

    static func build(_ file: (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]),
                      source: String) throws -> LoadedCheckpoint {
        let config = try readConfig(file.metadata, source: source)
        let model = GPT(config: config, seed: 0)
        let (opt, step, meta) = try fill(model: model, file: file, source: source)
        return LoadedCheckpoint(config: config, model: model, optimizer: opt, step: step, metadata: meta)
    }

    /// Loads a checkpoint into an existing model; every tensor name and shape must match its layout.
    @discardableResult
    package static func load(from url: URL, into model: GPT) throws -> (optimizer: AdamW?, step: Int, metadata: [String: String]) {
        let file = try SafeTensors.read(from: url, requireChecksum: true)
        return try fill(model: model, file: file, source: url.path)
    }

    static func readConfig(_ meta: [String: String], source: String) throws -> GPTConfig {
        guard meta["bonfire.format"] == format else {
            throw CheckpointError("\(source) is not a Bonfire \(format) file (bonfire.format = \(meta["bonfire.format"] ?? "missing"))")
        }
        guard let s = meta["bonfire.config"], let c = try? JSONDecoder().decode(GPTConfig.self, from: Data(s.utf8)) else {
            throw CheckpointError("\(source): metadata bonfire.config is missing or not a GPTConfig")
        }
        // GPT(config:) has preconditions and allocates from these numbers: check them before building anything.
        guard (1...(1 << 20)).contains(c.vocabSize), (1...(1 << 16)).contains(c.contextLength),
              (1...1024).contains(c.layers), (1...1024).contains(c.heads), (1...(1 << 16)).contains(c.dim),
              c.dim % c.heads == 0 else {
            throw CheckpointError("\(source): bonfire.config \(c) is not a buildable model; the file is corrupt")
        }
        let (p, o) = c.vocabSize.multipliedReportingOverflow(by: c.dim)
        guard !o, p <= 1 << 32, c.layers * 12 * c.dim * c.dim <= 1 << 34 else {
            throw CheckpointError("\(source): bonfire.config \(c) describes an implausibly large model; the file is corrupt")
        }
        return c
    }

    static func fill(model: GPT, file: (tensors: [String: (shape: [Int], data: [Float])], metadata: [String: String]),
                     source: String) throws -> (AdamW?, Int, [String: String]) {
        let meta = file.metadata
        let tv = meta["bonfire.tokenizer_version"] ?? "missing"
        guard tv == String(Tokenizer.version) else {
            throw CheckpointError("\(source): tokenizer version \(tv), this build uses \(Tokenizer.version); retrain or convert the checkpoint")
        }
        if let s = meta["bonfire.config"], let c = try? JSONDecoder().decode(GPTConfig.self, from: Data(s.utf8)), c != model.config {
            throw CheckpointError("\(source): config \(c) does not match the model's \(model.config)")
        }
        return try ModelCheckpoint.fill(model, file: file, source: source)
    }
}

// MARK: - A directory of versioned checkpoints

/// One checkpoint file `v<version>.safetensors`.
package struct CheckpointFile: Equatable, Sendable {
    package var version: Int
    package var url: URL
}

/// A checkpoint that could not be loaded, and why.
package struct SkippedCheckpoint: Sendable, CustomStringConvertible {
    package var file: CheckpointFile
    package var error: String
    package var description: String { "\(file.url.lastPathComponent) (version \(file.version)): \(error)" }
}

/// The checkpoints of one directory (a run's `checkpoints/`), named `v<version, ≥ 6 digits>.safetensors` like
/// RunDirectory.checkpointURL. Pure file logic, no model knowledge: the caller passes the loader.
///
///     let store = CheckpointStore(directory: runDir.checkpointsURL)
///     let (found, skipped) = store.loadNewestValid { try Checkpoint.load(from: $0, into: model) }
///     for s in skipped { roleLog("learner: skipping corrupt checkpoint \(s)") }
///     guard let found else { throw … "no valid checkpoint to resume from in …" }
///     try store.prune(keep: config.checkpoint.keep)
package struct CheckpointStore: Sendable {
    package var directory: URL

    package init(directory: URL) { self.directory = directory }

    /// `directory/v<version>.safetensors`.
    package func url(version: Int) -> URL {
        precondition(version >= 0, "checkpoint version must be ≥ 0, got \(version)")
        let s = String(version)
        return directory.appendingPathComponent("v" + String(repeating: "0", count: max(0, 6 - s.count)) + s + ".safetensors")
    }

    /// Every `v<digits>.safetensors` (digits that fit Int), newest (highest version) first. Other files, temporaries
    /// and an unreadable directory give no entries.
    package func list() -> [CheckpointFile] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        var out: [CheckpointFile] = []
        for n in names where n.hasPrefix("v") && n.hasSuffix(".safetensors") {
            let digits = n.dropFirst().dropLast(".safetensors".count)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(digits) else { continue }
            out.append(CheckpointFile(version: v, url: directory.appendingPathComponent(n)))
        }
        return out.sorted { $0.version != $1.version ? $0.version > $1.version : $0.url.path > $1.url.path }
    }

    /// Tries `load` on each checkpoint, newest first, until one succeeds; reports every one that failed.
    package func loadNewestValid<T>(_ load: (URL) throws -> T) -> (found: (file: CheckpointFile, value: T)?, skipped: [SkippedCheckpoint]) {
        var skipped: [SkippedCheckpoint] = []
        for f in list() {
            do { return ((f, try load(f.url)), skipped) } catch {
                skipped.append(SkippedCheckpoint(file: f, error: "\(error)"))
            }
        }
        return (nil, skipped)
    }

    /// Keeps the newest `keep` checkpoints, deletes older ones and temporaries a crashed writer left. Returns the
    /// deleted files. `keep` ≥ 1 (never deletes the newest).
    @discardableResult
    package func prune(keep: Int) throws -> [URL] {
        precondition(keep >= 1, "CheckpointStore.prune: keep must be ≥ 1, got \(keep)")
        var removed = AtomicFile.removeStaleTemporaries(in: directory)
        for f in list().dropFirst(keep) {
            try FileManager.default.removeItem(at: f.url)
            removed.append(f.url)
        }
        if !removed.isEmpty { AtomicFile.syncDirectory(directory) }
        return removed
    }
}
