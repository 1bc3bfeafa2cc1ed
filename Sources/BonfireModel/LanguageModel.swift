// What the sampler, the algorithms and the runtime need from a policy, whatever its architecture: Bonfire's own
// `GPT` (also the Hugging Face GPT-2 architecture) and `LlamaModel` (Llama, SmolLM, Qwen2) conform.
// Parameters are ONE contiguous [Float] addressed through `layout`; `grads` mirrors it and accumulates.
// Every LanguageModel is a CheckpointModel (ModelCheckpoint.swift: "gpt" or "llama"), so the learners checkpoint
// `any LanguageModel` through the one checkpoint format.

import BonfireMath

package protocol LanguageModel: CheckpointModel {
    var vocabSize: Int { get }
    /// Longest sequence (prompt + response) the model accepts.
    var contextLength: Int { get }
    var params: [Float] { get set }
    var grads: [Float] { get set }
    /// Whether `grads` is allocated: it is on first use, so a model that only samples (an actor's) never holds it.
    var hasGradients: Bool { get }
    var layout: ParameterLayout { get }

    func zeroGrad()
    /// log π_T(tok[t] | tok[<t]) for t = 1..<len of each sequence (count len − 1).
    func tokenLogProbs(_ sequences: [[Int]], temperature: Float) -> [[Float]]
    /// One forward + backward of −Σ w·log π_T − c·Σ_{w≠0} H; grads ACCUMULATE (see GPT.forwardBackward).
    @discardableResult
    func forwardBackward(_ sequences: [[Int]], temperature: Float, entropyCoefficient: Float,
                         weights: ([[Float]]) -> [[Float]]) -> ForwardStats
    /// Full-forward logits [b][t][v] over the real rows.
    func logits(_ sequences: [[Int]]) -> [[[Float]]]
    /// KV-cache sampling; result is [prompt][sample] (see Sampler.swift for the distribution).
    func sample(prompts: [[Int]], samplesPerPrompt: Int, config: SamplingConfig, rng: inout RNG) -> [[SampledResponse]]
    /// KV-cache logits after the prompt and after each continuation token (for consistency tests).
    func cachedLogits(prompt: [Int], continuation: [Int]) -> [[Float]]
    /// A second model of the same architecture holding a copy of these parameters (e.g. π_ref of a KL penalty).
    func copy() -> any LanguageModel
}

extension GPT: LanguageModel {
    package var vocabSize: Int { config.vocabSize }
    package var contextLength: Int { config.contextLength }
    package func copy() -> any LanguageModel {
        let m = GPT(config: config, seed: 0, randomInit: false)
        m.params = params
        return m
    }
}

extension LlamaModel: CheckpointModel {
    package static var checkpointKind: String { "llama" }
}

extension LlamaModel {
    package func copy() -> any LanguageModel {
        let m = LlamaModel(config: config, seed: 0, randomInit: false)
        m.params = params
        return m
    }
}

/// A model's gradient buffer: `count` zeros, allocated on first access (`GPT.grads`, `LlamaModel.grads`). A
/// sampling-only role (an actor, the evaluator) never touches it: for a 124 M-parameter model that is 0.47 GiB of
/// resident memory it does not hold. Reads, writes and inout access all reach the one buffer in place
/// (GradientAllocationTests checks its address).
@propertyWrapper
package struct LazyGradients {
    private var storage: [Float] = []
    private let count: Int
    package init(count: Int) {
        precondition(count > 0, "LazyGradients: a model has at least one parameter, got \(count)")
        self.count = count
    }
    package var wrappedValue: [Float] {
        mutating get { allocate(); return storage }
        _modify { allocate(); yield &storage }
        set { storage = newValue }
    }
    /// Whether the buffer exists yet.
    package var isAllocated: Bool { !storage.isEmpty }
    private mutating func allocate() { if storage.isEmpty { storage = [Float](repeating: 0, count: count) } }
}
