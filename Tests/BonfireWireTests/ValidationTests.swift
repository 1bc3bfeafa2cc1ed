// The validation layer: one hostile message per drop reason (each must be rejected with exactly that reason, and
// the set of reasons covered must be every meaning reason), the happy path at the defaults, role permissions,
// registration, replays, the bounded sequence table, DropCounter merge/metrics and DropLog rate limiting.
import BonfireWire
import XCTest

final class ValidationTests: XCTestCase {
    let ctx = FuzzWorld.context(.learner)

    func group(prompt: [Int] = [1, 2, 3], n: Int = FuzzWorld.n, tokens: [Int] = [4, 5], logProbs: [Float]? = nil,
               version: UInt64 = UInt64(FuzzWorld.current), score: Double = 0.5, reward: Double = 1,
               temperature: Float = 1) -> WireBoNGroup {
        WireBoNGroup(itemID: 1, promptTokens: prompt, behaviourVersion: version, temperature: temperature,
                     responses: (0..<n).map { _ in
                         WireBoNResponse(tokens: tokens, tokenLogProbs: logProbs ?? tokens.map { _ in -0.5 },
                                         verifierScore: score, reward: reward)
                     })
    }

    func batch(_ g: WireBoNGroup, task: String = "math") -> WireBoNGroupBatch { WireBoNGroupBatch(task: task, groups: [g]) }

    func envelope(_ p: WirePayload, role: WireRole = .actor, id: UInt32 = 3, run: String = FuzzWorld.runID) -> WireEnvelope {
        WireEnvelope(runID: run, senderRole: role, senderID: id, sequence: 1, payload: p)
    }

    func episodes(_ edit: (inout WireEpisodeBatch) -> Void = { _ in }) -> WireEpisodeBatch {
        var e = WireEpisodeBatch(env: "chain", observationDim: 4, observations: [Float](repeating: 0.5, count: 8),
                                 actions: [0, 2], rewards: [0, 1], dones: [false, false], truncations: [false, false],
                                 behaviourLogProbs: [-1, -1], behaviourVersions: [19, 20],
                                 bootstrapObservation: [0, 0, 0, 0])
        edit(&e)
        return e
    }

    func params(_ edit: (inout WireParameters) -> Void = { _ in }) -> WireParameters {
        var p = WireParameters(version: UInt64(FuzzWorld.current), layoutHash: FuzzWorld.layoutHash,
                               values: [Float](repeating: 0.1, count: FuzzWorld.params))
        edit(&p)
        return p
    }

    func report(_ edit: (inout WireEvalReport) -> Void = { _ in }) -> WireEvalReport {
        var r = WireEvalReport(requestID: 5, version: UInt64(FuzzWorld.current), task: "math", rows: [
            WireEvalRow(n: 4, temperature: 1, passAtN: 0.5, boN: 0.25, meanReward: 0.2, numPrompts: 10)])
        edit(&r)
        return r
    }

    /// One hostile case per reason: (reason, outcome). Every case must produce exactly its reason.
    var cases: [(DropReason, Validation)] {
        var coord = FuzzWorld.context(.coordinator)
        coord.expectedEvalRequests = [5]
        var registered = coord
        registered.senderRegisteredRole = .actor
        var needsReg = coord
        needsReg.requireRegistrationFor = [.metrics]
        var episodeRun = ctx
        episodeRun.rolloutKind = .episodes
        var smallSplit = ctx
        smallSplit.itemCount = 1
        let actorCtx = FuzzWorld.context(.actor)
        let metrics = WireMetrics(step: 1, version: 20, values: ["loss/policy": 1])
        return [
            (.wrongProtocolVersion, ctx.validate(WireEnvelope(runID: FuzzWorld.runID, senderRole: .actor, senderID: 3, sequence: 1,
                                                              payload: .bonGroups(batch(group())), protocolVersion: 2))),
            (.unknownRunID, ctx.validate(envelope(.bonGroups(batch(group())), run: "other-run"))),
            (.senderRoleNotAllowed, actorCtx.validate(envelope(.parameters(params()), role: .actor))),
            (.senderIdentityMismatch, registered.validate(envelope(.metrics(metrics), role: .learner))),
            (.senderNotRegistered, needsReg.validate(envelope(.metrics(metrics), role: .learner))),
            (.versionOutOfRange, ctx.validate(batch(group(version: .max)))),
            (.versionFromFuture, ctx.validate(batch(group(version: UInt64(FuzzWorld.current + 1))))),
            (.versionTooStale, ctx.validate(batch(group(version: UInt64(FuzzWorld.current - FuzzWorld.lag - 1))))),
            (.versionReplayed, actorCtx.validate(params { $0.version = UInt64(FuzzWorld.current - 1) })),
            (.taskMismatch, ctx.validate(batch(group(), task: "code"))),
            (.envMismatch, ctx.validate(episodes { $0.env = "grid" })),
            (.jobKindMismatch, episodeRun.validate(batch(group()))),
            (.unexpectedEvalReport, coord.validate(report { $0.requestID = 6 })),
            (.itemOutOfRange, smallSplit.validate(batch(group()))),
            (.emptyBatch, ctx.validate(WireBoNGroupBatch(task: "math", groups: []))),
            (.emptyGroup, ctx.validate(batch(group(n: 0)))),
            (.emptyPrompt, ctx.validate(batch(group(prompt: [])))),
            (.emptyResponse, ctx.validate(batch(group(tokens: [])))),
            (.groupSizeMismatch, ctx.validate(batch(group(n: FuzzWorld.n + 1)))),
            (.tooManyItems, ctx.validate(WireBoNGroupBatch(task: "math", groups: [WireBoNGroup](repeating: group(), count: FuzzWorld.maxGroups + 1)))),
            (.stringTooLong, ctx.validate(batch(group(), task: String(repeating: "x", count: 257)))),
            (.responseTooLong, ctx.validate(batch(group(tokens: [Int](repeating: 1, count: FuzzWorld.maxNew + 1))))),
            (.sequenceTooLong, ctx.validate(batch(group(prompt: [Int](repeating: 1, count: 50), tokens: [Int](repeating: 1, count: 20))))),
            (.tokenOutOfVocabulary, ctx.validate(batch(group(tokens: [1, FuzzWorld.vocab])))),
            (.observationSizeMismatch, ctx.validate(episodes { $0 = WireEpisodeBatch(
                env: "chain", observationDim: 2, observations: [0, 0], actions: [0], rewards: [0], dones: [false],
                truncations: [false], behaviourLogProbs: [-1], behaviourVersions: [20], bootstrapObservation: [0, 0]) })),
            (.parameterCountMismatch, actorCtx.validate(params { $0.values.removeLast() })),
            (.layoutMismatch, actorCtx.validate(params { $0.layoutHash ^= 1 })),
            (.logProbNonFinite, ctx.validate(batch(group(logProbs: [-1, .nan])))),
            (.logProbOutOfRange, ctx.validate(batch(group(logProbs: [-1, 0.5])))),
            (.rewardNonFinite, ctx.validate(batch(group(reward: .infinity)))),
            (.rewardOutOfRange, ctx.validate(batch(group(reward: 1e30)))),
            (.scoreNonFinite, ctx.validate(batch(group(score: .nan)))),
            (.scoreOutOfRange, ctx.validate(batch(group(score: -1e9)))),
            (.temperatureOutOfRange, ctx.validate(batch(group(temperature: .nan)))),
            (.observationNonFinite, ctx.validate(episodes { $0.observations[3] = .infinity })),
            (.episodeStructure, ctx.validate(episodes { $0.truncations[0] = true })),
            (.actionOutOfRange, ctx.validate(episodes { $0.actions[1] = Int32(FuzzWorld.actions) })),
            (.parameterNonFinite, actorCtx.validate(params { $0.values[7] = .nan })),
            (.metricNonFinite, coord.validate(WireMetrics(step: 1, version: 1, values: ["loss/policy": .nan]))),
            (.evalValueOutOfRange, coord.validate(report { $0.rows[0].passAtN = 1.5 })),
            (.controlValueOutOfRange, actorCtx.validate(WireHelloAck(accepted: true, currentVersion: 1, heartbeatIntervalMs: 0, liveness: 3))),
            (.invalidField, ctx.validate(episodes { $0.rewards.removeLast() })),
            (.sequenceReplayed, { var t = SequenceTable(); _ = t.check(peer: "a", sequence: 5); return t.check(peer: "a", sequence: 5) }()),
        ]
    }

    func testEveryMeaningDropReasonHasAHostileCaseThatProducesExactlyIt() {
        var covered = Set<DropReason>()
        for (reason, outcome) in cases {
            XCTAssertEqual(outcome.reason, reason, "expected \(reason), got \(outcome)")
            covered.insert(reason)
        }
        // Framing reasons that only WireDecoder produces (no decoded message can carry them).
        // Receiver-side reasons are decided by the role (its queue, its CURVE handler), not by a message's content.
        let framingOnly: Set<DropReason> = [.oversized, .malformed, .missingPayload, .bufferFull, .keyRoleMismatch]
        XCTAssertEqual(Set(DropReason.allCases).subtracting(covered).subtracting(framingOnly), [],
                       "add a hostile case for every new DropReason")
    }

    func testWellFormedMessagesAtTheRuntimeDefaultsAreValid() {
        XCTAssertEqual(ctx.validate(envelope(.bonGroups(batch(group())))), .valid)
        XCTAssertEqual(ctx.validate(envelope(.episodes(episodes()))), .valid)
        XCTAssertEqual(ctx.validate(episodes { $0.dones[1] = true; $0.bootstrapObservation = [] }), .valid)
        XCTAssertEqual(FuzzWorld.context(.actor).validate(envelope(.parameters(params()), role: .learner)), .valid)
        XCTAssertEqual(FuzzWorld.context(.coordinator).validate(envelope(.evalReport(report()))), .valid)
        XCTAssertEqual(FuzzWorld.context(.coordinator).validate(envelope(.hello(WireHello(role: .actor, id: 3, host: "h", pid: 1)))), .valid)
        XCTAssertEqual(FuzzWorld.context(.coordinator).validate(
            envelope(.metrics(WireMetrics(step: 3, version: 2, values: ["loss/policy": 0.5])), role: .learner)), .valid)
        // A fresh context (nothing known) accepts anything that fits the generic limits.
        let open = ValidationContext(receiver: .learner, runID: nil)
        XCTAssertEqual(open.validate(batch(group(prompt: [1_000_000], version: 1 << 40))), .valid)
        // The lag bound is inclusive; the coordinator's look-ahead is honoured.
        XCTAssertEqual(ctx.validate(batch(group(version: UInt64(FuzzWorld.current - FuzzWorld.lag)))), .valid)
        XCTAssertEqual(FuzzWorld.context(.coordinator).validate(WireHeartbeat(policyVersion: UInt64(FuzzWorld.current + 2), unixTimeMs: 0)), .valid)
        // Log-prob rounding just above 0 passes; prompt + response exactly the context passes.
        XCTAssertEqual(ctx.validate(batch(group(logProbs: [0, 1e-6]))), .valid)
        XCTAssertEqual(ctx.validate(batch(group(prompt: [Int](repeating: 1, count: 40), tokens: [Int](repeating: 2, count: 24)))), .valid)
    }

    func testRolesMayOnlySendTheirOwnMessages() {
        let coord = FuzzWorld.context(.coordinator)
        let metrics = WireMetrics(step: 1, version: 1, values: [:])
        // A forged "learner finished" from a peer registered as an actor.
        var reg = coord
        reg.senderRegisteredRole = .actor
        XCTAssertEqual(reg.validate(envelope(.metrics(metrics), role: .learner)).reason, .senderIdentityMismatch)
        // An eval report from the learner, BoN groups to the coordinator, eval requests from an actor.
        XCTAssertEqual(coord.validate(envelope(.evalReport(report()), role: .learner)).reason, .senderRoleNotAllowed)
        XCTAssertEqual(coord.validate(envelope(.bonGroups(batch(group())))).reason, .senderRoleNotAllowed)
        XCTAssertEqual(FuzzWorld.context(.actor).validate(envelope(.evalRequest(
            WireEvalRequest(requestID: 1, version: 1, task: "math", nList: [1], temperatures: [1])), role: .actor)).reason,
            .senderRoleNotAllowed)
        // Unspecified role, and a hello whose role/id disagree with its envelope.
        XCTAssertEqual(coord.validate(envelope(.heartbeat(WireHeartbeat(policyVersion: 1, unixTimeMs: 0)), role: .unspecified)).reason,
                       .senderRoleNotAllowed)
        XCTAssertEqual(coord.validate(envelope(.hello(WireHello(role: .learner, id: 0, host: "h", pid: 1)))).reason,
                       .senderIdentityMismatch)
        XCTAssertEqual(coord.validate(envelope(.hello(WireHello(role: .actor, id: 9, host: "h", pid: 1)))).reason,
                       .senderIdentityMismatch)
        // Every receiver/kind pair is decided by the table (no crash, no accidental wildcard).
        for r in WireRole.allCases { for k in WireMessageKind.allCases { _ = k.allowedSenders(to: r) } }
        XCTAssertTrue(WireMessageKind.parameters.allowedSenders(to: .actor) == [.learner])
        // The per-message bitmask check says exactly what the sets say.
        for r in WireRole.allCases {
            for k in WireMessageKind.allCases {
                for s in WireRole.allCases { XCTAssertEqual(k.allows(s, to: r), k.allowedSenders(to: r).contains(s), "\(k) \(s)→\(r)") }
            }
        }
    }

    func testVersionsOfEveryMessageNeverTrapAtUInt64Extremes() {
        let coord = FuzzWorld.context(.coordinator), actor = FuzzWorld.context(.actor)
        for v in [UInt64.max, UInt64(Int64.max) + 1] {
            XCTAssertEqual(ctx.validate(batch(group(version: v))).reason, .versionOutOfRange)
            XCTAssertEqual(ctx.validate(episodes { $0.behaviourVersions[0] = v }).reason, .versionOutOfRange)
            XCTAssertEqual(actor.validate(params { $0.version = v }).reason, .versionOutOfRange)
            XCTAssertEqual(coord.validate(report { $0.version = v }).reason, .versionOutOfRange)
            XCTAssertEqual(coord.validate(WireMetrics(step: 1, version: v, values: [:])).reason, .versionOutOfRange)
            XCTAssertEqual(coord.validate(WireMetrics(step: v, version: 1, values: [:])).reason, .versionOutOfRange)
            XCTAssertEqual(coord.validate(WireHeartbeat(policyVersion: v, unixTimeMs: 0)).reason, .versionOutOfRange)
            XCTAssertEqual(actor.validate(WireHelloAck(accepted: true, currentVersion: v, heartbeatIntervalMs: 1, liveness: 1)).reason,
                           .versionOutOfRange)
            XCTAssertEqual(actor.validate(WireEvalRequest(requestID: 1, version: v, task: "math", nList: [1], temperatures: [1])).reason,
                           .versionOutOfRange)
        }
        // currentVersion near Int.max with a look-ahead and a lag: no overflow traps.
        var c = ctx
        c.currentVersion = .max; c.maxVersionAhead = .max; c.maxLag = .max
        XCTAssertEqual(c.validate(batch(group(version: 0))), .valid)
        c.currentVersion = 0; c.maxLag = 0; c.maxVersionAhead = 0
        XCTAssertEqual(c.validate(batch(group(version: UInt64(Int.max)))).reason, .versionFromFuture)
    }

    func testSequenceTableDetectsReplaysAndStaysBounded() {
        var t = SequenceTable(capacity: 3)
        XCTAssertEqual(t.check(peer: "a", sequence: 1), .valid)
        XCTAssertEqual(t.check(peer: "a", sequence: 2), .valid)
        XCTAssertEqual(t.check(peer: "a", sequence: 2).reason, .sequenceReplayed)
        XCTAssertEqual(t.check(peer: "a", sequence: 0).reason, .sequenceReplayed)
        XCTAssertEqual(t.check(peer: "a", sequence: 1, restart: true), .valid, "a restarted sender counts from 1")
        for i in 0..<1000 { _ = t.check(peer: "p\(i)", sequence: 1) }
        XCTAssertEqual(t.count, 3, "peers cannot grow the table")
    }

    func testDropCounterMergesAndRoundTripsThroughMetrics() {
        var a = DropCounter(), b = DropCounter()
        a.count(.tokenOutOfVocabulary); a.count(.tokenOutOfVocabulary)
        XCTAssertFalse(a.record(ctx.validate(batch(group(reward: .nan)))))
        XCTAssertTrue(a.record(.valid))
        b.merge([.malformed: 3, .oversized: 1])
        let m = a.merged(b)
        XCTAssertEqual(m.total, 7)
        XCTAssertEqual(m[.malformed], 3)
        XCTAssertEqual(m.metrics["wire/dropped/token_out_of_vocabulary"], 2)
        XCTAssertEqual(m.metrics[DropReason.totalMetricKey], 7)
        XCTAssertEqual(DropCounter(metrics: m.metrics), m)
        XCTAssertEqual(DropCounter(metrics: ["wire/dropped/malformed": .nan, "wire/dropped/oversized": -1]).total, 0)
        XCTAssertEqual(m.summary, "malformed 3, token_out_of_vocabulary 2, oversized 1, reward_non_finite 1")
        XCTAssertEqual(Set(DropReason.allCases.map(\.metricKey)).count, DropReason.allCases.count, "metric keys are unique")
        for r in WireDropReason.allCases { XCTAssertEqual(DropReason(r).rawValue, r.rawValue) }
    }

    func testDropLogPrintsOneLinePerReasonPerPeriodWithPeerAndRunningCount() {
        var log = DropLog(period: .seconds(10))
        let t0 = ContinuousClock.now
        let first = log.note(.malformed, peer: "actor-3\nFAKE LOG LINE", detail: "bad", now: t0)
        XCTAssertNotNil(first)
        XCTAssertTrue(first!.contains("actor-3?FAKE"), first!)
        XCTAssertFalse(first!.contains("\n"))
        XCTAssertTrue(first!.contains("malformed, 1 so far"), first!)
        for i in 1...99 { XCTAssertNil(log.note(.malformed, peer: "actor-3", now: t0 + .milliseconds(i))) }
        XCTAssertNotNil(log.note(.tokenOutOfVocabulary, peer: "actor-1", now: t0 + .seconds(1)), "other reasons log independently")
        let later = log.note(.malformed, peer: "actor-3", now: t0 + .seconds(11))
        XCTAssertTrue(later?.contains("101 so far, 99 not logged") ?? false, later ?? "nil")
        XCTAssertEqual(log.counter[.malformed], 101)
        XCTAssertNil(log.note(.valid, peer: "x"))
    }

    func testWireLimitsFromParameterCountAreSaneAndNeverOverflow() {
        XCTAssertEqual(WireLimits(parameterCount: 0).maxMessageBytes, 16 << 20)
        XCTAssertEqual(WireLimits(parameterCount: 10_000_000).maxMessageBytes, 40_000_000 + (1 << 20))
        XCTAssertEqual(WireLimits(parameterCount: Int.max).maxMessageBytes, Int.max)
    }

    func testInboxCountsFramingAndMeaningDropsLogsRateLimitedAndRejectsReplays() {
        var inbox = WireInbox(logPeriod: .seconds(60), checkSequences: true)
        var lines: [String] = []
        let t0 = ContinuousClock.now
        let good = envelope(.bonGroups(batch(group())))
        XCTAssertNotNil(inbox.admit(.success(good), context: ctx, now: t0, log: { lines.append($0) }))
        XCTAssertNil(inbox.admit(.success(good), context: ctx, now: t0, log: { lines.append($0) }), "same sequence: replay")
        var next = good
        next.sequence = 2
        XCTAssertNotNil(inbox.admit(.success(next), context: ctx, now: t0, log: { lines.append($0) }))
        for i in 0..<5 {
            XCTAssertNil(inbox.admit(.failure(WireError(.malformed, "junk \(i)")), context: ctx, peer: "tcp peer", now: t0,
                                     log: { lines.append($0) }))
        }
        var hostile = envelope(.bonGroups(batch(group(version: .max))))
        hostile.sequence = 3
        XCTAssertNil(inbox.admit(.success(hostile), context: ctx, now: t0, log: { lines.append($0) }))
        XCTAssertEqual(inbox.accepted, 2)
        XCTAssertEqual(inbox.drops[.malformed], 5)
        XCTAssertEqual(inbox.drops[.sequenceReplayed], 1)
        XCTAssertEqual(inbox.drops[.versionOutOfRange], 1)
        XCTAssertEqual(lines.count, 3, lines.joined(separator: "\n"))
        XCTAssertTrue(lines.contains { $0.contains("actor-3") && $0.contains("version_out_of_range") }, lines.joined(separator: "\n"))
        XCTAssertEqual(inbox.drops.metrics["wire/dropped"], 7)
        // A restarted sender (reported by liveness) counts from 1 again; without sequence checks nothing is replayed.
        inbox.senderRestarted(role: .actor, id: 3)
        XCTAssertNotNil(inbox.admit(.success(good), context: ctx, now: t0))
        var plain = WireInbox()
        XCTAssertNotNil(plain.admit(.success(good), context: ctx))
        XCTAssertNotNil(plain.admit(.success(good), context: ctx))
    }

    /// The parameter check's vectorised max (float bits as integers) against its plain definition — valid iff every
    /// value is finite and |x| ≤ parameterBound — on random blobs with hostile values planted at random places.
    func testParameterValueCheckMatchesItsPlainDefinition() {
        var rng = SplitMix64(seed: 0x9A7A)
        let bound: Float = 1e6
        let specials: [Float] = [.nan, -.nan, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
                                 bound, -bound, bound.nextUp, (-bound).nextDown, bound.nextDown, -0.0, 0,
                                 .leastNonzeroMagnitude, -.leastNonzeroMagnitude, Float(bitPattern: 0x7FC0_0001)]
        var ctx = ValidationContext(receiver: .actor, runID: nil)
        ctx.parameterBound = bound
        var invalid = 0
        for trial in 0..<3000 {
            var values = (0..<(1 + rng.int(200))).map { _ in rng.float() * 1000 }
            for _ in 0..<rng.int(3) { values[rng.int(values.count)] = specials[rng.int(specials.count)] }
            let plain = values.allSatisfy { $0.isFinite && abs($0) <= bound }
            let got = ctx.validate(WireParameters(version: 1, layoutHash: 0, values: values))
            if plain { XCTAssertEqual(got, .valid, "trial \(trial): \(values)") }
            else {
                invalid += 1
                guard case .invalid(.parameterNonFinite, _) = got else { XCTFail("trial \(trial): \(got) for \(values)"); continue }
            }
        }
        XCTAssertGreaterThan(invalid, 500)
    }

    /// The BoN checks' fast passes (an OR / max over the ids, a branch-free sweep over the log-probs) against their
    /// plain definitions, verdict AND detail: random groups with hostile ids and log-probs planted at random places,
    /// bounds that are NaN or infinite, vocabulary sizes at the edges. The detail names the first offender exactly
    /// as before (the field names are built only on failure now).
    /// The plain definition of the BoN token and log-prob checks: the first failing field in the validator's order,
    /// with its message; nil when the group passes them (both differential tests below compare against it).
    private func plainBoNVerdict(prompt: [Int], responses: [WireBoNResponse], vocabulary v: Int,
                                 context c: ValidationContext) -> Validation? {
        func plainTokens(_ ts: [Int], _ field: String) -> Validation? {
            guard let lo = ts.min(), let hi = ts.max(), lo < 0 || hi >= v else { return nil }
            return .invalid(.tokenOutOfVocabulary, detail: "\(field): token ids \(lo)...\(hi), vocabulary \(v)")
        }
        if let e = plainTokens(prompt, "groups[0].prompt") { return e }
        for (ri, y) in responses.enumerated() {
            let rf = "groups[0].responses[\(ri)]"
            if let e = plainTokens(y.tokens, rf) { return e }
            let lo = c.logProbFloor, hi = c.logProbCeiling
            if let i = y.tokenLogProbs.firstIndex(where: { !$0.isFinite || $0 < lo || $0 > hi }) {
                let x = y.tokenLogProbs[i]
                return x.isFinite
                    ? .invalid(.logProbOutOfRange, detail: "\(rf).logprobs[\(i)] = \(x) outside [\(lo), \(hi)]")
                    : .invalid(.logProbNonFinite, detail: "\(rf).logprobs[\(i)] = \(x)")
            }
        }
        return nil
    }

    /// A BoN group of `FuzzWorld.n` responses with random in-vocabulary ids, of which about one prompt or response
    /// in 24 gets one or two ids from `planted`, and log-probs of which about one response in 24 gets one of
    /// `badFloats`. Shared by the verdict tests below.
    private func hostileGroup(_ rng: inout SplitMix64, badFloats: [Float], planted: [Int], vocabulary v: Int)
        -> (prompt: [Int], responses: [WireBoNResponse], group: WireBoNGroup) {
        func ids(_ n: Int) -> [Int] {
            var t = (0..<n).map { _ in rng.int(max(1, min(v, 1 << 16))) }
            for _ in 0..<(rng.int(24) == 0 ? 1 + rng.int(2) : 0) where !t.isEmpty {
                t[rng.int(t.count)] = planted[rng.int(planted.count)]
            }
            return t
        }
        let prompt = ids(1 + rng.int(40))
        let responses = (0..<FuzzWorld.n).map { _ in
            let t = ids(1 + rng.int(300))
            var lp = t.map { _ in -Float(rng.int(1000)) * 0.05 }
            for _ in 0..<(rng.int(24) == 0 ? 1 : 0) { lp[rng.int(lp.count)] = badFloats[rng.int(badFloats.count)] }
            return WireBoNResponse(tokens: t, tokenLogProbs: lp, verifierScore: 0.5, reward: 1)
        }
        let g = WireBoNGroup(itemID: 1, promptTokens: prompt, behaviourVersion: UInt64(FuzzWorld.current),
                             temperature: 1, responses: responses)
        return (prompt, responses, g)
    }

    func testBoNTokenAndLogProbChecksMatchTheirPlainDefinitionsVerdictAndDetail() {
        var rng = SplitMix64(seed: 0xB0B0)
        let badFloats: [Float] = [.nan, -.nan, .infinity, -.infinity, Float(-100).nextDown, -100, 1e-4, Float(1e-4).nextUp,
                                  .greatestFiniteMagnitude, -.greatestFiniteMagnitude, -0.0, 0, Float(bitPattern: 0x7FC0_0001)]
        var invalid = 0, valid = 0
        for trial in 0..<4000 {
            var c = FuzzWorld.context(.learner)
            c.vocabSize = [FuzzWorld.vocab, 1, 0, -3, 1 << 20, Int.max, 65][rng.int(7)]
            c.contextLength = nil; c.maxNewTokens = nil
            switch rng.int(8) {
            case 0: c.logProbFloor = -.infinity
            case 1: c.logProbCeiling = .nan
            case 2: c.logProbFloor = .nan; c.logProbCeiling = .infinity
            default: break
            }
            let v = c.vocabSize!
            let (prompt, responses, g) = hostileGroup(&rng, badFloats: badFloats,
                                                      planted: [v, v &+ 1, -1, Int.min, Int.max, v - 1, 0, Int(UInt32.max)],
                                                      vocabulary: v)
            let expected = plainBoNVerdict(prompt: prompt, responses: responses, vocabulary: v, context: c)
            let got = c.validate(g)
            XCTAssertEqual(got, expected ?? .valid, "trial \(trial)")
            if expected == nil { valid += 1 } else { invalid += 1 }
        }
        XCTAssertGreaterThan(invalid, 1000)
        XCTAssertGreaterThan(valid, 500)
    }

    /// The same checks on groups that went through FastCodec, whose decode pass computes the OR of each response's
    /// ids and whether its log-probs are inside the default range (`WireResponseSummary`), so the validator skips its
    /// own passes: verdict AND detail must equal the plain definition and the validation of the same group built
    /// locally (no summary). Hostile ids are what uint32 can carry (at and above the vocabulary, 2³¹ — negative as
    /// Int32 —, UInt32.max); bounds are the defaults, narrower, wider, infinite or NaN.
    func testBoNChecksGiveTheSameVerdictAndDetailOnGroupsDecodedWithTheirSummary() throws {
        var rng = SplitMix64(seed: 0xB0B5)
        let badFloats: [Float] = [.nan, -.nan, .infinity, -.infinity, Float(-100).nextDown, -100, 1e-4, Float(1e-4).nextUp,
                                  .greatestFiniteMagnitude, -.greatestFiniteMagnitude, -0.0, 0, Float(bitPattern: 0x7FC0_0001),
                                  -50.5, -0.002, 0.5]
        var invalid = 0, valid = 0, validWithDefaults = 0
        for trial in 0..<4000 {
            var c = FuzzWorld.context(.learner)
            c.vocabSize = [FuzzWorld.vocab, 1, 0, -3, 1 << 20, Int.max, 65, 49_152, Int(UInt32.max), 1 << 32][rng.int(10)]
            c.contextLength = nil; c.maxNewTokens = nil
            switch rng.int(10) {
            case 0: c.logProbFloor = -.infinity
            case 1: c.logProbCeiling = .nan
            case 2: c.logProbFloor = .nan; c.logProbCeiling = .infinity
            case 3: c.logProbFloor = -50; c.logProbCeiling = -1e-3        // narrower than the defaults
            case 4: c.logProbFloor = -1000; c.logProbCeiling = 1          // wider
            default: break
            }
            let v = c.vocabSize!
            let top = Int(UInt32.max)   // what uint32 on the wire can carry
            let (prompt, responses, g) = hostileGroup(
                &rng, badFloats: badFloats,
                planted: [v, v &+ 1, v - 1, 0, top, Int(Int32.max), 1 << 31, (1 << 31) + 1].map { min(max($0, 0), top) },
                vocabulary: v)
            let bytes = Samples.envelope(.bonGroups(WireBoNGroupBatch(task: "math", groups: [g]))).encoded()
            guard case .bonGroups(let b) = try XCTUnwrap(WireEnvelope.fastCodecDecoded(bytes), "trial \(trial)").payload
            else { return XCTFail("trial \(trial): not BoN groups") }
            let decoded = b.groups[0]
            XCTAssertNotNil(decoded.decodedPromptIDBits, "trial \(trial)")
            XCTAssertTrue(decoded.responses.allSatisfy { $0.decodedSummary != nil }, "trial \(trial)")
            let expected = plainBoNVerdict(prompt: prompt, responses: responses, vocabulary: v, context: c)
            let got = c.validate(decoded)
            XCTAssertEqual(got, expected ?? .valid, "trial \(trial)")
            XCTAssertEqual(got, c.validate(g), "trial \(trial): decoded and locally built groups differ")
            if expected == nil {
                valid += 1
                if c.logProbFloor == -100 && c.logProbCeiling == 1e-4 { validWithDefaults += 1 }
            } else { invalid += 1 }
        }
        XCTAssertGreaterThan(invalid, 1000)
        XCTAssertGreaterThan(valid, 500)
        XCTAssertGreaterThan(validWithDefaults, 200)
    }
}
