// Hostile rollouts at the learner's door, for every job: real messages produced by the real actor-side source
// (BoN groups, gridworld episode chunks, guess text episodes), then mutated into hostile values, then judged the way
// the learner runtime judges them — its inbox's `ValidationContext` filled by the job (`PolicyLearner.admission`) at
// the learner's current version, then the job's own conversion (`accept`). Every hostile one is rejected with the
// expected reason, none traps, and the unmutated message is accepted.
import BonfireAlgorithms
import BonfireCluster
import BonfireMath
import BonfireWire
import XCTest

final class RolloutValidationTests: XCTestCase {
    /// The learner's verdict on `payload` from actor 1 at learner version `version`: nil = accepted (units or
    /// statistics), else the drop reason.
    func verdict<L: PolicyLearner>(_ learner: L, _ payload: WirePayload, version: Int, config: RunConfig,
                                   sender: WireRole = .actor) -> DropReason? {
        var ctx = ValidationContext(receiver: .learner, runID: config.run.id)
        learner.admission(&ctx)
        ctx.currentVersion = version
        let env = WireEnvelope(runID: config.run.id, senderRole: sender, senderID: 1, sequence: 1, payload: payload)
        if case .invalid(let r, _) = ctx.validate(env) { return r }
        if case .invalid(let r, _) = learner.accept(payload) { return r }
        return nil
    }

    func check<L: PolicyLearner>(_ learner: L, config: RunConfig, valid: WirePayload, version: Int,
                                 cases: [(DropReason, WirePayload)], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNil(verdict(learner, valid, version: version, config: config), "the unmutated message was rejected",
                     file: file, line: line)
        XCTAssertEqual(verdict(learner, valid, version: version, config: config, sender: .learner), .senderRoleNotAllowed,
                       file: file, line: line)
        XCTAssertEqual(verdict(learner, valid, version: version, config: config, sender: .coordinator), .senderRoleNotAllowed,
                       file: file, line: line)
        for (i, (reason, p)) in cases.enumerated() {
            XCTAssertEqual(verdict(learner, p, version: version, config: config), reason, "case \(i)", file: file, line: line)
        }
    }

    func testHostileBoNGroupsAreRejectedByReason() throws {
        let c = try RunConfig.load(sets: ["algorithm.sftWarmupSteps=0"])
        let source = try BoNGroupSource(config: c, actorID: 1)
        var rng = RNG(seed: 3)
        guard case .bonGroups(let batch) = try source.produce(version: 3, maxUnits: 2, rng: &rng)[0].payload else {
            return XCTFail("the BoN source produced something else")
        }
        let learner = try BoNPolicyLearner(config: c)
        func g(_ edit: (inout WireBoNGroup) -> Void) -> WirePayload {
            var b = batch
            edit(&b.groups[0])
            return .bonGroups(b)
        }
        func b(_ edit: (inout WireBoNGroupBatch) -> Void) -> WirePayload { var x = batch; edit(&x); return .bonGroups(x) }
        let vocab = c.model.vocabSize, ctxLen = c.model.contextLength, maxNew = c.sampling.maxNewTokens
        check(learner, config: c, valid: .bonGroups(batch), version: 3, cases: [
            (.versionOutOfRange, g { $0.behaviourVersion = .max }),
            (.versionOutOfRange, g { $0.behaviourVersion = UInt64(Int64.max) + 1 }),
            (.versionFromFuture, g { $0.behaviourVersion = 4 }),
            (.versionFromFuture, g { $0.behaviourVersion = UInt64(Int64.max) }),
            (.itemOutOfRange, g { $0.itemID = .max }),
            (.itemOutOfRange, g { $0.itemID = UInt64(trainSplitSize) }),
            (.emptyGroup, g { $0.responses = [] }),
            (.groupSizeMismatch, g { $0.responses += $0.responses }),
            (.groupSizeMismatch, g { $0.responses.removeLast() }),
            (.tokenOutOfVocabulary, g { $0.promptTokens = [5, vocab] }),
            (.tokenOutOfVocabulary, g { $0.promptTokens = [-1] }),
            (.tokenOutOfVocabulary, g { $0.promptTokens = [Int(Int32.min)] }),
            (.emptyPrompt, g { $0.promptTokens = [] }),
            (.emptyResponse, g { $0.responses[3].tokens = []; $0.responses[3].tokenLogProbs = [] }),
            (.tokenOutOfVocabulary, g { $0.responses[3].tokens[0] = Int(UInt32.max) }),
            (.responseTooLong, g { $0.responses[3].tokens = [Int](repeating: 1, count: maxNew + 1)
                                   $0.responses[3].tokenLogProbs = [Float](repeating: -1, count: maxNew + 1) }),
            (.sequenceTooLong, g { $0.promptTokens = [Int](repeating: 5, count: ctxLen) }),
            (.sequenceTooLong, g { $0.promptTokens = [Int](repeating: 5, count: ctxLen - $0.responses.map(\.tokens.count).max()!) }),
            (.invalidField, g { $0.responses[0].tokenLogProbs.removeLast() }),
            (.logProbNonFinite, g { $0.responses[0].tokenLogProbs[0] = .nan }),
            (.logProbNonFinite, g { $0.responses[0].tokenLogProbs[0] = -.infinity }),
            (.logProbOutOfRange, g { $0.responses[0].tokenLogProbs[0] = 0.5 }),
            (.logProbOutOfRange, g { $0.responses[0].tokenLogProbs[0] = -1e30 }),
            (.rewardNonFinite, g { $0.responses[0].reward = .infinity }),
            (.rewardOutOfRange, g { $0.responses[0].reward = 1e30 }),
            (.rewardOutOfRange, g { $0.responses[0].reward = -.greatestFiniteMagnitude }),
            (.scoreNonFinite, g { $0.responses[0].verifierScore = -.nan }),
            (.scoreOutOfRange, g { $0.responses[0].verifierScore = 1e300 }),
            (.temperatureOutOfRange, g { $0.temperature = .nan }),
            (.temperatureOutOfRange, g { $0.temperature = -1 }),
            (.taskMismatch, b { $0.task = "code" }),
            (.stringTooLong, b { $0.task = String(repeating: "m", count: 10_000) }),
            (.emptyBatch, b { $0.groups = [] }),
            (.tooManyItems, b { $0.groups = [WireBoNGroup](repeating: $0.groups[0], count: 5000) }),
            (.jobKindMismatch, .episodes(WireEpisodeBatch(env: "gridworld", observationDim: 1, observations: [0], actions: [0],
                                                         rewards: [0], dones: [true], truncations: [false],
                                                         behaviourLogProbs: [-1], behaviourVersions: [3],
                                                         bootstrapObservation: []))),
        ])
        // Stale is not a drop at the door: it is judged when the unit is used (StalenessGate).
        XCTAssertNil(verdict(learner, g { $0.behaviourVersion = 0 }, version: 3, config: c))
        if case .units(let u) = learner.accept(.bonGroups(batch)) {
            XCTAssertEqual(u.count, batch.groups.count)
            XCTAssertEqual(u[0].behaviourVersion, 3)
            XCTAssertEqual(u[0].itemIndex, Int(batch.groups[0].itemID))
        } else { XCTFail("a valid message was not converted") }
    }

    func testHostileEnvironmentEpisodesAreRejectedByReason() throws {
        let c = try RunConfig.load(sets: ["env.name=gridworld", "env.chunkLength=16"])
        let source = EpisodeSource(config: c, actorID: 1)
        var rng = RNG(seed: 5)
        let messages = try source.produce(version: 2, maxUnits: 4, rng: &rng)
        guard let valid = messages.lazy.compactMap({ m -> WireEpisodeBatch? in
            if case .episodes(let e) = m.payload { return e } else { return nil } }).first else {
            return XCTFail("the episode source produced no chunk")
        }
        let learner = ActorCriticPolicyLearner(config: c)
        func e(_ edit: (inout WireEpisodeBatch) -> Void) -> WirePayload { var x = valid; edit(&x); return .episodes(x) }
        let T = valid.actions.count, D = Int(valid.observationDim)
        check(learner, config: c, valid: .episodes(valid), version: 2, cases: [
            (.envMismatch, e { $0.env = "keydoor" }),
            (.observationSizeMismatch, e { $0.observationDim = D + 1; $0.observations += [Float](repeating: 0, count: T)
                                           $0.bootstrapObservation += $0.bootstrapObservation.isEmpty ? [] : [0] }),
            (.invalidField, e { $0.observationDim = .max }),
            (.observationNonFinite, e { $0.observations[D + 1] = .nan }),
            (.observationNonFinite, e { $0.observations[0] = 1e30 }),
            (.actionOutOfRange, e { $0.actions[0] = 1000 }),
            (.actionOutOfRange, e { $0.actions[T - 1] = -1 }),
            (.actionOutOfRange, e { $0.actions[0] = .min }),
            (.rewardNonFinite, e { $0.rewards[0] = .infinity }),
            (.rewardOutOfRange, e { $0.rewards[0] = 1e30 }),
            (.logProbNonFinite, e { $0.behaviourLogProbs[0] = .nan }),
            (.logProbOutOfRange, e { $0.behaviourLogProbs[0] = 3 }),
            (.versionOutOfRange, e { $0.behaviourVersions[0] = .max }),
            (.versionFromFuture, e { $0.behaviourVersions[T - 1] = 3 }),
            (.invalidField, e { $0.rewards.removeLast() }),
            (.invalidField, e { $0.observations.removeLast() }),
            (.emptyBatch, e { $0 = WireEpisodeBatch(env: "gridworld", observationDim: D, observations: [], actions: [],
                                                   rewards: [], dones: [], truncations: [], behaviourLogProbs: [],
                                                   behaviourVersions: [], bootstrapObservation: []) }),
            (.jobKindMismatch, .bonGroups(WireBoNGroupBatch(task: "math", groups: []))),
        ])
    }

    func testHostileTextEpisodesAreRejectedByReason() throws {
        let c = try RunConfig.load(sets: ["env.name=guess"])
        let source = TextEpisodeSource(config: c, actorID: 1)
        var rng = RNG(seed: 7)
        guard let valid = try source.produce(version: 1, maxUnits: 1, rng: &rng).lazy.compactMap({ m -> WireEpisodeBatch? in
            if case .episodes(let e) = m.payload { return e } else { return nil } }).first else {
            return XCTFail("the text source produced no episode")
        }
        let learner = TextActorCriticPolicyLearner(config: c)
        func e(_ edit: (inout WireEpisodeBatch) -> Void) -> WirePayload { var x = valid; edit(&x); return .episodes(x) }
        let T = valid.actions.count, W = Int(valid.observationDim), vocab = c.textPolicyConfig.vocabSize
        check(learner, config: c, valid: .episodes(valid), version: 1, cases: [
            (.tokenOutOfVocabulary, e { $0.observations[0] = Float(vocab) }),
            (.tokenOutOfVocabulary, e { $0.observations[0] = 0.5 }),
            (.tokenOutOfVocabulary, e { $0.observations[0] = -2 }),
            (.tokenOutOfVocabulary, e { $0.observations[W - 1] = 1 ; $0.observations[W - 2] = -1 }),   // token after padding
            (.emptyPrompt, e { $0.observations.replaceSubrange(0..<W, with: [Float](repeating: -1, count: W)) }), // empty row
            (.actionOutOfRange, e { $0.actions[0] = Int32(vocab) }),
            (.episodeStructure, e { $0.dones[T - 1] = false; $0.bootstrapObservation = [Float](repeating: -1, count: W) }),
            (.episodeStructure, e { if T > 1 { $0.behaviourVersions[0] = 0 } else { $0.dones[0] = false; $0.bootstrapObservation = [Float](repeating: -1, count: W) } }),
            (.versionFromFuture, e { $0.behaviourVersions = [UInt64](repeating: 2, count: T) }),
            (.rewardNonFinite, e { $0.rewards[0] = .nan }),
            (.logProbOutOfRange, e { $0.behaviourLogProbs[0] = -1e9 }),
            (.envMismatch, e { $0.env = "gridworld" }),
            (.observationSizeMismatch, e { $0.observationDim = W - 1; $0.observations.removeLast(T) }),
        ])
    }
}
