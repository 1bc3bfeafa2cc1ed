// The KL-to-start reference of BoNPolicyLearner (Jobs/BoNJob.swift): π_start is the version-0 policy, saved once as
// checkpoints/kl-reference.safetensors and checked against every checkpoint's `kl_reference_crc32` on resume, so a
// resumed KL run anchors to the start (bit-identical to an uninterrupted one), and a missing, corrupt or foreign
// reference stops the resume with a message that says what to do.
import BonfireCluster
import BonfireMath
import Foundation
import XCTest

final class KLReferenceTests: XCTestCase {
    override func setUp() { setenv("OPENBLAS_NUM_THREADS", "1", 1) }

    /// A small synchronous rl-s job with a strong KL penalty (the reference matters to every update).
    func smallKL(_ dir: URL, steps: Int, kl: Double = 1) throws -> RunConfig {
        try RunConfig.load(sets: [
            "run.dir=\(dir.path)", "run.seed=5", "algorithm.name=rl-s", "algorithm.klCoefficient=\(kl)",
            "learner.maxSteps=\(steps)", "learner.groupsPerStep=2", "learner.checkpointEvery=3",
            "algorithm.sftWarmupSteps=5", "model.layers=1", "model.dim=32", "sampling.groupSize=4",
            "sampling.maxNewTokens=12", "eval.everyVersions=0", "eval.prompts=2", "eval.samples=4", "eval.n=1,2,4",
            "liveness.heartbeatIntervalMs=100", "logging.periodSeconds=1", "liveness.peerGiveUpMs=20000",
            "liveness.livenessCount=20", "actors.count=1", "learner.schedule=sync",
        ])
    }

    func run(_ c: RunConfig, resume: Bool = false) throws {
        let dir = try RunDirectory.create(at: URL(fileURLWithPath: c.run.dir), config: c)
        XCTAssertEqual(try InProcessJob.run(config: c, runDir: dir, resume: resume), 0)
    }

    func modelTensors(_ url: URL) throws -> [String: [Float]] {
        try SafeTensors.read(from: url).tensors.filter { !$0.key.hasPrefix("adam.") }.mapValues(\.data)
    }

    /// The first half (3 of 6 steps) of a KL run: its run directory, checkpoints/v000003.safetensors and the reference.
    func firstHalf(_ name: String, kl: Double = 1) throws -> URL {
        let url = temporaryRunDir(name)
        try run(try smallKL(url, steps: 3, kl: kl))
        return url
    }

    func testResumedKLRunEndsBitIdenticalToAnUninterruptedOne() throws {
        let whole = temporaryRunDir("kl-whole"), split = try firstHalf("kl-split")
        defer { [whole, split].forEach { try? FileManager.default.removeItem(at: $0) } }
        try run(try smallKL(whole, steps: 6))
        try run(try smallKL(split, steps: 6), resume: true)
        let refA = try modelTensors(whole.appendingPathComponent("checkpoints/kl-reference.safetensors"))
        let refB = try modelTensors(split.appendingPathComponent("checkpoints/kl-reference.safetensors"))
        XCTAssertTrue(refA == refB, "both runs anchor to the same version-0 policy")
        let a = try modelTensors(whole.appendingPathComponent("checkpoints/v000006.safetensors"))
        let b = try modelTensors(split.appendingPathComponent("checkpoints/v000006.safetensors"))
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (key, t) in a { XCTAssertTrue(t == b[key]!, "tensor \(key) differs after resume") }
        XCTAssertFalse(a == refA, "training moved the policy away from the reference")
        let meta = try SafeTensors.read(from: whole.appendingPathComponent("checkpoints/v000006.safetensors")).metadata
        XCTAssertEqual(meta["kl_reference_crc32"]?.count, 8, "every checkpoint names its reference: \(meta.keys.sorted())")
    }

    /// The learner of the run in `url`, restoring its newest checkpoint (what --resume does).
    func restore(_ url: URL, kl: Double = 1) throws {
        let learner = try BoNPolicyLearner(config: try smallKL(url, steps: 6, kl: kl))
        _ = try learner.restore(from: url.appendingPathComponent("checkpoints/v000003.safetensors"))
    }

    func testAMissingCorruptOrForeignReferenceStopsTheResumeSayingWhatToDo() throws {
        let url = try firstHalf("kl-hostile")
        defer { try? FileManager.default.removeItem(at: url) }
        let ref = url.appendingPathComponent("checkpoints/kl-reference.safetensors")
        let good = try Data(contentsOf: ref)
        XCTAssertNoThrow(try restore(url), "the run's own reference restores")

        try FileManager.default.removeItem(at: ref)
        XCTAssertThrowsError(try restore(url)) {
            let m = "\($0)"
            XCTAssertTrue(m.contains("kl-reference.safetensors is missing") && m.contains("Put it back")
                          && m.contains("without --resume"), m)
        }

        var bad = good
        bad[bad.count / 2] ^= 0x5A   // one flipped byte in the parameters: the file's CRC-32 no longer matches
        try bad.write(to: ref)
        XCTAssertThrowsError(try restore(url)) {
            XCTAssertTrue("\($0)".contains("is unreadable") && "\($0)".contains("Put it back"), "\($0)")
        }

        // A valid checkpoint file, but not the run's version-0 policy (the version-3 checkpoint in its place).
        try FileManager.default.removeItem(at: ref)
        try FileManager.default.copyItem(at: url.appendingPathComponent("checkpoints/v000003.safetensors"), to: ref)
        XCTAssertThrowsError(try restore(url)) {
            XCTAssertTrue("\($0)".contains("is not the one v000003.safetensors was trained against"), "\($0)")
        }
        try good.write(to: ref)
        XCTAssertNoThrow(try restore(url))
    }

    func testResumingARunTrainedWithoutKLWithKLOnIsRefused() throws {
        let url = try firstHalf("kl-off", kl: 0)
        defer { try? FileManager.default.removeItem(at: url) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: url.appendingPathComponent("checkpoints/kl-reference.safetensors").path),
                       "no KL, no reference file")
        XCTAssertNoThrow(try restore(url, kl: 0))
        XCTAssertThrowsError(try restore(url, kl: 0.5)) {
            XCTAssertTrue("\($0)".contains("trained without a KL reference"), "\($0)")
        }
    }

    /// Through the runtime: the resume fails with the reference's message, not only "no usable checkpoint".
    func testTheRuntimeReportsWhyNoCheckpointIsUsable() throws {
        let url = try firstHalf("kl-runtime")
        defer { try? FileManager.default.removeItem(at: url) }
        try FileManager.default.removeItem(at: url.appendingPathComponent("checkpoints/kl-reference.safetensors"))
        let c = try smallKL(url, steps: 6)
        let dir = try RunDirectory.create(at: url, config: c)
        XCTAssertThrowsError(try InProcessJob.run(config: c, runDir: dir, resume: true)) {
            XCTAssertTrue("\($0)".contains("no usable checkpoint") && "\($0)".contains("kl-reference.safetensors is missing"), "\($0)")
        }
    }
}
