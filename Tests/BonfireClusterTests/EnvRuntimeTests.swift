// Environment rollouts through the distributed runtime: EpisodeChunk ⇄ WireEpisodeBatch mapping (round trip through
// encoded bytes, rejection of chunks that break the chunk rules), the env config section, the episode-statistics
// window, and an end-to-end run of the real `bonfire local --set env.name=gridworld` with 2 actor processes that
// must learn well beyond the random policy. The end-to-end test needs the `bonfire` product built next to the test
// bundle (swift build -c release --product bonfire); without it it fails saying so.
import BonfireAlgorithms
import BonfireCluster
import BonfireTasks
import BonfireWire
import Foundation
import XCTest

final class EnvRuntimeTests: XCTestCase {
    // MARK: EpisodeMapping

    func sampleChunk(truncatedAtEnd: Bool) -> EpisodeChunk {
        var c = EpisodeChunk(env: "gridworld", observationSize: 3)
        c.append(observation: [1, 0, 0.5], action: 4, reward: 0, done: false, truncated: false,
                 behaviourLogProb: -1.6, behaviourVersion: 7)
        c.append(observation: [0, 1, -0.25], action: 0, reward: 1, done: true, truncated: false,
                 behaviourLogProb: -0.1, behaviourVersion: 7)
        c.append(observation: [0.5, 0.5, 2], action: 2, reward: -3.5, done: false, truncated: truncatedAtEnd,
                 behaviourLogProb: -2.25, behaviourVersion: 8)
        c.bootstrapObservation = [9, 8, 7]
        return c
    }

    func testEpisodeChunkRoundTripsThroughEncodedEpisodeBatch() throws {
        for truncated in [false, true] {
            let chunk = sampleChunk(truncatedAtEnd: truncated)
            let bytes = WireEnvelope(runID: "r", senderRole: .actor, senderID: 1, sequence: 3,
                                     payload: .episodes(chunk.wire)).encoded()
            let decoder = WireDecoder(runID: "r")
            let env = try bytes.withUnsafeBytes { try decoder.decode($0) }
            guard case .episodes(let w) = env.payload else {
                return XCTFail("envelope did not decode to an episodes payload")
            }
            XCTAssertEqual(w.numSteps, 3)
            XCTAssertEqual(w.actions, [4, 0, 2])
            let back = try EpisodeChunk(wire: w, actionCount: 5)
            XCTAssertEqual(back, chunk, "truncated=\(truncated)")
            XCTAssertEqual(back.oldestBehaviourVersion, 7)
        }
    }

    func testTerminatedChunkHasNoBootstrapAndRoundTrips() throws {
        var c = EpisodeChunk(env: "keydoor", observationSize: 2)
        c.append(observation: [1, 0], action: 1, reward: 1, done: true, truncated: false, behaviourLogProb: -0.7,
                 behaviourVersion: 0)
        XCTAssertEqual(try EpisodeChunk(wire: WireEpisodeBatch(wire: c.wire.encoded()), actionCount: 2), c)
    }

    func testChunksBreakingTheChunkRulesAreRejectedWithAMessage() {
        // A truncation that is not the last step.
        var w = sampleChunk(truncatedAtEnd: false).wire
        w.truncations = [true, false, false]
        XCTAssertThrowsError(try EpisodeChunk(wire: w)) { XCTAssertTrue("\($0)".contains("truncation at step 0"), "\($0)") }
        // An action the environment does not have.
        XCTAssertThrowsError(try EpisodeChunk(wire: sampleChunk(truncatedAtEnd: false).wire, actionCount: 4)) {
            XCTAssertTrue("\($0)".contains("action 4 outside 0..<4"), "\($0)")
        }
        // Missing bootstrap after a non-terminal last step.
        var nb = sampleChunk(truncatedAtEnd: false).wire
        nb.bootstrapObservation = []
        XCTAssertThrowsError(try EpisodeChunk(wire: nb)) { XCTAssertTrue("\($0)".contains("bootstrap"), "\($0)") }
    }

    // MARK: Config and episode statistics

    func testEnvSectionDefaultsMatchSingleProcessDefaultsAndBadValuesNameTheKey() throws {
        let c = try RunConfig.load(sets: ["env.name=gridworld"])
        let t = c.actorCriticConfig
        XCTAssertEqual(t.vtrace.gamma, 0.9)
        XCTAssertEqual(t.entropyCoefficient, 0.03)
        XCTAssertEqual(t.learningRate, 1e-3)
        XCTAssertEqual(t.valueCoefficient, 0.5)
        XCTAssertEqual(t.maxGradNorm, 1)
        XCTAssertEqual(c.jobKind, .envEpisodes)
        XCTAssertEqual(try RunConfig.load(sets: ["env.name=keydoor"]).actorCriticConfig.vtrace.gamma, 0.97)
        XCTAssertEqual(try RunConfig.load(sets: ["env.name=keydoor", "env.gamma=0.5"]).actorCriticConfig.vtrace.gamma, 0.5)
        XCTAssertEqual(c.envMLPConfig.inputSize, 32)
        XCTAssertEqual(RunConfig().env.name, .none, "the default job stays the BoN job")
        XCTAssertEqual(try RunConfig.load(sets: ["env.name=guess"]).jobKind, .textEpisodes)
        for (set, key) in [("env.name=chess", "env.name"), ("env.chunkLength=0", "env.chunkLength"),
                           ("env.gamma=1.5", "env.gamma"), ("env.hiddenSizes=", "env.hiddenSizes")] {
            XCTAssertThrowsError(try RunConfig.load(sets: [set])) { XCTAssertTrue("\($0)".contains(key), "\(set): \($0)") }
        }
    }

    func testEpisodeWindowAveragesAtLeastTheLastHundredEpisodes() {
        var w = EpisodeWindow(minEpisodes: 100)
        XCTAssertNil(w.meanReturn)
        w.add(count: 60, returnSum: 0, lengthSum: 60 * 36)
        w.add(count: 60, returnSum: 600, lengthSum: 60 * 36)
        XCTAssertEqual(w.meanReturn!, 5, accuracy: 1e-12, "both reports kept: 60 alone is < 100")
        w.add(count: 60, returnSum: 600, lengthSum: 60 * 36)
        XCTAssertEqual(w.meanReturn!, 10, accuracy: 1e-12, "the oldest report leaves once the rest cover 100")
        XCTAssertEqual(w.meanLength!, 36, accuracy: 1e-12)
        XCTAssertEqual(w.totalEpisodes, 180)
    }

    // MARK: End to end through `bonfire local`

    func bonfireExecutable() throws -> String { try bonfireExecutablePath() }

    func metrics(_ runDir: URL) -> [MetricsRecord] {
        let text = (try? String(contentsOf: runDir.appendingPathComponent("metrics.jsonl"), encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { MetricsRecord(jsonLine: $0) }
    }

    func testGridWorldThroughBonfireLocalWithTwoActorsLearnsWellBeyondRandom() throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("bonfire-envlocal-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: dir) }
        let maxSteps = 1500
        let (status, out) = try runBonfire(["local", "--actors", "2"] + [
            "env.name=gridworld", "run.dir=\(dir.path)", "learner.maxSteps=\(maxSteps)", "learner.checkpointEvery=500",
            "eval.everyVersions=0", "eval.prompts=400", "logging.periodSeconds=1",
            "liveness.heartbeatIntervalMs=200", "liveness.livenessCount=10", "liveness.peerGiveUpMs=30000",
        ].flatMap { ["--set", $0] })
        let tail = String(out.suffix(5000))
        XCTAssertEqual(status, 0, "bonfire local failed:\n\(tail)")

        let records = metrics(dir)
        let learner = records.filter { $0.role == "learner" }
        XCTAssertEqual(learner.map(\.version).max(), maxSteps, "versions advance to learner.maxSteps\n\(tail)")
        XCTAssertTrue(out.contains("actor-0 registered") && out.contains("actor-1 registered"), tail)
        // The coordinator's period line shows the environment metrics.
        XCTAssertTrue(out.contains("return=") && out.contains("length="), tail)
        // Both actors contributed env steps.
        for a in ["actor-0", "actor-1"] {
            XCTAssertGreaterThan(records.filter { $0.role == a }.compactMap { $0.values["actor/samples_total"] }.max() ?? 0, 0, a)
        }
        // Learned return: the final evaluation (400 fresh episodes, sampled actions) and the training return both
        // clearly beat the uniform random policy (1.20; optimal 15.75).
        let random = GridWorld().referenceReturns().random
        let evalReturn = records.filter { $0.role == "coordinator" }.compactMap { $0.values[MetricKey.evalMeanReturn] }.last
        XCTAssertNotNil(evalReturn, "final evaluation reported\n\(tail)")
        XCTAssertGreaterThan(evalReturn ?? 0, 4 * random, "eval return vs random \(random)\n\(tail)")
        let trainReturn = learner.compactMap { $0.values[MetricKey.episodeReturn] }.last ?? 0
        XCTAssertGreaterThan(trainReturn, 4 * random, "training return vs random \(random)\n\(tail)")
        XCTAssertLessThan(learner.compactMap { $0.values[MetricKey.dropped] }.last ?? .infinity,
                          Double(maxSteps * 16) * 0.1, "the version budget keeps stale drops rare")
        let ckpts = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("checkpoints").path)
        XCTAssertTrue(ckpts.contains("v001500.safetensors"), "final checkpoint, got \(ckpts)")
    }
}
