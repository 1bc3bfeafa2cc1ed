// The BoN job: actors sample BoN groups over a task (math, code, jsonl) and score them; the learner trains the policy
// (RunPolicy.swift: Bonfire's GPT, or the Hugging Face model of `model.path` with its tokenizer) with
// `algorithm.name` (one file each in Sources/BonfireAlgorithms).
//
//   BoNGroupSource   per message `promptsPerMessage` train-split prompts × `responsesPerGroup` responses (sampling.groupSize;
//                    bon-sft: M = algorithm.bonSFTSamples, default 4N′ in [8, 32]), one policy
//                    version per message; verifier score r and reward R per response; evaluation = the task's
//                    Evaluator (pass@N, Bo-N per N and temperature) on the test split.
//   BoNPolicyLearner one update on `learner.groupsPerStep` groups: BoN-aware algorithms train for N′ =
//                    algorithm.trainN, each group cut into groupSize/N′ disjoint sub-groups (independent draws of N′
//                    samples from one behaviour policy, so the per-group estimators stay unbiased); sft / bon-sft
//                    train on the reference of each group's prompt (bon-sft also on the group's samples).
import BonfireAlgorithms
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation

extension BoNGroup: RolloutUnit {}

/// Train-split indices actors cycle through.
package let trainSplitSize = 100_000

package final class BoNGroupSource: RolloutSource {
    let config: RunConfig
    let task: any VerifiableTask
    let verifier: any Verifier
    /// The actor's copy of the policy: it samples and scores, never trains (so it never allocates gradients).
    package let model: any LanguageModel
    let text: TextFormat
    /// This actor's offset into the train split, and the prompts taken with the current version: prompt indices are
    /// a function of (actor, incarnation, version, count), so a resumed run samples what an uninterrupted one would.
    let promptBase: Int
    var promptVersion = -1, promptsThisVersion = 0
    /// Prompts per pushed message (each with `config.responsesPerGroup` responses).
    let promptsPerMessage = 2

    package init(config: RunConfig, actorID: Int, incarnation: Int = 0) throws {
        self.config = config
        self.task = try TaskRegistry.make(config.task.name, seed: config.task.seed, path: config.task.path)
        self.verifier = try makeVerifier(config.verifierOptions, task: task, seed: config.run.seed)
        let policy = try RunPolicy(config: config)
        try policy.checkFits(task, config: config, demonstrations: false)
        self.model = policy.model
        self.text = policy.text
        // Actors walk the train split from different offsets (a restarted actor starts elsewhere).
        var r = RNG(seed: config.run.seed, stream: 0x6375_7273, UInt64(actorID), UInt64(incarnation))   // "curs"
        self.promptBase = r.int(trainSplitSize)
    }

    package var job: JobKind { .bon }
    package var detail: String { "\(config.task.name.rawValue) BoN groups of \(config.responsesPerGroup), verifier \(config.actors.verifier.rawValue)" }
    package var parameterCount: Int { model.params.count }
    package var layoutHash: UInt64 { BonfireCluster.layoutHash(model.layout) }
    package var pushHighWaterMark: Int32 { 4 }
    package func install(parameters: [Float]) {
        model.params = parameters
        promptVersion = -1   // a version installed again (restarted learner) samples the same prompts again
    }

    package func swapParameters(_ values: [Float]) { model.params = values }

    package func produce(version: Int, maxUnits: Int, rng: inout RNG) throws -> [RolloutMessage] {
        let count = max(1, min(promptsPerMessage, maxUnits))
        if version != promptVersion { promptVersion = version; promptsThisVersion = 0 }
        let items = (0..<count).map { _ -> TaskItem in
            promptsThisVersion += 1
            return task.item(split: .train, index: (promptBase + max(0, version) * 4099 + promptsThisVersion) % trainSplitSize)
        }
        // Prompt token ids without BOS on the wire (the learner's sequences are BOS + prompt + response).
        let promptIDs = items.map { (try? text.tokenizer.encode($0.prompt)) ?? [] }
        var sc = config.samplingConfig
        sc.stopToken = text.eos
        let out = model.sample(prompts: promptIDs.map { [text.bos] + $0 }, samplesPerPrompt: config.responsesPerGroup,
                               config: sc, rng: &rng)
        var groups: [WireBoNGroup] = []
        for (k, item) in items.enumerated() {
            let texts = out[k].map { text.decodeResponse($0.tokens) }
            let scores = verifier.scores(item: item, responses: texts)
            let responses = out[k].enumerated().map { (i, r) in
                WireBoNResponse(tokens: r.tokens, tokenLogProbs: r.logProbs, verifierScore: scores[i],
                                reward: task.reward(item: item, response: texts[i]).reward)
            }
            groups.append(WireBoNGroup(itemID: UInt64(item.index), promptTokens: promptIDs[k],
                                       behaviourVersion: UInt64(max(0, version)), temperature: sc.temperature, responses: responses))
        }
        let batch = WireBoNGroupBatch(task: config.task.name.rawValue, groups: groups)
        return [RolloutMessage(payload: .bonGroups(batch), units: groups.count, samples: groups.count * config.responsesPerGroup)]
    }

    package func evaluate(_ r: WireEvalRequest, version: Int, rng: inout RNG) throws -> WireEvalReport {
        let split = Split(rawValue: r.split) ?? .test
        let items = task.items(split: split, range: 0..<max(1, min(r.numPrompts, 100_000)))
        let table = evaluatePolicy(model: model, text: text, task: task, verifier: verifier, items: items,
                                   samples: config.eval.samples, nList: r.nList, temperatures: r.temperatures,
                                   maxNewTokens: config.sampling.maxNewTokens, rng: &rng)
        return WireEvalReport(requestID: r.requestID, version: UInt64(max(0, version)), task: r.task, split: r.split,
                              rows: table.map { WireEvalRow(n: $0.n, temperature: $0.temperature, passAtN: $0.passAtN,
                                                           boN: $0.boN, meanReward: $0.meanReward, numPrompts: items.count) })
    }
}

package final class BoNPolicyLearner: PolicyLearner {
    let config: RunConfig
    let task: any VerifiableTask
    let verifier: any Verifier
    let algorithm: AlgorithmKind
    let options: AlgorithmOptions
    let groupLearner: (any GroupLearner)?
    package let model: any LanguageModel
    let text: TextFormat
    var optimizer: AdamW
    /// π_start for the KL penalty (rl-* with algorithm.klCoefficient > 0): the version-0 policy (after the init
    /// checkpoint or the SFT warm-up), taken by `prepare`. Saved once as `checkpoints/kl-reference.safetensors` with
    /// the first checkpoint; every checkpoint records its parameters' CRC-32 (`kl_reference_crc32`), and `restore`
    /// loads and checks it, so a resumed run anchors to the start, not to the policy it resumed from.
    var reference: (any LanguageModel)?
    /// Whether this process has written (or restored) `checkpoints/kl-reference.safetensors`.
    var referenceOnDisk = false
    /// `parameterChecksum(reference.params)`, computed once (the reference never changes).
    var referenceChecksum: String?
    package private(set) var step = 0
    var skipped = 0

    package init(config: RunConfig) throws {
        self.config = config
        self.task = try TaskRegistry.make(config.task.name, seed: config.task.seed, path: config.task.path)
        self.verifier = try makeVerifier(config.verifierOptions, task: task, seed: config.run.seed)
        self.algorithm = config.algorithm.name
        let policy = try RunPolicy(config: config)
        try policy.checkFits(task, config: config, demonstrations: config.learnerUsesDemonstrations)
        self.model = policy.model
        self.text = policy.text
        var options = config.algorithmOptions
        options.bos = policy.text.bos
        self.options = options
        self.groupLearner = options.groupLearner(algorithm)
        self.optimizer = AdamW(learningRate: Float(config.algorithm.learningRate), layout: model.layout)  // decay only ≥2-D weights
    }

    package var job: JobKind { .bon }
    package var detail: String {
        "algorithm \(algorithm.rawValue), N′=\(options.trainN), task \(config.task.name.rawValue)"
    }
    package var parameters: [Float] { model.params }
    package var layoutHash: UInt64 { BonfireCluster.layoutHash(model.layout) }
    package var unitsPerUpdate: Int { config.learner.groupsPerStep }
    package var pullHighWaterMark: Int32 { 64 }
    package var runningMetrics: [String: Double] { [MetricKey.skippedUpdates: Double(skipped)] }

    func demonstration(_ item: TaskItem) throws -> Demonstration {
        Demonstration(promptTokens: try text.tokenizer.encode(item.prompt),
                      response: try text.tokenizer.encode(item.reference) + [text.eos])
    }

    package func prepare(tick: () -> Void, log: (String) -> Void) throws {
        try initialPolicy(tick: tick, log: log)
        if options.klCoefficient > 0 {
            reference = model.copy()
            log(String(format: "KL reference (β = %g): the version-0 policy", options.klCoefficient))
        }
    }

    /// The version-0 policy: the init checkpoint, the Hugging Face model, or the SFT warm-up.
    func initialPolicy(tick: () -> Void, log: (String) -> Void) throws {
        if !config.algorithm.initCheckpoint.isEmpty {
            let url = URL(fileURLWithPath: config.algorithm.initCheckpoint)
            do { _ = try ModelCheckpoint.load(from: url, into: model) } catch {
                throw ClusterError("learner: cannot load algorithm.initCheckpoint \(url.path): \(error)")
            }
            log("initialised from \(url.path)")
            return
        }
        if !config.model.path.isEmpty {
            log("initialised from the Hugging Face model \(config.model.path) (no SFT warm-up)")
            return
        }
        let steps = config.algorithm.sftWarmupSteps
        guard steps > 0 else { return }
        log("no init checkpoint: \(steps) SFT warm-up steps on reference solutions")
        var warm = AdamW(learningRate: Float(config.algorithm.sftWarmupLearningRate), layout: model.layout)
        let sft = options.sft, batchSize = 16
        // Rate and ETA: one line redrawn in place on a terminal, a plain line every 10 s in a log (stderr).
        let progress = BonfireTasks.Progress("learner: sft warm-up", total: steps, unit: "steps")
        var loss: Float = .nan
        // A diverged warm-up (a learning rate far too high) must stop here, saying so: its non-finite parameters
        // were published as version 0, which every actor rejected, and the job waited for rollouts forever.
        func diverged(_ what: String) -> ClusterError {
            ClusterError("learner: the SFT warm-up diverged (\(what)) with algorithm.sftWarmupLearningRate = "
                         + "\(config.algorithm.sftWarmupLearningRate): lower it (the default is "
                         + "\(RunConfig().algorithm.sftWarmupLearningRate)), or set algorithm.sftWarmupSteps=0")
        }
        for s in 0..<steps {
            let demos = try (0..<batchSize).map { try demonstration(task.item(split: .train, index: 1_000_000 + s * batchSize + $0)) }
            let st = sft.step(demonstrations: demos, model: model, optimizer: &warm)
            loss = st.loss
            guard loss.isFinite else { throw diverged("loss \(loss) at step \(s + 1) of \(steps)") }
            tick()
            progress.advance(detail: String(format: "loss %.4f", loss))
        }
        // (the last step's update shows in no loss; a finite parameter beyond the bound every actor enforces would be
        // rejected as well)
        if let i = model.params.firstIndex(where: { !isPublishable($0) }) {
            throw diverged("parameter \(i) is \(model.params[i]), beyond ±\(ValidationContext.defaultParameterBound)")
        }
        progress.finish(detail: String(format: "loss %.4f", loss))
        log(String(format: "SFT warm-up done: %d steps, final loss %.4f", steps, loss))
    }

    package func admission(_ c: inout ValidationContext) {
        BoNGroup.admission(&c, config: config)
    }

    package func accept(_ payload: WirePayload) -> Accepted<BoNGroup> {
        guard case .bonGroups(let b) = payload else {
            return .invalid(.jobKindMismatch, detail: "\(payload.kind) on the rollout socket of a BoN job")
        }
        return .units(b.groups.map(BoNGroup.init(admitted:)))
    }

    package func update(_ batch: [BoNGroup], version: Int) throws -> [String: Double] {
        let before = model.params
        let beforeOpt = optimizer
        precondition(options.klCoefficient == 0 || reference != nil,
                     "BoNPolicyLearner.update: KL β = \(options.klCoefficient) without a reference (prepare or restore first)")
        let stats: UpdateStats
        switch algorithm {
        case .sft:
            let demos = try batch.map { try demonstration(task.item(split: .train, index: $0.itemIndex)) }
            stats = options.sft.step(demonstrations: demos, model: model, optimizer: &optimizer)
        case .bonSFT:
            let examples = try batch.map { g -> BoNSFTExample in
                let item = task.item(split: .train, index: g.itemIndex)
                let score = verifier.scores(item: item, responses: [item.reference])[0]
                return BoNSFTExample(demonstration: try demonstration(item), expertScore: score, samples: g)
            }
            stats = options.bonSFT()   // M = config.responsesPerGroup, the size of every accepted group
                .step(examples: examples, model: model, optimizer: &optimizer, currentVersion: version)
        default:
            let groups = algorithm.isBoNAware ? batch.flatMap { $0.split(size: options.trainN) } : batch
            stats = groupLearner!.step(batch: BoNBatch(groups: groups), model: model, optimizer: &optimizer,
                                       currentVersion: version, reference: reference)
        }
        var values: [String: Double] = [:]
        if !stats.loss.isFinite || !stats.gradNorm.isFinite || !model.params.allSatisfy(isPublishable) {
            // A diverged update is never applied: parameters and optimizer go back to their values before it. That
            // includes finite parameters beyond the bound actors accept: published, every actor rejected them and
            // the job stalled waiting for rollouts.
            model.params = before
            optimizer = beforeOpt
            skipped += 1
            roleLog("learner: update \(step + 1) diverged (loss \(stats.loss), grad norm \(stats.gradNorm)); "
                    + divergedUpdateAdvice(skipped: skipped, learningRateKey: "algorithm.learningRate",
                                           value: config.algorithm.learningRate))
        }
        step += 1
        let rewards = batch.flatMap(\.rewards), scores = batch.flatMap(\.scores)
        let bestOf = batch.map { g in g.rewards.max() ?? 0 }
        values[MetricKey.policyLoss] = Double(stats.loss)
        values[MetricKey.gradNorm] = Double(stats.gradNorm)
        values[MetricKey.entropy] = Double(stats.meanEntropy)
        values[MetricKey.importanceRatio] = stats.meanImportanceRatio
        values[MetricKey.rewardMean] = rewards.reduce(0, +) / Double(max(1, rewards.count))
        values[MetricKey.scoreMean] = scores.reduce(0, +) / Double(max(1, scores.count))
        values[MetricKey.groupPassRate] = bestOf.reduce(0, +) / Double(max(1, bestOf.count))
        // r and R of all samples and of the BoN picks (the reward-hacking alarm, status and report).
        values.merge(RewardGap.of(groups: batch.map { ($0.scores, $0.rewards) })?.metrics ?? [:]) { a, _ in a }
        return values
    }

    /// `checkpoints/kl-reference.safetensors` beside a checkpoint `url`.
    static func referenceURL(besideCheckpoint url: URL) -> URL {
        url.deletingLastPathComponent().appendingPathComponent("kl-reference.safetensors")
    }

    /// CRC-32 of parameters' little-endian bytes, as 8 hex digits (what a checkpoint records of its KL reference).
    static func parameterChecksum(_ params: [Float]) -> String {
        var crc = CRC32()
        params.withUnsafeBytes { crc.update($0) }
        return String(format: "%08x", crc.value)
    }

    package func save(to url: URL, metadata: [String: String]) throws {
        var meta = metadata.merging(["algorithm": algorithm.rawValue]) { a, _ in a }
        if let reference {
            if !referenceOnDisk {
                let refURL = BoNPolicyLearner.referenceURL(besideCheckpoint: url)
                try ModelCheckpoint.save(reference, optimizer: nil, step: 0,
                                         metadata: ["run_id": config.run.id, "role": "kl-reference"], to: refURL)
                referenceOnDisk = true
            }
            let crc = referenceChecksum ?? BoNPolicyLearner.parameterChecksum(reference.params)
            referenceChecksum = crc
            meta["kl_reference_crc32"] = crc
        }
        try ModelCheckpoint.save(model, optimizer: optimizer, step: step, metadata: meta, to: url)
    }

    package func restore(from url: URL) throws -> [String: String] {
        let (opt, step, meta) = try ModelCheckpoint.load(from: url, into: model)
        if options.klCoefficient > 0 { try restoreReference(besideCheckpoint: url, metadata: meta) }
        if let opt { optimizer = opt }
        self.step = step
        return meta
    }

    /// Loads π_start for the KL penalty and checks it is the one the checkpoint was trained against.
    func restoreReference(besideCheckpoint url: URL, metadata meta: [String: String]) throws {
        let refURL = BoNPolicyLearner.referenceURL(besideCheckpoint: url)
        let fresh = "or start the run afresh in a new run directory (without --resume)"
        guard let expected = meta["kl_reference_crc32"] else {
            throw ClusterError("learner: \(url.lastPathComponent) was trained without a KL reference, but this run has "
                               + "algorithm.klCoefficient = \(options.klCoefficient); resume with the klCoefficient the run "
                               + "started with (0), " + fresh)
        }
        guard FileManager.default.fileExists(atPath: refURL.path) else {
            throw ClusterError("learner: the KL reference \(refURL.path) is missing; it holds the version-0 policy the KL "
                               + "penalty anchors to (CRC-32 \(expected)). Put it back from a copy of the run directory, " + fresh)
        }
        let ref = model.copy()
        do { _ = try ModelCheckpoint.load(from: refURL, into: ref) } catch {
            throw ClusterError("learner: the KL reference \(refURL.path) is unreadable (\(error)). Put it back from a copy "
                               + "of the run directory, " + fresh)
        }
        let got = BoNPolicyLearner.parameterChecksum(ref.params)
        guard got == expected else {
            throw ClusterError("learner: the KL reference \(refURL.path) (CRC-32 \(got)) is not the one \(url.lastPathComponent) "
                               + "was trained against (CRC-32 \(expected)). Put the run's own file back, " + fresh)
        }
        reference = ref
        referenceChecksum = got
        referenceOnDisk = true
    }
}

extension BoNGroup {
    /// What a valid BoN group of this run is (checked by `ValidationContext.validate` before conversion): the run's
    /// task, item ids of its train split, `config.responsesPerGroup` responses (M for bon-sft, else `sampling.groupSize`) of 1…maxNewTokens tokens, ids within the
    /// vocabulary, BOS + prompt + response within the context, finite log-probs in [−100, 1e-4], finite scores and
    /// rewards within ±1e6, versions that fit `Int` and are not ahead of the learner's.
    package static func admission(_ c: inout ValidationContext, config: RunConfig) {
        c.rolloutKind = .bonGroups
        c.task = config.task.name.rawValue
        c.itemCount = trainSplitSize
        c.vocabSize = config.model.vocabSize
        c.contextLength = config.model.contextLength - 1        // the model prepends BOS
        c.maxNewTokens = config.sampling.maxNewTokens
        c.groupSizes = config.responsesPerGroup...config.responsesPerGroup
        c.rewardRange = -1e6...1e6
        c.scoreRange = -1e6...1e6
    }

    /// The algorithms' view of a group the inbox admitted (every integer already known to fit).
    init(admitted g: WireBoNGroup) {
        self.init(promptTokens: g.promptTokens, responses: g.responses.map(\.tokens),
                  behaviourLogProbs: g.responses.map(\.tokenLogProbs), behaviourVersion: Int(g.behaviourVersion),
                  scores: g.responses.map(\.verifierScore), rewards: g.responses.map(\.reward),
                  itemIndex: Int(g.itemID))
    }

    /// Disjoint sub-groups of `size` responses (a group smaller than or equal to `size` stays whole).
    func split(size: Int) -> [BoNGroup] {
        guard size >= 1, size < n else { return [self] }
        return stride(from: 0, to: n - size + 1, by: size).map { s in
            let r = s..<(s + size)
            return BoNGroup(promptTokens: promptTokens, responses: Array(responses[r]),
                            behaviourLogProbs: Array(behaviourLogProbs[r]), behaviourVersion: behaviourVersion,
                            scores: Array(scores[r]), rewards: Array(rewards[r]), itemIndex: itemIndex)
        }
    }
}
