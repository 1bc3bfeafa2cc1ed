// `bonfire eval`: Best-of-N evaluation of a policy checkpoint on a task split. Prints the table of pass@N, Bo-N and
// majority-vote accuracy per temperature (± standard errors over prompts) with the response diversity per temperature
// (distinct final answers per prompt, mean token entropy), and writes eval.json and eval.svg.
import ArgumentParser
import BonfireModel
import BonfireTasks
import Foundation

/// Parses "1,2,4" into [Int]; the error names the flag and shows an example.
func parseList<T: LosslessStringConvertible>(_ text: String, flag: String, example: String) throws -> [T] {
    let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let values = parts.compactMap { T($0) }
    guard !parts.isEmpty, values.count == parts.count else {
        throw ValidationError("\(flag) '\(text)' is not a comma-separated list of numbers; e.g. \(flag) \(example)")
    }
    return values
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a policy checkpoint with Best-of-N: pass@N, Bo-N, majority vote and diversity per temperature.",
        discussion: """
        Estimators are unbiased from n = --samples responses per prompt (pass@k of Chen et al. 2021; Bo-N with
        uniform tie-breaking as an expected value). Verifiers: oracle (r = R), noisy[:fp=0.1,fn=0.2], learned:<path>
        (from `bonfire train-verifier`). Diversity per temperature: distinct final answers per prompt among its
        samples (math: normalised answers; code: distinct outputs on the hidden tests; malformed responses are not
        answers) and mean token entropy in nats of the sampling distribution at that temperature (averaged over each
        response's tokens, then samples, then prompts). Writes <out>/eval.json and <out>/eval.svg.
        """)

    @Option(help: "Policy checkpoint (.safetensors) to evaluate.")
    var checkpoint: String
    @Option(help: "Task: math, code or jsonl (with --task-path).")
    var task = "math"
    @Option(help: "For --task jsonl: the JSON Lines problem file (GSM8K/MATH maths or HumanEval code lines).")
    var taskPath: String?
    @Option(help: "Task seed (must match the one used in training for the same items).")
    var taskSeed: UInt64 = 0
    @Option(help: "Evaluate only this difficulty level (math 1…6, code 1…5); default: the task's level mix.")
    var level: Int?
    @Option(help: "Split: train, validation or test.")
    var split = "test"
    @Option(help: "Verifier: oracle, noisy[:fp=…,fn=…] or learned:<path>.")
    var verifier = "oracle"
    @Option(help: "Responses sampled per prompt (n ≥ every N).")
    var samples = 64
    @Option(help: "Comma-separated N values.")
    var n = "1,2,4,8,16,32"
    @Option(help: "Comma-separated sampling temperatures.")
    var temperatures = "0.1,0.5,1.0,1.5"
    @Option(help: "Number of prompts (items 0..<prompts of the split).")
    var prompts = 100
    @Option(help: "Maximum response tokens.")
    var maxNewTokens = 32
    @Option(help: "Sampling seed.")
    var seed: UInt64 = 0
    @Option(help: "Output directory for eval.json and eval.svg.")
    var out = "eval-out"
    @Flag(help: "Skip majority vote.")
    var noMajority = false

    func run() throws {
        let nList: [Int] = try parseList(n, flag: "--n", example: "1,2,4,8")
        let temps: [Double] = try parseList(temperatures, flag: "--temperatures", example: "0.5,1.0")
        guard let splitValue = Split(rawValue: split) else {
            throw ValidationError("--split '\(split)' is not one of train, validation, test")
        }
        guard prompts >= 1 else { throw ValidationError("--prompts must be ≥ 1, got \(prompts)") }
        let taskValue: any VerifiableTask
        var promptCount = prompts
        if task.lowercased() == "jsonl" {
            guard let taskPath else { throw ValidationError("--task jsonl needs --task-path FILE.jsonl") }
            let jsonl: JSONLTask
            do { jsonl = try JSONLTask(path: taskPath, seed: taskSeed) } catch { throw ValidationError("--task-path: \(error)") }
            if jsonl.emptySplits.contains(splitValue) {
                FileHandle.standardError.write(Data("bonfire eval: \(taskPath) has no \(split) problems; using all \(jsonl.problems.count)\n".utf8))
            }
            promptCount = min(prompts, jsonl.count(split: splitValue))
            taskValue = jsonl
        } else {
            do { taskValue = try TaskRegistry.make(name: task, seed: taskSeed, level: level) } catch { throw ValidationError("--task: \(error)") }
        }
        let settings = EvalSettings(samples: samples, nList: nList, temperatures: temps, progress: true, majority: !noMajority)
        do { try settings.validate() } catch { throw ValidationError("\(error)") }
        let v: any Verifier
        do { v = try makeVerifier(name: verifier, task: taskValue, seed: seed) } catch { throw ValidationError("--verifier: \(error)") }
        guard FileManager.default.fileExists(atPath: checkpoint) else {
            throw ValidationError("--checkpoint \(checkpoint) does not exist; pass a policy checkpoint written by training")
        }
        let loaded = try Checkpoint.load(from: URL(fileURLWithPath: checkpoint))
        guard !loaded.config.scalarHead else {
            throw ValidationError("--checkpoint \(checkpoint) is a verifier (scalar head), not a policy; use it as --verifier learned:\(checkpoint)")
        }
        let items = taskValue.items(split: splitValue, range: 0..<promptCount)
        FileHandle.standardError.write(Data(("bonfire eval: \(task) \(split) prompts=\(promptCount) samples=\(samples) N=\(nList) "
            + "T=\(temps) verifier=\(v.name) checkpoint=\(checkpoint)\n").utf8))
        let report = try Evaluator(task: taskValue, verifier: v, settings: settings)
            .run(model: loaded.model, items: items, maxNewTokens: maxNewTokens, seed: seed, checkpoint: checkpoint)
        print(report.table())
        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(report).write(to: dir.appendingPathComponent("eval.json"))
        try EvalPlot.svg(report).write(to: dir.appendingPathComponent("eval.svg"), atomically: true, encoding: .utf8)
        print(String(format: "wrote %@/eval.json and %@/eval.svg (%.1f s, %.0f samples/s)", out, out, report.seconds,
                     report.samplesPerSecond))
    }
}
