// CURVE keys and key files: generation, Z85 validation with hostile strings, the files `bonfire keys` writes (mode
// 0600, directory 0700, no overwrite), and the refusals a careless user meets (world-readable secret, renamed file,
// broken allow list, a key bound to two roles, a missing directory).
import BonfireWire
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

private func tempDir() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-curve-\(UUID().uuidString)")
    return url
}

private func mode(_ url: URL) -> mode_t {
    var st = stat()
    XCTAssertEqual(stat(url.path, &st), 0, url.path)
    return st.st_mode & 0o777
}

final class CurveKeysTests: XCTestCase {
    func testGeneratedPairsAreValidDistinctAndNeverPrintTheSecret() throws {
        XCTAssertTrue(Curve.isAvailable, "Debian's libzmq is built with libsodium; CURVE must be there")
        let a = try CurveKeyPair.generate(), b = try CurveKeyPair.generate()
        XCTAssertNotEqual(a.publicKey, b.publicKey)
        XCTAssertNotEqual(a.secretKey, b.secretKey)
        XCTAssertEqual(a.publicKey.utf8.count, 40)
        XCTAssertEqual(Curve.decode(a.publicKey)?.count, 32)
        XCTAssertEqual(Curve.encode(Curve.decode(a.secretKey)!), a.secretKey)
        for text in [a.description, a.debugDescription, "\(a)", String(reflecting: a)] {
            XCTAssertFalse(text.contains(a.secretKey), text)
            XCTAssertTrue(text.contains(a.publicKey), text)
        }
        XCTAssertEqual(try CurveKeyPair(publicKey: a.publicKey, secretKey: a.secretKey), a)
    }

    func testHostileKeyStringsAreRejectedNotTrapped() throws {
        let good = try CurveKeyPair.generate()
        let bad = ["", "x", String(good.publicKey.dropLast()), good.publicKey + "A", String(repeating: "A", count: 10_000),
                   String(good.publicKey.dropLast()) + "\"", String(good.publicKey.dropLast()) + " ",
                   String(good.publicKey.dropLast()) + "é", String(repeating: "\0", count: 40)]
        for s in bad {
            XCTAssertFalse(Curve.isValidKey(s), "accepted \(s.prefix(50).debugDescription)")
            XCTAssertNil(Curve.decode(s))
            XCTAssertThrowsError(try CurveKeyPair(publicKey: s, secretKey: good.secretKey))
            XCTAssertThrowsError(try CurveKeyPair(publicKey: good.publicKey, secretKey: s))
        }
        // A valid public key that belongs to another secret key.
        let other = try CurveKeyPair.generate()
        XCTAssertThrowsError(try CurveKeyPair(publicKey: other.publicKey, secretKey: good.secretKey)) { error in
            XCTAssertTrue("\(error)".contains("does not belong"), "\(error)")
        }
    }

    func testAllowListBindsEachKeyToOneRole() throws {
        let k = try CurveKeyPair.generate().publicKey
        var list = CurveAllowList()
        try list.allow(k, as: .actor)
        try list.allow(k, as: .actor)  // idempotent
        XCTAssertThrowsError(try list.allow(k, as: .learner))
        XCTAssertThrowsError(try list.allow("not a key", as: .learner))
        XCTAssertEqual(list.role(of: k), .actor)
        XCTAssertNil(list.role(of: try CurveKeyPair.generate().publicKey))
        XCTAssertEqual(list.count, 1)
    }

    func testKeyDirectoryFilesArePrivateAndLoadPerRole() throws {
        let dir = tempDir().appendingPathComponent("keys")
        defer { try? FileManager.default.removeItem(at: dir.deletingLastPathComponent()) }
        let oldMask = umask(0o022)  // a usual umask must not make the files readable by others
        defer { umask(oldMask) }
        let written = try CurveKeyDirectory.generate(at: dir)
        XCTAssertEqual(Set(written), ["server.key", "server.pub", "allowed-clients", "coordinator.key", "learner.key", "actor.key"])
        XCTAssertEqual(mode(dir), 0o700)
        for name in written { XCTAssertEqual(mode(dir.appendingPathComponent(name)), 0o600, name) }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [])

        let coordinator = try CurveCredentials.load(dir: dir, role: .coordinator)
        let learner = try CurveCredentials.load(dir: dir, role: .learner)
        let actor = try CurveCredentials.load(dir: dir, role: .actor)
        XCTAssertNotNil(coordinator.server)
        XCTAssertEqual(coordinator.server, learner.server)
        XCTAssertNil(actor.server, "an actor must not need the server's secret key")
        XCTAssertNil(actor.allow)
        XCTAssertEqual(actor.serverPublicKey, learner.serverPublicKey)
        let allow = try XCTUnwrap(learner.allow)
        XCTAssertEqual(allow.count, 3)
        XCTAssertEqual(allow.role(of: actor.client.publicKey), .actor)
        XCTAssertEqual(allow.role(of: learner.client.publicKey), .learner)
        XCTAssertEqual(allow.role(of: coordinator.client.publicKey), .coordinator)
        XCTAssertNil(allow.role(of: learner.server!.publicKey), "the server key is not a client key")
        // No secret key in the files an actor host or the allow list holds.
        for name in ["server.pub", "allowed-clients"] {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            for secret in [coordinator.server!.secretKey, actor.client.secretKey, learner.client.secretKey] {
                XCTAssertFalse(text.contains(secret), name)
            }
        }

        // Regenerating over a deployment's keys is refused; --force replaces all of them.
        XCTAssertThrowsError(try CurveKeyDirectory.generate(at: dir)) { XCTAssertTrue("\($0)".contains("already exists"), "\($0)") }
        try CurveKeyDirectory.generate(at: dir, overwrite: true)
        XCTAssertNotEqual(try CurveCredentials.load(dir: dir, role: .actor).client, actor.client)
    }

    func testCarelessKeyFilesAreRefusedWithWhatToDo() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .actor)) {
            XCTAssertTrue("\($0)".contains("bonfire keys --dir"), "\($0)")
        }
        try CurveKeyDirectory.generate(at: dir)
        let actorKey = dir.appendingPathComponent("actor.key")

        chmod(actorKey.path, 0o644)
        XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .actor)) {
            XCTAssertTrue("\($0)".contains("chmod 600"), "\($0)")
        }
        chmod(actorKey.path, 0o600)

        // The learner's key file copied over the actor's: the role line gives it away.
        let learnerText = try Data(contentsOf: dir.appendingPathComponent("learner.key"))
        try learnerText.write(to: actorKey); chmod(actorKey.path, 0o600)
        XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .actor)) {
            XCTAssertTrue("\($0)".contains("holds the learner key"), "\($0)")
        }

        // Damaged key file: secret key cut short.
        try Data("role = actor\npublic-key = abc\nsecret-key = def\n".utf8).write(to: actorKey); chmod(actorKey.path, 0o600)
        XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .actor))
        // Binary garbage and an oversized file.
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131) }).write(to: actorKey); chmod(actorKey.path, 0o600)
        XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .actor))
        try Data(repeating: 65, count: 100_000).write(to: actorKey); chmod(actorKey.path, 0o600)
        XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .actor)) { XCTAssertTrue("\($0)".contains("too big"), "\($0)") }

        // Allow list: an unknown role, a missing key, one key for two roles, an empty list.
        let allow = dir.appendingPathComponent("allowed-clients")
        let k = try CurveKeyPair.generate().publicKey
        for text in ["superuser \(k)\n", "actor\n", "actor \(k)\nlearner \(k)\n", "# nothing\n", "actor \(k) extra\n"] {
            try Data(text.utf8).write(to: allow)
            XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .learner), text)
        }
        try Data("# ok\nactor \(k)   # comment\n\n".utf8).write(to: allow)
        XCTAssertEqual(try CurveCredentials.load(dir: dir, role: .learner).allow?.role(of: k), .actor)

        // A directory where a key file should be.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("server.key"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("server.key"), withIntermediateDirectories: false)
        XCTAssertThrowsError(try CurveCredentials.load(dir: dir, role: .learner)) {
            XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)")
        }
        // --dir naming a file.
        XCTAssertThrowsError(try CurveKeyDirectory.generate(at: allow))
    }
}
