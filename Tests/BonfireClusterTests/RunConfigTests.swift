import XCTest
import Foundation
import BonfireAlgorithms
import BonfireCluster

final class RunConfigTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    private func file(_ name: String, _ json: String) throws -> URL {
        let url = tmp.appendingPathComponent(name)
        try Data(json.utf8).write(to: url)
        return url
    }

    private func expectError(_ body: () throws -> Void, mentions parts: [String], file: StaticString = #filePath,
                             line: UInt = #line) {
        do {
            try body()
            XCTFail("expected a ConfigError mentioning \(parts)", file: file, line: line)
        } catch let e as ConfigError {
            for p in parts {
                XCTAssertTrue(e.message.contains(p), "'\(e.message)' should mention '\(p)'", file: file, line: line)
            }
        } catch {
            XCTFail("expected ConfigError, got \(error)", file: file, line: line)
        }
    }

    func testDefaultsAreDocumentedValuesAndValid() throws {
        let c = RunConfig()
        XCTAssertEqual(c.run.dir, "runs/latest")
        XCTAssertEqual(c.run.id, "")
        XCTAssertEqual(c.task.name, .math)
        XCTAssertEqual(c.model.layers, 2)
        XCTAssertEqual(c.algorithm.name, .bonRLS)
        XCTAssertEqual(c.learner.schedule, .async)
        XCTAssertEqual(c.env.name, .none)
        XCTAssertEqual(c.jobKind, .bon)
        XCTAssertEqual(c.algorithm.trainN, 4)
        XCTAssertEqual(c.sampling.groupSize, 8)
        XCTAssertEqual(c.learner.maxPolicyLag, 4)
        XCTAssertEqual(c.liveness.livenessCount, 6)
        XCTAssertEqual(c.eval.n, [1, 2, 4, 8])
        XCTAssertEqual(c.logging.periodSeconds, 2.0)
        XCTAssertNoThrow(try c.validate())
        XCTAssertEqual(try RunConfig.load(overrides: [], sets: []), c)
    }

    func testEndpointHelpersUseBindHostAndHost() {
        var e = RunConfig.EndpointsSection()
        e.host = "10.0.0.1"
        e.bindHost = "0.0.0.0"
        XCTAssertEqual(e.bind(e.rolloutPort), "tcp://0.0.0.0:5556")
        XCTAssertEqual(e.connect(e.coordinatorPort), "tcp://10.0.0.1:5555")
    }

    func testFilesApplyInOrderThenSets() throws {
        let a = try file("a.json", #"{"learner": {"maxSteps": 10, "groupsPerStep": 3}, "run": {"seed": 7}}"#)
        let b = try file("b.json", #"{"learner": {"maxSteps": 20}, "eval": {"temperatures": [0.5, 1]}}"#)
        let c = try RunConfig.load(overrides: [a, b], sets: ["learner.maxSteps=50", "eval.n=1,2", "run.id=abc",
                                                             "algorithm.learningRate=1e-3"])
        XCTAssertEqual(c.learner.maxSteps, 50)
        XCTAssertEqual(c.learner.groupsPerStep, 3)
        XCTAssertEqual(c.run.seed, 7)
        XCTAssertEqual(c.eval.temperatures, [0.5, 1.0])
        XCTAssertEqual(c.eval.n, [1, 2])
        XCTAssertEqual(c.run.id, "abc")
        XCTAssertEqual(c.algorithm.learningRate, 1e-3)
        XCTAssertEqual(c.model, RunConfig.ModelSection(), "untouched sections keep defaults")
    }

    func testArraysInSetsAcceptBrackets() throws {
        let c = try RunConfig.load(sets: ["eval.n=[1, 4]", "eval.temperatures=0.7"])
        XCTAssertEqual(c.eval.n, [1, 4])
        XCTAssertEqual(c.eval.temperatures, [0.7])
    }

    func testUnknownKeysNameTheFullPathAndTheAllowedKeys() throws {
        let f = try file("x.json", #"{"learner": {"maxStep": 10}}"#)
        expectError({ _ = try RunConfig.load(overrides: [f]) },
                    mentions: ["learner.maxStep", "maxSteps", "x.json"])
        let g = try file("y.json", #"{"lerner": {}}"#)
        expectError({ _ = try RunConfig.load(overrides: [g]) }, mentions: ["lerner", "learner", "sampling"])
        expectError({ _ = try RunConfig.load(sets: ["sampling.temp=1"]) }, mentions: ["sampling.temp", "temperature"])
        expectError({ _ = try RunConfig.load(sets: ["eval=3"]) }, mentions: ["eval is a section", "everyVersions"])
        expectError({ _ = try RunConfig.load(sets: ["learner.maxSteps.x=3"]) }, mentions: ["not a section"])
        expectError({ _ = try RunConfig.load(sets: ["learner.maxSteps"]) }, mentions: ["key.path=value"])
    }

    func testTypeMismatchesNameTheKeyAndTheExpectedType() throws {
        let f = try file("t.json", #"{"learner": {"maxSteps": "ten"}}"#)
        expectError({ _ = try RunConfig.load(overrides: [f]) }, mentions: ["learner.maxSteps", "integer", "ten"])
        let g = try file("u.json", #"{"learner": {"maxSteps": 2.5}}"#)
        expectError({ _ = try RunConfig.load(overrides: [g]) }, mentions: ["learner.maxSteps", "integer"])
        let h = try file("v.json", #"{"sampling": {"temperature": true}}"#)
        expectError({ _ = try RunConfig.load(overrides: [h]) }, mentions: ["sampling.temperature", "boolean"])
        let i = try file("w.json", #"{"eval": {"n": [1, "2"]}}"#)
        expectError({ _ = try RunConfig.load(overrides: [i]) }, mentions: ["eval.n", "array of integers"])
        let j = try file("z.json", #"{"run": {"seed": -1}}"#)
        expectError({ _ = try RunConfig.load(overrides: [j]) }, mentions: ["run.seed", "non-negative"])
        let k = try file("s.json", #"{"model": 3}"#)
        expectError({ _ = try RunConfig.load(overrides: [k]) }, mentions: ["model", "section"])
        expectError({ _ = try RunConfig.load(sets: ["learner.maxSteps=abc"]) }, mentions: ["learner.maxSteps", "abc"])
        expectError({ _ = try RunConfig.load(sets: ["eval.n=1,x"]) }, mentions: ["eval.n"])
        expectError({ _ = try RunConfig.load(sets: ["sampling.topP=nan"]) }, mentions: ["sampling.topP"])
        // An integral JSON number is fine for a Double field, and 1e2 for an Int field.
        let ok = try file("ok.json", #"{"sampling": {"temperature": 2}, "learner": {"maxSteps": 1e2}}"#)
        let c = try RunConfig.load(overrides: [ok])
        XCTAssertEqual(c.sampling.temperature, 2.0)
        XCTAssertEqual(c.learner.maxSteps, 100)
    }

    func testBadFilesSayWhatIsWrong() throws {
        let bad = try file("bad.json", "{ not json")
        expectError({ _ = try RunConfig.load(overrides: [bad]) }, mentions: ["bad.json", "not valid JSON"])
        let arr = try file("arr.json", "[1]")
        expectError({ _ = try RunConfig.load(overrides: [arr]) }, mentions: ["arr.json", "object"])
        expectError({ _ = try RunConfig.load(overrides: [tmp.appendingPathComponent("missing.json")]) },
                    mentions: ["missing.json", "cannot be read"])
    }

    func testSemanticValidationNamesEveryBadKey() throws {
        expectError({ _ = try RunConfig.load(sets: ["algorithm.trainN=16"]) },
                    mentions: ["algorithm.trainN", "sampling.groupSize"])
        expectError({ _ = try RunConfig.load(sets: ["algorithm.name=ppo"]) },
                    mentions: ["algorithm.name", "bon-rlb-p", "ppo"])
        expectError({ _ = try RunConfig.load(sets: ["task.name=chess"]) }, mentions: ["task.name", "math, code"])
        expectError({ _ = try RunConfig.load(sets: ["endpoints.rolloutPort=70000"]) },
                    mentions: ["endpoints.rolloutPort", "1–65535"])
        expectError({ _ = try RunConfig.load(sets: ["endpoints.paramsPort=5556"]) },
                    mentions: ["endpoints.paramsPort", "endpoints.rolloutPort"])
        expectError({ _ = try RunConfig.load(sets: ["eval.n=1,16"]) }, mentions: ["eval.n[1]", "eval.samples"])
        expectError({ _ = try RunConfig.load(sets: ["model.dim=30"]) }, mentions: ["model.dim", "divisible"])
        expectError({ _ = try RunConfig.load(sets: ["sampling.maxNewTokens=64"]) },
                    mentions: ["sampling.maxNewTokens", "contextLength"])
        // A context too short for the generated task: its prompts (the actors' sampler) and, with the SFT warm-up or
        // a demonstration algorithm, its reference solutions (the learner) must fit; these used to trap the roles.
        expectError({ _ = try RunConfig.load(sets: ["model.contextLength=12", "sampling.maxNewTokens=4"]) },
                    mentions: ["model.contextLength", "longest prompt (24 tokens)", "= 29 tokens"])
        expectError({ _ = try RunConfig.load(sets: ["model.contextLength=40", "sampling.maxNewTokens=4"]) },
                    mentions: ["model.contextLength", "= 58 tokens", "SFT warm-up", "algorithm.sftWarmupSteps=0"])
        expectError({ _ = try RunConfig.load(sets: ["model.contextLength=40", "sampling.maxNewTokens=4",
                                                    "algorithm.sftWarmupSteps=0", "algorithm.name=bon-sft"]) },
                    mentions: ["model.contextLength", "bon-sft trains on reference solutions"])
        XCTAssertNoThrow(try RunConfig.load(sets: ["model.contextLength=40", "sampling.maxNewTokens=4",
                                                   "algorithm.sftWarmupSteps=0"]),
                         "RL without demonstrations needs room for prompts and responses only")
        XCTAssertNoThrow(try RunConfig.load(sets: ["model.contextLength=32", "env.name=guess"]),
                         "environment jobs do not sample the text task")
        // A vocabulary smaller than the character tokenizer's ids (these trapped the learner, or the text
        // environment's actors, on their first forward).
        expectError({ _ = try RunConfig.load(sets: ["model.vocabSize=10"]) },
                    mentions: ["model.vocabSize", "≥ 64", "character tokenizer"])
        expectError({ _ = try RunConfig.load(sets: ["model.vocabSize=4", "env.name=guess", "model.contextLength=32"]) },
                    mentions: ["model.vocabSize", "≥ 64"])
        XCTAssertNoThrow(try RunConfig.load(sets: ["model.vocabSize=4", "env.name=gridworld"]),
                         "vector environments have no vocabulary")
        // Several problems are all reported at once.
        var c = RunConfig()
        c.actors.count = 0
        c.learner.groupsPerStep = 0
        c.liveness.reconnectMaxMs = 10
        expectError({ try c.validate() },
                    mentions: ["actors.count", "learner.groupsPerStep", "liveness.reconnectMaxMs"])
        // Every known algorithm name validates; every choice key lists its allowed values.
        for a in AlgorithmKind.allCases {
            XCTAssertEqual(try RunConfig.load(sets: ["algorithm.name=\(a.rawValue)"]).algorithm.name, a)
        }
        expectError({ _ = try RunConfig.load(sets: ["env.name=chess"]) }, mentions: ["env.name", "none, gridworld, keydoor, guess", "chess"])
        expectError({ _ = try RunConfig.load(sets: ["learner.schedule=lockstep"]) }, mentions: ["learner.schedule", "async, sync"])
        expectError({ _ = try RunConfig.load(sets: ["actors.verifier=magic"]) }, mentions: ["actors.verifier", "oracle, noisy, learned"])
        expectError({ _ = try RunConfig.load(sets: ["algorithm.lambdaRule=cubic"]) }, mentions: ["algorithm.lambdaRule", "klMatched"])
        expectError({ _ = try RunConfig.load(sets: ["endpoints.transport=udp"]) }, mentions: ["endpoints.transport", "tcp, ipc, inproc"])
        expectError({ _ = try RunConfig.load(sets: ["actors.verifier=learned"]) }, mentions: ["actors.verifierPath"])
        expectError({ _ = try RunConfig.load(sets: ["algorithm.ppoClip=1.5"]) }, mentions: ["algorithm.ppoClip"])
        // A JSON file gets the same check as --set.
        let f = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-choice-\(getpid()).json")
        try Data(#"{"algorithm": {"name": "ppo"}}"#.utf8).write(to: f)
        defer { try? FileManager.default.removeItem(at: f) }
        expectError({ _ = try RunConfig.load(overrides: [f]) }, mentions: ["algorithm.name", "bon-rl-s", "ppo"])
        // Each algorithm's own options reach its learner object.
        let o = try RunConfig.load(sets: ["algorithm.name=rl-v", "algorithm.ppoClip=0.2", "algorithm.klCoefficient=0.05",
                                          "algorithm.lambdaRule=linearised"]).algorithmOptions
        let rl = o.groupLearner(.rlV) as? RL
        XCTAssertEqual(rl?.config.update.ppoClip, 0.2)
        XCTAssertEqual(rl?.config.update.klCoefficient, 0.05)
        XCTAssertEqual(rl?.config.reward, .verifier)
        XCTAssertEqual(o.bonSFT().config.lambdaRule, .linearised)
    }

    func testResolvedJSONRoundTripsAndIsStable() throws {
        var c = RunConfig()
        c.run.id = "r1"
        c.learner.maxSteps = 7
        c.eval.temperatures = [0.25, 1]
        let json = c.resolvedJSON()
        XCTAssertTrue(json.contains("\"dir\" : \"runs/latest\""), "slashes are not escaped")
        XCTAssertTrue(json.range(of: "\"actors\"")!.lowerBound < json.range(of: "\"algorithm\"")!.lowerBound,
                      "keys are sorted")
        let f = try file("resolved.json", json)
        let back = try RunConfig.load(file: f)
        XCTAssertEqual(back, c)
        XCTAssertEqual(back.resolvedJSON(), json)
    }

    func testGeneratedRunIDsAreFileSafeAndTimestamped() throws {
        let id = RunConfig.makeRunID(date: Date(timeIntervalSince1970: 0), random: 0x2a)
        XCTAssertEqual(id, "19700101-000000-002a")
        var c = RunConfig()
        c.run.id = RunConfig.makeRunID()
        XCTAssertNoThrow(try c.validate())
    }

    func testCommittedClusterFilesLoad() throws {
        let cluster = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Cluster")
        let local = try RunConfig.load(overrides: [cluster.appendingPathComponent("local.json")])
        XCTAssertEqual(local.endpoints.host, "127.0.0.1")
        XCTAssertGreaterThanOrEqual(local.actors.count, 2)
        let multi = try RunConfig.load(overrides: [cluster.appendingPathComponent("multihost.json")])
        XCTAssertEqual(multi.endpoints.connect(multi.endpoints.rolloutPort), "tcp://10.0.0.1:5556")
        XCTAssertEqual(multi.endpoints.bind(multi.endpoints.rolloutPort), "tcp://0.0.0.0:5556")
    }
}
