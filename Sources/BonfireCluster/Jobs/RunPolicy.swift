// The run's policy, the same on every role: a fresh character-level GPT of the `model.*` shape, or the Hugging Face
// directory `model.path` names (GPT-2 → GPT, Llama / Qwen2 / SmolLM → LlamaModel) with its tokenizer.json and its
// BOS / EOS ids. Actors and the learner load the same directory, so their parameter layouts (and layout hashes)
// agree and the learner's broadcasts install directly. Fine-tuned weights go back to the Hugging Face layout with
// `HFExport` (`bonfire export-hf`, and `bonfire train` writes <run.dir>/hf at the end).
import BonfireMath
import BonfireModel
import BonfireTasks
import Foundation

package struct RunPolicy {
    package let model: any LanguageModel
    package let text: TextFormat
    /// The loaded directory (model.path), nil for Bonfire's own GPT.
    package let hf: HFCausalLM?

    package init(config: RunConfig) throws {
        guard !config.model.path.isEmpty else {
            model = GPT(config: config.gptConfig, seed: config.run.seed)
            text = .character
            hf = nil
            return
        }
        let dir = URL(fileURLWithPath: config.model.path)
        let loaded: HFCausalLM
        do {
            loaded = try HFCausalLM.load(directory: dir)
            text = try loaded.textFormat()
        } catch {
            throw ClusterError("model.path \(dir.path): \(error)")
        }
        guard loaded.model.vocabSize == config.model.vocabSize, loaded.model.contextLength == config.model.contextLength else {
            throw ClusterError("model.path \(dir.path): config.json has vocab \(loaded.model.vocabSize) and context " +
                               "\(loaded.model.contextLength), the run config model.vocabSize \(config.model.vocabSize) and " +
                               "model.contextLength \(config.model.contextLength); load the config with RunConfig.load " +
                               "(or call resolvePaths()), which reads them from model.path")
        }
        model = loaded.model
        hf = loaded
    }

    /// Checks that every problem of a finite (jsonl) task fits the policy: its prompt (and, for `demonstrations`,
    /// its reference plus EOS) tokenises and BOS + prompt + sampling.maxNewTokens fits the context. Generated tasks
    /// fit the default model by construction and are not checked.
    package func checkFits(_ task: any VerifiableTask, config: RunConfig, demonstrations: Bool) throws {
        guard let t = task as? JSONLTask else { return }
        let ctx = model.contextLength, M = config.sampling.maxNewTokens
        for p in t.problems {
            let at = "task.path \(t.path):\(p.line)"
            let prompt: [Int], reference: [Int]
            do {
                prompt = try text.tokenizer.encode(p.prompt)
                reference = demonstrations ? try text.tokenizer.encode(p.reference) : []
            } catch {
                throw ClusterError("\(at): \(error). Point model.path at a model whose tokenizer covers this text")
            }
            guard 1 + prompt.count + M <= ctx else {
                throw ClusterError("\(at): the prompt is \(prompt.count) tokens; BOS + prompt + sampling.maxNewTokens " +
                                   "(\(M)) exceeds the model's context of \(ctx). Shorten the prompt or lower sampling.maxNewTokens")
            }
            guard !demonstrations || 2 + prompt.count + reference.count <= ctx else {
                throw ClusterError("\(at): BOS + prompt (\(prompt.count)) + reference solution (\(reference.count)) + EOS " +
                                   "exceeds the model's context of \(ctx); shorten the solution, or use an algorithm " +
                                   "without demonstrations (rl-*, bon-rl-*) and algorithm.sftWarmupSteps=0")
            }
        }
    }
}

/// Fine-tuned weights back into the Hugging Face layout.
package enum HFExport {
    /// Loads `modelPath` (the run's model.path: architecture, tokenizer files), fills it from a Bonfire checkpoint
    /// of that run and writes config.json + model.safetensors (+ tokenizer files) into `out`. `modelPath` nil =
    /// the model.path recorded in the checkpoint's run config.
    @discardableResult
    package static func write(checkpoint: URL, modelPath: String? = nil, to out: URL, dtype: HFDType? = nil) throws -> HFCausalLM {
        var path = modelPath ?? ""
        if path.isEmpty {
            let meta: [String: String]
            do { meta = try SafeTensors.read(from: checkpoint).metadata } catch {
                throw ClusterError("\(checkpoint.path): \(error); pass a checkpoint written by the learner")
            }
            if let json = meta["config"], let data = json.data(using: .utf8),
               let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let m = root["model"] as? [String: Any], let p = m["path"] as? String {
                path = p
            }
            guard !path.isEmpty else {
                throw ClusterError("\(checkpoint.path) is not from a run with model.path (its run config has no model.path); " +
                                   "only policies loaded from a Hugging Face directory can be exported, or pass --model DIR")
            }
        }
        let hf: HFCausalLM
        do { hf = try HFCausalLM.load(directory: URL(fileURLWithPath: path)) } catch {
            throw ClusterError("model \(path): \(error)")
        }
        do { try ModelCheckpoint.load(from: checkpoint, into: hf.model) } catch {
            throw ClusterError("\(checkpoint.path): \(error)")
        }
        do { try hf.save(to: out, dtype: dtype) } catch {
            throw ClusterError("cannot write \(out.path): \(error)")
        }
        return hf
    }
}
