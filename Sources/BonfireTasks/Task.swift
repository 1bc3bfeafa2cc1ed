// Verifiable tasks: the prompt/response problems Best-of-N is evaluated and trained on.
//
// A task generates items deterministically from (task seed, split, index). Each item has a prompt x, a reference
// response (an SFT demonstration, without EOS), a difficulty level, and whatever the task's checker needs (`answer`).
// `reward(item:response:)` is the environment reward R(x, y) ∈ {0, 1}; it never crashes on malformed responses and
// records a reason when R = 0. The verifier score r(x, y) lives in Verifiers.swift and is never merged with R.
//
// Splits are disjoint by construction: candidates are drawn from an RNG stream of (seed, split, index, attempt) and a
// candidate is kept only if a content hash of its prompt (FNV-1a 64 of "task|prompt") falls into the split's bucket
// (80% train, 10% validation, 10% test). A prompt therefore belongs to exactly one split, for every seed and every
// code version that keeps the prompt text the same.
//
// All prompts and responses use only characters of the char tokenizer (Tokenizer.canEncode) and fit a ctx-64 model:
// BOS + prompt + response + EOS ≤ 64 tokens (`maxPromptLength` + `maxResponseLength` + 2 ≤ 64).

import BonfireMath
import BonfireModel

package enum Split: String, Codable, Sendable, CaseIterable {
    case train, validation, test

    /// A stable small id for RNG streams.
    package var streamId: UInt64 {
        switch self {
        case .train: return 1
        case .validation: return 2
        case .test: return 3
        }
    }

    /// The split a prompt belongs to, from its content hash: buckets 0..<80 train, 80..<90 validation, 90..<100 test.
    package static func of(task: String, prompt: String) -> Split {
        let bucket = ContentHash.fnv1a64(task + "|" + prompt) % 100
        if bucket < 80 { return .train }
        if bucket < 90 { return .validation }
        return .test
    }
}

package enum ContentHash {
    /// FNV-1a, 64 bit, over the UTF-8 bytes. Stable across platforms and versions (unlike Swift's Hasher).
    package static func fnv1a64(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return h
    }
}

/// One problem. `answer` is the task-specific ground truth the checker uses (math: the final integer; code: the
/// hidden tests as "x,y:out;..."), so an item carries everything needed to compute R without the task object's state.
package struct TaskItem: Sendable, Codable, Equatable, Hashable {
    /// "task/split/index", e.g. "math/test/17".
    package var id: String
    package var task: String
    package var split: Split
    package var index: Int
    package var prompt: String
    /// The reference response (SFT demonstration). Does not include EOS.
    package var reference: String
    package var level: Int
    package var answer: String

    package init(id: String, task: String, split: Split, index: Int, prompt: String, reference: String, level: Int,
                 answer: String) {
        self.id = id; self.task = task; self.split = split; self.index = index
        self.prompt = prompt; self.reference = reference; self.level = level; self.answer = answer
    }
}

/// The environment reward R(x, y) ∈ {0, 1}, with a reason when R = 0 (malformed, wrong answer, runtime error...).
package struct Outcome: Sendable, Codable, Equatable {
    package var reward: Double
    package var reason: String?
    package init(reward: Double, reason: String? = nil) { self.reward = reward; self.reason = reason }
    package static let correct = Outcome(reward: 1)
    package static func wrong(_ reason: String) -> Outcome { Outcome(reward: 0, reason: reason) }
}

package protocol VerifiableTask: Sendable {
    /// Registry name ("math", "code").
    var name: String { get }
    var seed: UInt64 { get }
    /// Upper bounds (in characters = tokens) over all items this task generates.
    var maxPromptLength: Int { get }
    var maxResponseLength: Int { get }
    /// Difficulty levels this task can generate, easiest first.
    var levels: [Int] { get }

    /// Deterministic in (seed, split, index). Index ≥ 0.
    func item(split: Split, index: Int) -> TaskItem
    /// Environment reward R. Never crashes; malformed responses get R = 0 with a reason.
    func reward(item: TaskItem, response: String) -> Outcome
    /// A key such that responses with equal keys get the same reward (math: the extracted final answer; code: the
    /// program's outputs on the hidden tests). nil when the response is malformed. Used for majority voting.
    func answerKey(item: TaskItem, response: String) -> String?
}

extension VerifiableTask {
    /// Items index..<index+count of a split.
    package func items(split: Split, range: Range<Int>) -> [TaskItem] {
        range.map { item(split: split, index: $0) }
    }
}

package struct TaskError: Error, CustomStringConvertible {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { message }
}

package enum TaskRegistry {
    package static let names = ["math", "code"]

    /// Makes a task by name (default level mix, or only `level` when given). Throws a TaskError naming the valid
    /// choices for an unknown name or level.
    package static func make(name: String, seed: UInt64 = 0, level: Int? = nil) throws -> any VerifiableTask {
        switch name.lowercased() {
        case "math":
            guard let level else { return MathTask(seed: seed) }
            guard (1...6).contains(level) else { throw TaskError("math has levels 1...6, got \(level)") }
            return MathTask(seed: seed, level: level)
        case "code":
            guard let level else { return CodeTask(seed: seed) }
            guard (1...5).contains(level) else { throw TaskError("code has levels 1...5, got \(level)") }
            return CodeTask(seed: seed, level: level)
        default:
            throw TaskError("unknown task '\(name)': choose one of \(names.joined(separator: ", ")) (e.g. --task math)")
        }
    }
}

/// Shared helper: picks a level from weights using the item's RNG stream.
package func pickLevel(_ weights: [(level: Int, weight: Double)], rng: inout RNG) -> Int {
    weights[rng.categorical(weights.map { $0.weight })].level
}
