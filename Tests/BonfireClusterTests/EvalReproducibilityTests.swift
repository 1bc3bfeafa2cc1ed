// Reproducible evaluations (issue 13): the evaluation of a parameter version draws from a stream derived from (run
// seed, version) (`ActorRuntime.evalRNG`), so the same parameters give the same table whichever actor evaluates
// them, and two `bonfire local` runs with the same seed print identical version-0 evaluations (a different seed
// gives a different table).
import BonfireCluster
import BonfireMath
import BonfireModel
import BonfireWire
import Foundation
import XCTest

final class EvalReproducibilityTests: XCTestCase {
    /// SFT warm-up steps: enough for the tiny model to solve a few test prompts (tables of zeros cannot differ).
    static let warmup = 300
    override func setUp() { setenv("OPENBLAS_NUM_THREADS", "1", 1) }

    /// A short `bonfire local` run (2 actors, default asynchronous schedule) evaluated at versions 0, 10 and 20.
    func localSets(_ dir: URL, seed: UInt64) -> [String] {
        [
            "run.dir=\(dir.path)", "run.seed=\(seed)", "learner.maxSteps=20", "learner.groupsPerStep=4",
            "learner.checkpointEvery=0", "algorithm.sftWarmupSteps=\(Self.warmup)", "model.layers=1", "model.dim=32",
            "sampling.groupSize=4", "sampling.maxNewTokens=12", "algorithm.trainN=2",
            "eval.everyVersions=10", "eval.prompts=16", "eval.samples=8", "eval.n=1,4,8", "eval.temperatures=0.5,1.0",
            "liveness.heartbeatIntervalMs=200", "liveness.livenessCount=5", "logging.periodSeconds=1",
            "liveness.peerGiveUpMs=30000",
        ].flatMap { ["--set", $0] }
    }

    /// Runs `bonfire local` to the end; returns its output and the evaluation tables it wrote, by version.
    func runLocal(_ name: String, seed: UInt64) throws -> (output: String, tables: [Int: EvalTable]) {
        let dir = temporaryRunDir(name)
        defer { try? FileManager.default.removeItem(at: dir) }
        let (status, out) = try runBonfire(["local", "--actors", "2"] + localSets(dir, seed: seed))
        XCTAssertEqual(status, 0, "bonfire local failed:\n\(out.suffix(6000))")
        var tables: [Int: EvalTable] = [:]
        let evalDir = dir.appendingPathComponent("eval")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: evalDir.path)) ?? [] where name.hasSuffix(".json") {
            let t = try JSONDecoder().decode(EvalTable.self, from: Data(contentsOf: evalDir.appendingPathComponent(name)))
            tables[t.version] = t
        }
        return (out, tables)
    }

    func testTwoLocalRunsWithTheSameSeedPrintIdenticalVersionZeroEvaluations() throws {
        let a = try runLocal("evalrep-a", seed: 11)
        let b = try runLocal("evalrep-b", seed: 11)
        let c = try runLocal("evalrep-c", seed: 12)
        for (run, name) in [(a, "a"), (b, "b"), (c, "c")] {
            XCTAssertTrue(run.output.contains("eval of version 0 (scheduled for 0)"),
                          "run \(name): the starting version itself is evaluated:\n\(run.output.suffix(4000))")
        }
        let a0 = try XCTUnwrap(a.tables[0], "run a wrote eval/v000000.json: \(a.tables.keys.sorted())")
        let b0 = try XCTUnwrap(b.tables[0], "run b wrote eval/v000000.json: \(b.tables.keys.sorted())")
        let c0 = try XCTUnwrap(c.tables[0], "run c wrote eval/v000000.json: \(c.tables.keys.sorted())")
        XCTAssertEqual(a0.rows, b0.rows, "same seed, same version-0 table:\n\(a0.render())\n---\n\(b0.render())")
        XCTAssertEqual(a0.render(), b0.render(), "the printed tables are identical too")
        XCTAssertNotEqual(a0.rows, c0.rows, "a different seed gives a different table (else this test could not fail)")
        XCTAssertEqual(a0.rows.count, 6, "(T, N) ∈ {0.5, 1.0} × {1, 4, 8}")
        // Every version both same-seed runs evaluated has the same table (the asynchronous schedule may make them
        // evaluate different versions after 0; those are not compared).
        for (v, t) in a.tables { if let u = b.tables[v] { XCTAssertEqual(t.rows, u.rows, "version \(v)") } }
    }

    /// The same parameters and version give the same table on every actor (different prompt cursors, incarnations).
    func testAVersionsTableDoesNotDependOnWhichActorEvaluatesIt() throws {
        let c = try RunConfig.load(sets: ["run.seed=7", "model.layers=1", "model.dim=32", "sampling.maxNewTokens=12",
                                          "eval.samples=8", "algorithm.sftWarmupSteps=\(Self.warmup)"])
        let request = WireEvalRequest(requestID: 1, version: 3, task: c.task.name.rawValue, split: "test",
                                      nList: [1, 4, 8], temperatures: [0.5, 1.0], numPrompts: 16)
        // A policy that solves some prompts (the SFT warm-up), so the table has something to differ in.
        let learner = try BoNPolicyLearner(config: c)
        try learner.prepare(tick: {}, log: { _ in })
        let params = learner.parameters
        var reports: [WireEvalReport] = []
        for (actor, incarnation) in [(0, 0), (1, 0), (3, 2)] {
            let source = try BoNGroupSource(config: c, actorID: actor, incarnation: incarnation)
            source.install(parameters: params)
            // An actor that rolled out before evaluating: its rollout stream must not leak into the evaluation.
            var rollout = RNG(seed: UInt64(actor), stream: UInt64(incarnation))
            _ = try source.produce(version: 3, maxUnits: 2, rng: &rollout)
            var rng = ActorRuntime.evalRNG(config: c, version: 3)
            reports.append(try source.evaluate(request, version: 3, rng: &rng))
        }
        XCTAssertGreaterThan(reports[0].rows.map(\.passAtN).max() ?? 0, 0, "the warmed-up policy solves something")
        XCTAssertEqual(reports[0].rows, reports[1].rows)
        XCTAssertEqual(reports[0].rows, reports[2].rows)
        var other = ActorRuntime.evalRNG(config: c, version: 4)
        let source = try BoNGroupSource(config: c, actorID: 0)
        source.install(parameters: params)
        XCTAssertNotEqual(try source.evaluate(request, version: 4, rng: &other).rows, reports[0].rows,
                          "another version's stream draws other samples")
    }
}
