// The one runtime (Sources/BonfireCluster/Runtime, Jobs): every algorithm and every kind of rollout through the same
// actor and learner code, in one process over in-process endpoints (InProcessJob) and as OS processes
// (`bonfire local`), with bit-identical results under the synchronous schedule.
import BonfireAlgorithms
import BonfireCluster
import BonfireMath
import BonfireModel
import BonfireTasks
import Foundation
import XCTest

final class RuntimeTests: XCTestCase {
    override func setUp() { setenv("OPENBLAS_NUM_THREADS", "1", 1) }

    /// A small BoN job: tiny model, short warm-up, short liveness window.
    func smallBoN(_ dir: URL, steps: Int, extra: [String] = []) throws -> RunConfig {
        try RunConfig.load(sets: [
            "run.dir=\(dir.path)", "learner.maxSteps=\(steps)", "learner.groupsPerStep=2", "learner.checkpointEvery=0",
            "algorithm.sftWarmupSteps=5", "model.layers=1", "model.dim=32", "sampling.groupSize=4",
            "sampling.maxNewTokens=12", "algorithm.trainN=2", "eval.everyVersions=0", "eval.prompts=2",
            "eval.samples=4", "eval.n=1,2,4", "liveness.heartbeatIntervalMs=100", "logging.periodSeconds=1",
            "liveness.peerGiveUpMs=20000", "liveness.livenessCount=20", "actors.count=1", "learner.schedule=sync",
        ] + extra)
    }

    func runInProcess(_ c: RunConfig) throws -> RunDirectory {
        let dir = try RunDirectory.create(at: URL(fileURLWithPath: c.run.dir), config: c)
        XCTAssertEqual(try InProcessJob.run(config: c, runDir: dir), 0)
        return dir
    }

    /// All tensors of a checkpoint's model (adam state and metadata aside).
    func modelTensors(_ url: URL) throws -> [String: [Float]] {
        try SafeTensors.read(from: url).tensors.filter { !$0.key.hasPrefix("adam.") }.mapValues(\.data)
    }

    func testEveryAlgorithmTrainsThroughTheInProcessRuntime() throws {
        for algo in AlgorithmKind.allCases {
            let url = temporaryRunDir("algo-\(algo.rawValue)")
            defer { try? FileManager.default.removeItem(at: url) }
            // The noisy verifier gives every algorithm a signal even where the tiny policy earns no reward.
            let c = try smallBoN(url, steps: 2, extra: ["algorithm.name=\(algo.rawValue)", "actors.verifier=noisy"])
            let dir = try runInProcess(c)
            let learner = metricsRecords(url).filter { $0.role == "learner" }
            XCTAssertEqual(learner.map(\.version).max(), 2, "\(algo): versions advance to learner.maxSteps")
            XCTAssertTrue(learner.compactMap { $0.values[MetricKey.policyLoss] }.allSatisfy(\.isFinite), "\(algo): finite loss")
            let final = try XCTUnwrap(dir.latestCheckpoint(), "\(algo): final checkpoint")
            XCTAssertEqual(final.version, 2)
            let model = GPT(config: c.gptConfig, seed: 0)
            let (_, step, meta) = try ModelCheckpoint.load(from: final.url, into: model)
            XCTAssertEqual(step, 2)
            XCTAssertEqual(meta["algorithm"], algo.rawValue)
            XCTAssertTrue(model.params.allSatisfy(\.isFinite), "\(algo): finite parameters")
            // The coordinator evaluated the starting and the final version.
            XCTAssertFalse(metricsRecords(url).filter { $0.role == "coordinator" && $0.values["eval/pass@1"] != nil }.isEmpty, "\(algo): eval")
        }
    }

    /// The runtime issue's acceptance test: `bonfire train` (one process) and `bonfire local --actors 1` (four
    /// processes over TCP) under the synchronous schedule end with bit-identical parameters after K updates, for a
    /// BoN algorithm and for an environment.
    func testSynchronousTrainAndLocalEndWithBitIdenticalParameters() throws {
        let k = 6
        let jobs: [(name: String, sets: [String])] = [
            ("bon-rl-s", ["algorithm.name=bon-rl-s", "algorithm.sftWarmupSteps=10", "model.layers=1", "model.dim=32",
                          "learner.groupsPerStep=4", "sampling.groupSize=4", "algorithm.trainN=2", "eval.prompts=4"]),
            ("gridworld", ["env.name=gridworld", "env.envsPerActor=4", "env.chunkLength=8", "env.chunksPerUpdate=4",
                           "eval.prompts=20"]),
        ]
        for job in jobs {
            var paths: [URL] = []
            for entry in ["train", "local"] {
                let url = temporaryRunDir("bit-\(job.name)-\(entry)")
                paths.append(url)
                var args = entry == "train" ? ["train"] : ["local", "--actors", "1"]
                args += (job.sets + ["run.dir=\(url.path)", "run.seed=7", "learner.maxSteps=\(k)", "learner.schedule=sync",
                                     "eval.everyVersions=3", "liveness.heartbeatIntervalMs=100", "liveness.livenessCount=20",
                                     "liveness.peerGiveUpMs=20000"])
                    .flatMap { ["--set", $0] }
                let (status, out) = try runBonfire(args)
                XCTAssertEqual(status, 0, "\(job.name) \(entry) failed:\n\(out.suffix(3000))")
            }
            defer { paths.forEach { try? FileManager.default.removeItem(at: $0) } }
            let name = "checkpoints/v" + String(repeating: "0", count: 6 - String(k).count) + "\(k).safetensors"
            let a = try modelTensors(paths[0].appendingPathComponent(name))
            let b = try modelTensors(paths[1].appendingPathComponent(name))
            XCTAssertFalse(a.isEmpty)
            XCTAssertEqual(Set(a.keys), Set(b.keys))
            for (key, t) in a { XCTAssertTrue(t == b[key]!, "\(job.name): tensor \(key) differs between train and local") }
            // And the run really trained: the parameters moved away from the initialisation.
            let c0 = try RunConfig.load(sets: job.sets)
            let url = paths[0].appendingPathComponent(name)
            if c0.jobKind == .bon {
                let m = GPT(config: c0.gptConfig, seed: 7), fresh = m.params
                try ModelCheckpoint.load(from: url, into: m)
                XCTAssertNotEqual(m.params, fresh, "\(job.name): trained")
            } else {
                let m = MLP(config: c0.envMLPConfig, seed: 7), fresh = m.params
                try ModelCheckpoint.load(from: url, into: m)
                XCTAssertNotEqual(m.params, fresh, "\(job.name): trained")
            }
        }
    }

    /// Synchronous schedule: "K updates, stop, --resume, K more" ends where "2K updates" ends, bit for bit.
    func testResumedSynchronousRunContinuesBitIdentically() throws {
        let whole = temporaryRunDir("resume-whole"), split = temporaryRunDir("resume-split")
        defer { [whole, split].forEach { try? FileManager.default.removeItem(at: $0) } }
        _ = try runInProcess(try smallBoN(whole, steps: 6, extra: ["learner.checkpointEvery=3"]))
        _ = try runInProcess(try smallBoN(split, steps: 3, extra: ["learner.checkpointEvery=3"]))
        let c = try smallBoN(split, steps: 6, extra: ["learner.checkpointEvery=3"])
        let dir = try RunDirectory.create(at: split, config: c)
        XCTAssertEqual(try InProcessJob.run(config: c, runDir: dir, resume: true), 0)
        let a = try modelTensors(whole.appendingPathComponent("checkpoints/v000006.safetensors"))
        let b = try modelTensors(split.appendingPathComponent("checkpoints/v000006.safetensors"))
        for (key, t) in a { XCTAssertTrue(t == b[key]!, "tensor \(key) differs after resume") }
    }

    /// In one process the actor gets each new version from the learner's broadcast, not from its once-per-heartbeat
    /// direct ask: an inproc SUB with ZMQ_CONFLATE that connected before the PUB bound received nothing (libzmq
    /// 4.3.4), so a synchronous `bonfire train` waited one heartbeat interval per update. The long heartbeat here
    /// would make a broken broadcast obvious in the actor's counters (and slow, not hung).
    func testInProcessActorInstallsNewVersionsFromTheBroadcast() throws {
        let url = temporaryRunDir("broadcast")
        defer { try? FileManager.default.removeItem(at: url) }
        let steps = 12
        let c = try smallBoN(url, steps: steps, extra: [
            "liveness.heartbeatIntervalMs=3000", "liveness.parameterRefreshMs=60000", "logging.periodSeconds=0.001"])
        let dir = try RunDirectory.create(at: url, config: c)
        // The learner binds after the actor connected (as when `bonfire train` loads a large model): the case that
        // broke. Its first parameters come by the direct ask; every later version must come by broadcast.
        XCTAssertEqual(try InProcessJob.run(config: c, runDir: dir, runLearner: { cfg, context in
            usleep(300_000)
            return try Job.runLearner(config: cfg, runDir: dir, resume: false, context: context)
        }), 0)
        let actor = metricsRecords(url).filter { $0.role.hasPrefix("actor") }
        let broadcast = actor.compactMap { $0.values[MetricKey.actorParamsBroadcast] }.max() ?? 0
        let requested = actor.compactMap { $0.values[MetricKey.actorParamsRequested] }.max() ?? 0
        XCTAssertFalse(actor.isEmpty, "the actor wrote no metrics")
        XCTAssertGreaterThanOrEqual(broadcast, Double(steps - 3),
                                    "versions installed from the broadcast: \(broadcast), from direct asks: \(requested)")
        XCTAssertLessThanOrEqual(requested, 2, "only the first parameters (and at most one retry) come from a direct ask")
    }

    func testResumeWithoutACheckpointSaysSoAndStops() throws {
        let url = temporaryRunDir("resume-none")
        defer { try? FileManager.default.removeItem(at: url) }
        let c = try smallBoN(url, steps: 2)
        let dir = try RunDirectory.create(at: url, config: c)
        XCTAssertThrowsError(try InProcessJob.run(config: c, runDir: dir, resume: true)) {
            XCTAssertTrue("\($0)".contains("no checkpoint"), "\($0)")
        }
    }

    /// The text environment (guess) runs through the same runtime and learns: the final evaluation beats the
    /// starting policy's clearly (reported as a fraction of the optimal return).
    func testGuessTextEnvironmentLearnsThroughTheRuntime() throws {
        let url = temporaryRunDir("guess")
        defer { try? FileManager.default.removeItem(at: url) }
        let c = try RunConfig.load(sets: [
            "env.name=guess", "run.dir=\(url.path)", "run.seed=3", "learner.maxSteps=80", "env.chunksPerUpdate=32",
            "env.entropyCoefficient=0.01", "eval.prompts=200", "eval.everyVersions=1000", "actors.count=1",
            "model.contextLength=32", "learner.schedule=sync", "learner.checkpointEvery=0", "liveness.peerGiveUpMs=20000",
            "liveness.livenessCount=20",
        ])
        _ = try runInProcess(c)
        let evals = metricsRecords(url).filter { $0.role == "coordinator" }.compactMap { r in
            r.values[MetricKey.evalFractionOfOptimal].map { (r.version, $0) } }
        let first = try XCTUnwrap(evals.first(where: { $0.0 == 0 }), "start evaluated: \(evals)")
        let last = try XCTUnwrap(evals.last, "final evaluation")
        XCTAssertEqual(last.0, 80)
        XCTAssertGreaterThan(last.1, first.1 + 0.15, "fraction of optimal \(first.1) → \(last.1)")
    }

    /// A toy environment plugged in the way a new one is added (an `Environment` and a factory): the generic actor
    /// and learner train on it unchanged, and the policy finds the goal.
    func testAToyEnvironmentPlugsIntoTheSameActorAndLearner() throws {
        let url = temporaryRunDir("toy")
        defer { try? FileManager.default.removeItem(at: url) }
        // jobKind envEpisodes (env.name names any vector environment; the factories below replace it).
        let c = try RunConfig.load(sets: [
            "env.name=gridworld", "run.dir=\(url.path)", "learner.maxSteps=150", "env.envsPerActor=8", "env.chunkLength=8",
            "env.chunksPerUpdate=8", "env.gamma=0.9", "env.learningRate=0.01", "eval.prompts=50", "eval.everyVersions=0",
            "eval.temperatures=0", "actors.count=1", "learner.schedule=sync", "learner.checkpointEvery=0",
            "liveness.peerGiveUpMs=20000",
        ])
        let dir = try RunDirectory.create(at: url, config: c)
        let code = try InProcessJob.run(config: c, runDir: dir,
            makeSource: { id in EpisodeSource(config: c, actorID: id, makeEnvironment: { Corridor() }) },
            runLearner: { cfg, ctx in try Job.run(ActorCriticPolicyLearner(config: cfg, makeEnvironment: { Corridor() }), cfg, dir, false, ctx) })
        XCTAssertEqual(code, 0)
        let final = metricsRecords(url).filter { $0.role == "coordinator" }.compactMap { $0.values[MetricKey.evalFractionOfOptimal] }.last
        XCTAssertGreaterThan(try XCTUnwrap(final, "final evaluation"), 0.9, "greedy policy walks right to the goal")
    }

    func testVersionBudgetSplitsOneUpdateOverTheLiveActors() {
        var b = VersionBudget(unitsPerUpdate: 8, publishEvery: 1, liveActors: 2)
        XCTAssertEqual(b.share, 4)
        b.liveActors = 1
        XCTAssertEqual(b.share, 8, "a dead actor's share moves to the live ones")
        b.liveActors = 3
        XCTAssertEqual(b.share, 3, "rounded up: together the actors always fill an update")
        b.produced = 3
        XCTAssertTrue(b.exhausted)
        b.liveActors = 0
        XCTAssertEqual(b.share, 8, "no live count yet: this actor fills the update alone")
        XCTAssertEqual(VersionBudget(unitsPerUpdate: 8, publishEvery: 2, liveActors: 2).share, 8)
    }
}

/// Five cells in a row, start in the middle; action 1 moves right, 0 left; reaching the right end pays 1 and ends.
struct Corridor: Environment {
    var position = 2, steps = 0, started = false, finished = false
    var name: String { "corridor" }
    var actionCount: Int { 2 }
    var observationSize: Int { 5 }
    func observe() -> Observation { .vector((0..<5).map { $0 == position ? 1 : 0 }) }
    mutating func reset(seed: UInt64) -> Observation {
        position = 2; steps = 0; started = true; finished = false
        return observe()
    }
    mutating func step(_ action: Int) throws(EnvironmentError) -> StepResult {
        try checkStep(action: action, started: started, finished: finished)
        position = max(0, min(4, position + (action == 1 ? 1 : -1)))
        steps += 1
        let goal = position == 4
        finished = goal || steps >= 10
        return StepResult(observation: observe(), reward: goal ? 1 : 0, done: goal, truncated: !goal && steps >= 10)
    }
    func referenceReturns() -> ReferenceReturns { ReferenceReturns(optimal: 1, random: 0.3) }
}
