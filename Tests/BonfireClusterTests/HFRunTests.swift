// Hugging Face models and JSONL problem files through the real entry points: `bonfire train --init DIR --data FILE`,
// `bonfire local --set model.path=DIR`, `bonfire export-hf`. The model directories are built by the tests with the
// reference libraries (Scripts/make-run-fixture.py: transformers save_pretrained + a tokenizers BPE tokenizer, tiny
// random-initialised sizes), and what Bonfire writes back is loaded with transformers' from_pretrained.
// Needs python3 with torch, transformers, tokenizers and safetensors (pip install torch transformers tokenizers
// safetensors); without them the tests fail saying so.
import BonfireCluster
import BonfireModel
import BonfireMath
import Foundation
import XCTest

final class HFRunTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtureRoot = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-hfrun-\(getpid())")
    nonisolated(unsafe) static var built: [String: URL] = [:]

    override class func tearDown() {
        try? FileManager.default.removeItem(at: fixtureRoot)
        super.tearDown()
    }

    @discardableResult
    func python(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3"] + args
        var env = ProcessInfo.processInfo.environment
        env["OMP_NUM_THREADS"] = "1"
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            XCTFail("python3 \(args.prefix(2).joined(separator: " ")) failed (needs: pip install torch transformers tokenizers safetensors):\n\(e.suffix(3000))")
            throw XCTSkip("python reference libraries unavailable")
        }
        return o
    }

    /// A model directory made by Scripts/make-run-fixture.py (built once per test process).
    func fixture(_ name: String, _ args: [String] = []) throws -> URL {
        if let u = Self.built[name] { return u }
        let dir = Self.fixtureRoot.appendingPathComponent(name)
        try python([Self.repoRoot.appendingPathComponent("Scripts/make-run-fixture.py").path, dir.path] + args)
        Self.built[name] = dir
        return dir
    }

    /// A copy of a fixture whose config.json is changed by `edit`.
    func editedCopy(of dir: URL, _ name: String, _ edit: (inout [String: Any]) -> Void) throws -> URL {
        let out = Self.fixtureRoot.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: out)
        try FileManager.default.copyItem(at: dir, to: out)
        let url = out.appendingPathComponent("config.json")
        var obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&obj)
        try JSONSerialization.data(withJSONObject: obj).write(to: url)
        return out
    }

    /// GSM8K-style problems (answers after ####) short enough for the tiny models' context.
    func writeProblems(_ name: String, lines: [String]? = nil) throws -> URL {
        try FileManager.default.createDirectory(at: Self.fixtureRoot, withIntermediateDirectories: true)
        let url = Self.fixtureRoot.appendingPathComponent(name)
        let text = lines ?? (0..<16).map { a in
            #"{"question": "What is \#(a) + 3?", "answer": "\#(a) + 3 = \#(a + 3)\n#### \#(a + 3)"}"#
        }
        try (text.joined(separator: "\n") + "\n").write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    func learnerRecords(_ dir: URL) -> [MetricsRecord] { metricsRecords(dir).filter { $0.role == "learner" } }

    /// transformers' logits of `tokens` for the model in `dir` (float32), as a flat list.
    func transformersLogits(_ dir: URL, _ tokens: [Int]) throws -> [Float] {
        let script = """
        import json, sys, torch
        from transformers import AutoModelForCausalLM
        m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
        with torch.no_grad():
            out = m(torch.tensor([json.loads(sys.argv[2])])).logits[0]
        print(type(m).__name__)
        print(json.dumps(out.flatten().tolist()))
        """
        let out = try python(["-c", script, dir.path, "\(tokens)"]).split(separator: "\n")
        let values = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.last!.utf8)) as? [Double])
        return values.map(Float.init)
    }

    // MARK: happy paths

    func testTrainInitTinyLlamaOnJSONLRunsBoNRLSAndBoNSFTAndWritesWeightsTransformersLoads() throws {
        let llama = try fixture("llama")
        let problems = try writeProblems("problems.jsonl")
        let original = try HFCausalLM.load(directory: llama)
        for algo in ["bon-rl-s", "bon-sft"] {
            let out = temporaryRunDir("hf-\(algo)")
            defer { try? FileManager.default.removeItem(at: out) }
            let r = try runBonfire(["train", "--init", llama.path, "--data", problems.path, "--algo", algo, "--n", "4",
                                    "--prompts-per-step", "4", "--steps", "3", "--out", out.path, "--checkpoint-every", "1",
                                    "--eval-prompts", "4", "--set", "eval.samples=4", "--set", "eval.n=1,4",
                                    "--set", "sampling.maxNewTokens=12"])
            XCTAssertEqual(r.status, 0, "\(algo):\n\(r.output.suffix(4000))")
            XCTAssertTrue(r.output.contains("initialised from the Hugging Face model"), r.output.suffix(3000).description)
            let recs = learnerRecords(out)
            XCTAssertGreaterThanOrEqual(recs.map(\.version).max() ?? 0, 3, "\(algo): three updates published")
            let losses = recs.compactMap { $0.values[MetricKey.policyLoss] }
            XCTAssertFalse(losses.isEmpty, "\(algo): loss recorded")
            XCTAssertTrue(losses.allSatisfy(\.isFinite), "\(algo): losses \(losses)")
            // The run's config records the model's shape, read from its config.json.
            let cfg = try RunConfig.load(file: out.appendingPathComponent("config.json"))
            XCTAssertEqual(cfg.model.path, llama.standardizedFileURL.path)
            XCTAssertEqual(cfg.model.vocabSize, original.model.vocabSize)
            XCTAssertEqual(cfg.task.name.rawValue, "jsonl")
            // A learner checkpoint holds the Llama layout (it loads into the directory's model).
            let ckpt = out.appendingPathComponent("checkpoints/v000003.safetensors")
            let reloaded = try HFCausalLM.load(directory: llama)
            XCTAssertNoThrow(try ModelCheckpoint.load(from: ckpt, into: reloaded.model))
            // <out>/hf is the fine-tuned policy in the Hugging Face layout, equal to the last checkpoint.
            let hf = try HFCausalLM.load(directory: out.appendingPathComponent("hf"))
            XCTAssertEqual(hf.model.params, reloaded.model.params, "\(algo): hf/ holds the last checkpoint's weights")
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("hf/tokenizer.json").path))
            if algo == "bon-sft" {
                // Demonstrations always carry signal: the weights moved. (BoN-RL-S on an untrained model sees R = 0
                // everywhere, so its update is zero by design; it is checked for running, not for moving.)
                XCTAssertNotEqual(hf.model.params, original.model.params, "bon-sft changed the weights")
                let seq = [5, 17, 40, 2, 9, 33]
                let ours = hf.model.logits([seq])[0].flatMap { $0 }
                let theirs = try transformersLogits(out.appendingPathComponent("hf"), seq)
                XCTAssertEqual(ours.count, theirs.count)
                let scale = max(theirs.map(abs).max() ?? 1, 1e-2)
                let diff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
                XCTAssertLessThan(diff / scale, 1e-4, "transformers reproduces the fine-tuned model's logits")
            }
        }
    }

    func testTrainInitGPT2DirectoryRunsRLS() throws {
        let gpt2 = try fixture("gpt2", ["--arch", "gpt2"])
        let problems = try writeProblems("problems-gpt2.jsonl")
        let out = temporaryRunDir("hf-gpt2")
        defer { try? FileManager.default.removeItem(at: out) }
        let r = try runBonfire(["train", "--init", gpt2.path, "--data", problems.path, "--algo", "sft", "--steps", "2",
                                "--out", out.path, "--eval-prompts", "2", "--set", "eval.samples=2", "--set", "eval.n=1,2",
                                "--set", "sampling.maxNewTokens=8", "--set", "sampling.groupSize=2", "--set", "algorithm.trainN=1"])
        XCTAssertEqual(r.status, 0, r.output.suffix(4000).description)
        XCTAssertGreaterThanOrEqual(learnerRecords(out).map(\.version).max() ?? 0, 2)
        let hf = try HFCausalLM.load(directory: out.appendingPathComponent("hf"))
        XCTAssertEqual(hf.architecture, .gpt2)
        XCTAssertNotEqual(hf.model.params, try HFCausalLM.load(directory: gpt2).model.params, "sft changed GPT-2's weights")
    }

    func testLocalWithModelPathRunsTheDefaultJobAcrossProcesses() throws {
        let llama = try fixture("llama")
        let dir = temporaryRunDir("hf-local")
        defer { try? FileManager.default.removeItem(at: dir) }
        let ports = freePorts(4)
        let sets = [
            "model.path=\(llama.path)", "run.dir=\(dir.path)", "learner.maxSteps=4", "learner.groupsPerStep=2",
            "learner.checkpointEvery=2", "sampling.groupSize=4", "sampling.maxNewTokens=8", "algorithm.trainN=2",
            "eval.everyVersions=0", "eval.prompts=2", "eval.samples=2", "eval.n=1,2",
            "liveness.heartbeatIntervalMs=200", "liveness.peerGiveUpMs=30000", "logging.periodSeconds=1",
            "endpoints.coordinatorPort=\(ports[0])", "endpoints.rolloutPort=\(ports[1])",
            "endpoints.paramsPort=\(ports[2])", "endpoints.paramsRequestPort=\(ports[3])",
        ].flatMap { ["--set", $0] }
        let r = try runBonfire(["local", "--actors", "2"] + sets)
        XCTAssertEqual(r.status, 0, r.output.suffix(6000).description)
        XCTAssertGreaterThanOrEqual(learnerRecords(dir).map(\.version).max() ?? 0, 4, r.output.suffix(3000).description)
        XCTAssertTrue(r.output.contains("[actor-0]") && r.output.contains("[learner]"), "roles ran as processes")
        // Parameter broadcast: an actor evaluates only once it holds the requested version (the last one).
        XCTAssertNotNil(r.output.range(of: #"actor-\d: evaluating version 4 "#, options: .regularExpression),
                        r.output.suffix(4000).description)
        let ckpt = try XCTUnwrap(RunDirectory.open(at: dir).latestCheckpoint(), "a checkpoint was written")
        let hf = try HFCausalLM.load(directory: llama)
        XCTAssertNoThrow(try ModelCheckpoint.load(from: ckpt.url, into: hf.model))
        // ... and goes back to the Hugging Face layout through `bonfire export-hf`.
        let out = dir.appendingPathComponent("export")
        let e = try runBonfire(["export-hf", "--checkpoint", ckpt.url.path, "--out", out.path])
        XCTAssertEqual(e.status, 0, e.output)
        XCTAssertEqual(try HFCausalLM.load(directory: out).model.params, hf.model.params)
    }

    // MARK: hostile inputs

    func testMissingModelDirectoryIsAConfigErrorNamingTheKey() throws {
        let missing = "/nonexistent/bonfire-model-\(getpid())"
        let t = try runBonfire(["train", "--init", missing, "--steps", "1", "--out", temporaryRunDir("x").path])
        XCTAssertNotEqual(t.status, 0)
        XCTAssertTrue(t.output.contains("--init \(missing): no such file or directory"), t.output)
        let l = try runBonfire(["local", "--set", "model.path=\(missing)", "--set", "run.dir=\(temporaryRunDir("y").path)"])
        XCTAssertNotEqual(l.status, 0)
        XCTAssertTrue(l.output.contains("config key model.path") && l.output.contains("is not a directory"), l.output)
    }

    func testUnsupportedArchitectureOrFieldIsAnErrorNamingTheFieldAndFile() throws {
        let llama = try fixture("llama")
        let problems = try writeProblems("problems-arch.jsonl")
        for (name, edit, expected) in [
            ("gemma", { (o: inout [String: Any]) in o["model_type"] = "gemma"; o["architectures"] = ["GemmaForCausalLM"] },
             "model_type = gemma is not supported (supported: gpt2, llama, qwen2)"),
            ("gelu", { (o: inout [String: Any]) in o["hidden_act"] = "gelu" }, "hidden_act = gelu is not supported"),
            ("yarn", { (o: inout [String: Any]) in o["rope_parameters"] = ["rope_type": "yarn", "rope_theta": 10000.0, "factor": 2.0] },
             "rope_parameters.rope_type = yarn is not supported"),
        ] as [(String, (inout [String: Any]) -> Void, String)] {
            let dir = try editedCopy(of: llama, "llama-\(name)", edit)
            let r = try runBonfire(["train", "--init", dir.path, "--data", problems.path, "--steps", "1",
                                    "--out", temporaryRunDir(name).path])
            XCTAssertNotEqual(r.status, 0, name)
            XCTAssertTrue(r.output.contains("config key model.path"), "\(name): names the key\n\(r.output)")
            XCTAssertTrue(r.output.contains(dir.appendingPathComponent("config.json").path), "\(name): names the file\n\(r.output)")
            XCTAssertTrue(r.output.contains(expected), "\(name): names the field and what is supported\n\(r.output)")
        }
    }

    func testMalformedJSONLLineIsAnErrorNamingFileAndLine() throws {
        var lines = (0..<4).map { "{\"question\": \"What is \($0) + 1?\", \"answer\": \"#### \($0 + 1)\"}" }
        lines[2] = "{\"question\": \"What is 2 + 1?\", \"answer\": \"#### 3\""   // unterminated object on line 3
        let bad = try writeProblems("bad.jsonl", lines: lines)
        let r = try runBonfire(["train", "--data", bad.path, "--steps", "1", "--out", temporaryRunDir("bad").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("config key task.path") && r.output.contains("\(bad.path):3"), r.output)
        // task.name=jsonl without a file names task.path and what to do.
        let n = try runBonfire(["local", "--set", "task.name=jsonl", "--set", "run.dir=\(temporaryRunDir("np").path)"])
        XCTAssertNotEqual(n.status, 0)
        XCTAssertTrue(n.output.contains("config key task.path must name a JSON Lines file"), n.output)
    }

    func testTokenizerWithMoreIdsThanTheModelsVocabularyIsRefused() throws {
        // The tokenizer has 320 ids; the model was saved with vocab_size 200 (weights consistent with 200).
        let small = try fixture("llama-v200", ["--model-vocab", "200"])
        let problems = try writeProblems("problems-vocab.jsonl")
        let r = try runBonfire(["train", "--init", small.path, "--data", problems.path, "--steps", "1",
                                "--out", temporaryRunDir("vocab").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("tokenizer.json has 320 token ids") && r.output.contains("vocab_size = 200"),
                      r.output.suffix(3000).description)
    }

    func testJSONLPromptLongerThanTheContextIsRefusedNamingTheLine() throws {
        let llama = try fixture("llama")   // context 128
        let long = String(repeating: "apples and ", count: 200)
        let lines = ["{\"question\": \"What is 1 + 1?\", \"answer\": \"#### 2\"}",
                     "{\"question\": \"\(long)?\", \"answer\": \"#### 2\"}"]
        let file = try writeProblems("long.jsonl", lines: lines)
        let r = try runBonfire(["train", "--init", llama.path, "--data", file.path, "--steps", "1",
                                "--out", temporaryRunDir("long").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("\(file.path):2") && r.output.contains("exceeds the model's context of 128"),
                      r.output.suffix(3000).description)
    }
}
