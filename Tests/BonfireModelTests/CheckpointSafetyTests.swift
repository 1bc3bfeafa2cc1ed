// Crash-safe checkpoints: never written with non-finite values, never loaded when damaged (truncated at every
// offset, bit flips, a forged config, NaN data), and a directory falls back to the newest valid checkpoint.
import XCTest
import Foundation
import BonfireMath
import BonfireModel

final class CheckpointSafetyTests: XCTestCase {
    let cfg = GPTConfig(vocabSize: 8, contextLength: 4, layers: 1, heads: 1, dim: 4)

    func tmpDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-cks-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    func testSaveRefusesNonFiniteParametersAndKeepsThePreviousFile() throws {
        let dir = try tmpDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = GPT(config: cfg, seed: 1)
        let url = dir.appendingPathComponent("v000001.safetensors")
        try Checkpoint.save(model: m, optimizer: nil, step: 1, metadata: [:], to: url)
        let before = try Data(contentsOf: url)
        m.params[5] = .nan
        XCTAssertThrowsError(try Checkpoint.save(model: m, optimizer: nil, step: 2, metadata: [:], to: url)) {
            XCTAssertTrue("\($0)".contains("refusing"), "\($0)")
        }
        m.params[5] = 0
        var opt = AdamW(layout: m.layout)
        opt.m = [Float](repeating: 0, count: m.params.count); opt.v = opt.m
        opt.v[3] = .infinity
        XCTAssertThrowsError(try Checkpoint.save(model: m, optimizer: opt, step: 2, metadata: [:], to: url))
        XCTAssertEqual(try Data(contentsOf: url), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["v000001.safetensors"])
    }

    func testTruncationAtEveryOffsetAndBitFlipsAreRejectedNotTrapped() throws {
        let dir = try tmpDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let m = GPT(config: cfg, seed: 2)
        let url = dir.appendingPathComponent("c.safetensors")
        try Checkpoint.save(model: m, optimizer: nil, step: 7, metadata: ["k": "v"], to: url)
        let file = try Data(contentsOf: url)
        let bad = dir.appendingPathComponent("bad.safetensors")
        XCTAssertEqual(try Checkpoint.load(data: file).model.params, m.params)
        for n in 0..<file.count {
            XCTAssertThrowsError(try Checkpoint.load(data: file.prefix(n)), "truncated to \(n) bytes")
        }
        for n in [0, 7, 8, 100, file.count / 2, file.count - 1] {  // the same through real files
            try file.prefix(n).write(to: bad)
            XCTAssertThrowsError(try Checkpoint.load(from: bad), "truncated to \(n) bytes")
        }
        var rng = SystemRandomNumberGenerator()
        var rejected = 0
        for _ in 0..<2000 {
            var f = file
            let i = Int.random(in: 0..<f.count, using: &rng)
            f[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            if let l = try? Checkpoint.load(data: f) {
                XCTAssertEqual(l.model.params.map(\.bitPattern), m.params.map(\.bitPattern), "flip at \(i) accepted with other parameters")
                XCTAssertEqual(l.step, 7)
            } else { rejected += 1 }
        }
        XCTAssertGreaterThan(rejected, 1800)
        print("checkpoint: truncated at all \(file.count) offsets (all rejected); 2000 random bit flips: \(rejected) rejected, \(2000 - rejected) accepted with identical parameters")
        // Random bytes.
        for _ in 0..<500 {
            XCTAssertThrowsError(try Checkpoint.load(data: Data((0..<Int.random(in: 0...400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })))
        }
    }

    func testForgedConfigAndNaNDataWithAValidChecksumAreRejected() throws {
        let dir = try tmpDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("forged.safetensors")
        for config in [#"{"vocabSize":8,"contextLength":4,"layers":1,"heads":0,"dim":4,"scalarHead":false}"#,
                       #"{"vocabSize":8,"contextLength":4,"layers":1,"heads":3,"dim":4,"scalarHead":false}"#,
                       #"{"vocabSize":1000000,"contextLength":4,"layers":1000,"heads":1,"dim":65536,"scalarHead":false}"#,
                       #"{"vocabSize":-1,"contextLength":4,"layers":1,"heads":1,"dim":4,"scalarHead":false}"#] {
            try SafeTensors.write(to: url, tensors: [("wte", [1], [0])], metadata: [
                "bonfire.format": "checkpoint-v1", "bonfire.config": config, "bonfire.tokenizer_version": "1", "bonfire.step": "1"])
            XCTAssertThrowsError(try Checkpoint.load(from: url), config)
        }
        // NaN parameters in a file with a valid checksum (written by an older build): refused on load.
        let m = GPT(config: cfg, seed: 3)
        let good = dir.appendingPathComponent("good.safetensors")
        try Checkpoint.save(model: m, optimizer: nil, step: 1, metadata: [:], to: good)
        var file = try SafeTensors.read(from: good)
        var meta = file.metadata
        meta["bonfire.format"] = "checkpoint-v1"
        let names = file.tensors.keys.sorted()
        file.tensors[names[0]]!.data[0] = .nan
        let full = try SafeTensors.read(from: good)
        var fullMeta = full.metadata
        for (k, v) in meta { fullMeta[k] = v }
        try SafeTensors.write(to: url, tensors: names.map { ($0, file.tensors[$0]!.shape, file.tensors[$0]!.data) }, metadata: fullMeta)
        XCTAssertThrowsError(try Checkpoint.load(from: url)) { XCTAssertTrue("\($0)".contains("non-finite"), "\($0)") }
    }

    func testStoreFallsBackToTheNewestValidCheckpointAndPrunesToK() throws {
        let dir = try tmpDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = CheckpointStore(directory: dir)
        var models: [Int: GPT] = [:]
        for v in [1, 5, 12, 30] {
            let m = GPT(config: cfg, seed: UInt64(v))
            models[v] = m
            try Checkpoint.save(model: m, optimizer: nil, step: v, metadata: [:], to: store.url(version: v))
        }
        // Junk that must not be listed, and a crashed writer's temporary.
        for junk in ["v12x.safetensors", "w000001.safetensors", "v.safetensors", "v99999999999999999999999.safetensors", "notes.txt"] {
            try Data([0]).write(to: dir.appendingPathComponent(junk))
        }
        try Data([0]).write(to: dir.appendingPathComponent(".v000031.safetensors.tmp-1-2"))
        XCTAssertEqual(store.list().map(\.version), [30, 12, 5, 1])
        // Corrupt the two newest: truncated, and one data bit flipped.
        let v30 = try Data(contentsOf: store.url(version: 30))
        try v30.prefix(v30.count / 2).write(to: store.url(version: 30))
        var v12 = try Data(contentsOf: store.url(version: 12))
        v12[v12.count - 3] ^= 0x10
        try v12.write(to: store.url(version: 12))
        let (found, skipped) = store.loadNewestValid { try Checkpoint.load(from: $0) }
        XCTAssertEqual(found?.file.version, 5)
        XCTAssertEqual(found?.value.model.params, models[5]!.params)
        XCTAssertEqual(skipped.map(\.file.version), [30, 12])
        XCTAssertTrue(skipped[1].description.contains("checksum"), skipped[1].description)
        // Nothing valid → nil with every file reported (the caller says so and stops, not "start at version 0").
        let empty = CheckpointStore(directory: dir.appendingPathComponent("none"))
        XCTAssertNil(empty.loadNewestValid { try Checkpoint.load(from: $0) }.found)
        // Prune to the last 2: v1 and v5 go, as does the temporary; junk stays.
        let removed = try store.prune(keep: 2)
        XCTAssertEqual(Set(removed.map(\.lastPathComponent)),
                       ["v000001.safetensors", "v000005.safetensors", ".v000031.safetensors.tmp-1-2"])
        XCTAssertEqual(store.list().map(\.version), [30, 12])
    }
}
