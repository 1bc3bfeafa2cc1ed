// An actor: samples BoN groups with the latest parameters it holds, scores them, pushes them to the learner, and
// runs evaluations when the coordinator asks. Sockets, registration, heartbeats and the parameter path are the
// shared `ActorLink` (ActorLink.swift); the PUSH high-water mark is small so actors cannot race far ahead producing
// samples that would only be dropped as stale. Every N responses of a group come from one policy version, recorded
// once per group.
import BonfireMath
import BonfireModel
import BonfireTasks
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

package final class ActorRole {
    let config: RunConfig
    let id: Int
    let task: any VerifiableTask
    let verifier: any Verifier
    let model: GPT
    var rng: RNG
    var samplesTotal = 0, groupsSent = 0, droppedTotal = 0
    var promptCursor: Int
    /// Prompts per pushed message (each with `sampling.groupSize` responses).
    let promptsPerMessage = 2

    package init(config: RunConfig, id: Int) throws {
        self.config = config
        self.id = id
        self.task = try TaskRegistry.make(name: config.task.name, seed: config.task.seed)
        self.verifier = try makeVerifier(name: config.actors.verifier, task: task, seed: config.run.seed)
        self.model = GPT(config: config.gptConfig, seed: config.run.seed)
        self.rng = RNG(seed: config.run.seed, stream: 3, UInt64(id), UInt64(getpid()))
        // Actors walk the train split from different offsets; a restarted actor starts elsewhere (pid in the stream).
        self.promptCursor = rng.int(1_000_000)
    }

    package func run(context: ZMQContext) throws -> Int32 {
        let link = try ActorLink(context: context, config: config, id: id, capabilities: ["bon-groups", "eval"],
                                 pushHighWaterMark: 4, layoutHash: layoutHash(model.layout),
                                 parameterCount: model.params.count, modelSection: "model section")
        defer { link.close() }
        let name = link.name
        var messagesWithVersion = 0   // messages sampled with the version held now (see the version budget below)
        let apply: ([Float], Int) throws -> Void = { [model] values, version in
            let first = link.version < 0
            model.params = values
            messagesWithVersion = 0
            if first { roleLog("\(name): got parameters version \(version); sampling") }
        }
        try link.register()
        guard try link.fetchInitialParameters(apply) else { return 0 }

        let e = config.endpoints
        // Messages per policy version: this actor's share of one update (groupsPerStep × publishEvery groups).
        let share = config.learner.groupsPerStep * config.learner.publishEvery
        let messageBudget = max(1, (share + config.actors.count * promptsPerMessage - 1) / (config.actors.count * promptsPerMessage))
        var lastMetrics = monotonicMillis()
        var periodSamples = 0
        var pushBlockedSince: Int64?
        var lastBlockedLog: Int64 = 0
        while true {
            if StopFlag.isSet {
                roleLog("\(name): stop signal; leaving")
                link.leave(reason: "actor stopped by signal")
                return 0
            }
            let now = monotonicMillis()
            _ = try link.pollParameters(apply)
            for event in try link.pollControl() {
                switch event {
                case .shutdown(let reason):
                    roleLog("\(name): shutdown from coordinator (\(reason)); sent \(groupsSent) groups, \(samplesTotal) samples")
                    return 0
                case .evalRequest(let r):
                    _ = try link.pollParameters(apply)  // evaluate the newest parameters we can get
                    try link.sendControl(.evalReport(evaluate(r, version: link.version, name: name)),
                                         timeout: ms(config.liveness.receiveTimeoutMs))
                }
            }
            link.heartbeat(state: "sampling")
            if now - lastMetrics >= Int64(config.logging.periodSeconds * 1000) {
                let rate = Double(periodSamples) / (Double(now - lastMetrics) / 1000)
                try link.sendControl(.metrics(WireMetrics(step: UInt64(groupsSent), version: UInt64(max(link.version, 0)), values: [
                    "actor/samples_total": Double(samplesTotal), "actor/dropped_total": Double(droppedTotal),
                    "throughput/samples_per_s": rate,
                ])))
                lastMetrics = now; periodSamples = 0
            }

            // Version budget: an actor's share of one update per policy version, then wait (bounded) for a newer
            // version. Without it actors outrun the learner and most of their groups age past maxPolicyLag in the
            // queues and are dropped. If no newer version comes within receiveTimeoutMs (e.g. an actor died and the
            // learner waits for more groups), sample anyway.
            if messagesWithVersion >= messageBudget {
                guard try link.waitForNewerVersion(apply, state: "sampling") else { continue }
                messagesWithVersion = 0
            }
            // One message of BoN groups, sampled by the single version we hold now.
            let batch = sampleGroups(version: link.version)
            messagesWithVersion += 1
            if try link.push(.bonGroups(batch), timeout: ms(config.liveness.receiveTimeoutMs)) {
                let n = batch.groups.reduce(0) { $0 + $1.responses.count }
                groupsSent += batch.groups.count
                samplesTotal += n
                periodSamples += n
                pushBlockedSince = nil
            } else {
                droppedTotal += batch.groups.count
                let since = pushBlockedSince ?? now
                pushBlockedSince = since
                if now - lastBlockedLog >= 10_000 {
                    lastBlockedLog = now
                    roleLog("\(name): learner is not taking rollouts at \(e.connect(e.rolloutPort)) (send waited " +
                            "\(config.liveness.receiveTimeoutMs) ms, blocked for \(now - since) ms); \(droppedTotal) groups dropped so far; retrying")
                }
            }
        }
    }

    func nextItem() -> TaskItem {
        promptCursor += 1
        return task.item(split: .train, index: promptCursor % trainSplitSize)
    }

    func sampleGroups(version: Int) -> WireBoNGroupBatch {
        let items = (0..<promptsPerMessage).map { _ in nextItem() }
        // Prompt token ids without BOS on the wire (the learner's sequences are BOS + prompt + response).
        let promptIDs = items.map { (try? Tokenizer.encode($0.prompt)) ?? [] }
        let prompts = promptIDs.map { [Tokenizer.bos] + $0 }
        let sc = config.samplingConfig
        let out = model.sample(prompts: prompts, samplesPerPrompt: config.sampling.groupSize, config: sc, rng: &rng)
        var groups: [WireBoNGroup] = []
        for (k, item) in items.enumerated() {
            let texts = out[k].map { Tokenizer.decode($0.tokens) }
            let scores = verifier.scores(item: item, responses: texts)
            let responses = out[k].enumerated().map { (i, r) in
                WireBoNResponse(tokens: r.tokens, tokenLogProbs: r.logProbs, verifierScore: scores[i],
                                reward: task.reward(item: item, response: texts[i]).reward)
            }
            groups.append(WireBoNGroup(itemID: UInt64(item.index), promptTokens: promptIDs[k],
                                       behaviourVersion: UInt64(version), temperature: sc.temperature, responses: responses))
        }
        return WireBoNGroupBatch(task: config.task.name, groups: groups)
    }

    func evaluate(_ r: WireEvalRequest, version: Int, name: String) -> WireEvalReport {
        roleLog("\(name): evaluating version \(version) (requested \(r.version)) on \(r.numPrompts) \(r.split) prompts")
        let split = Split(rawValue: r.split) ?? .test
        let items = task.items(split: split, range: 0..<max(1, r.numPrompts))
        let table = evaluatePolicy(model: model, task: task, verifier: verifier, items: items,
                                   samples: config.eval.samples, nList: r.nList, temperatures: r.temperatures,
                                   maxNewTokens: config.sampling.maxNewTokens, rng: &rng)
        return WireEvalReport(requestID: r.requestID, version: UInt64(version), task: r.task, split: r.split,
                              rows: table.map { WireEvalRow(n: $0.n, temperature: $0.temperature, passAtN: $0.passAtN,
                                                           boN: $0.boN, meanReward: $0.meanReward, numPrompts: items.count) })
    }
}

/// Train-split indices actors cycle through.
let trainSplitSize = 100_000
