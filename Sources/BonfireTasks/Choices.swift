// The task and verifier a run chooses, as enums parsed once from the config (`task.name`, `actors.verifier`).

/// Built-in verifiable tasks.
package enum TaskKind: String, Codable, Sendable, CaseIterable {
    /// Generated arithmetic problems (MathTask.swift).
    case math
    /// Generated code problems (CodeTask.swift).
    case code
    /// Problems read from a JSON Lines file, `task.path` (JSONLTask.swift).
    case jsonl
}

/// What scores responses for Best-of-N selection: the task's ground truth, a noisy copy of it, or a learned model.
package enum VerifierKind: String, Codable, Sendable, CaseIterable {
    case oracle, noisy, learned
}

/// A verifier fully described: its kind and that kind's parameters.
package struct VerifierOptions: Codable, Sendable, Equatable {
    /// Default oracle.
    package var kind: VerifierKind = .oracle
    /// Learned verifier checkpoint (kind learned; train one with `bonfire train-verifier`). Default "".
    package var path = ""
    /// Noisy verifier false-positive / false-negative rates in [0, 1]. Default 0.1 / 0.1.
    package var falsePositive = 0.1
    package var falseNegative = 0.1
    /// Noisy verifier: binary scores instead of continuous ones. Default false.
    package var binary = false
    package init(kind: VerifierKind = .oracle) { self.kind = kind }
}

extension TaskRegistry {
    /// The task of `kind` (default level mix).
    /// `path` is the JSON Lines file of `jsonl` (ignored by the generated tasks).
    package static func make(_ kind: TaskKind, seed: UInt64, path: String = "") throws -> any VerifiableTask {
        switch kind {
        case .math, .code: return try make(name: kind.rawValue, seed: seed)
        case .jsonl:
            guard !path.isEmpty else {
                throw TaskError("task jsonl needs a file: set task.path to a JSON Lines file (one problem per line, "
                                + "see docs/data.md)")
            }
            return try JSONLTask(path: path, seed: seed)
        }
    }
}

/// The verifier `options` describe, for `task`; throws (naming what to do) when a learned verifier is missing.
package func makeVerifier(_ options: VerifierOptions, task: any VerifiableTask, seed: UInt64) throws -> any Verifier {
    switch options.kind {
    case .oracle:
        return OracleVerifier(task: task)
    case .noisy:
        guard (0...1).contains(options.falsePositive), (0...1).contains(options.falseNegative) else {
            throw TaskError("noisy verifier rates must be in [0, 1], got fp \(options.falsePositive), fn \(options.falseNegative)")
        }
        return NoisyVerifier(task: task, falsePositiveRate: options.falsePositive, falseNegativeRate: options.falseNegative,
                             continuous: !options.binary, seed: seed)
    case .learned:
        guard !options.path.isEmpty else {
            throw TaskError("verifier learned needs a checkpoint path (train one with `bonfire train-verifier`)")
        }
        return try LearnedVerifier.load(path: options.path)
    }
}

/// Reads a command-line verifier spec: "oracle", "noisy" or "noisy:fp=0.1,fn=0.2[,binary]", "learned:<path>".
package func verifierOptions(spec: String) throws -> VerifierOptions {
    let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
    let arg = parts.count > 1 ? parts[1] : nil
    guard let kind = VerifierKind(rawValue: parts.first?.lowercased() ?? "") else {
        throw TaskError("unknown verifier '\(spec)': use oracle, noisy[:fp=0.1,fn=0.2] or learned:<path>")
    }
    var o = VerifierOptions(kind: kind)
    switch kind {
    case .oracle: break
    case .noisy:
        for kv in (arg ?? "").split(separator: ",") {
            let p = kv.split(separator: "=").map(String.init)
            if p.count == 2, p[0] == "fp", let v = Double(p[1]), (0...1).contains(v) { o.falsePositive = v }
            else if p.count == 2, p[0] == "fn", let v = Double(p[1]), (0...1).contains(v) { o.falseNegative = v }
            else if p == ["binary"] { o.binary = true }
            else {
                throw TaskError("verifier '\(spec)': cannot read '\(kv)'; use noisy:fp=0.1,fn=0.2 (rates in [0,1]), optionally ,binary")
            }
        }
    case .learned:
        guard let path = arg, !path.isEmpty else {
            throw TaskError("verifier 'learned' needs a path: --verifier learned:verifier.safetensors (train one with `bonfire train-verifier`)")
        }
        o.path = path
    }
    return o
}

/// Builds a verifier from a command-line spec (see `verifierOptions(spec:)`).
package func makeVerifier(name spec: String, task: any VerifiableTask, seed: UInt64) throws -> any Verifier {
    try makeVerifier(verifierOptions(spec: spec), task: task, seed: seed)
}
