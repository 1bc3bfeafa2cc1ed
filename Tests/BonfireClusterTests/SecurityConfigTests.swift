// The security section of RunConfig and the run id: non-loopback addresses need CURVE (or an explicit opt-out), the
// error says how to turn CURVE on, hostile values are refused by name, and the run id is random per run directory
// and kept for roles started later and on resume.
import BonfireCluster
import BonfireWire
import Foundation
import XCTest

final class SecurityConfigTests: XCTestCase {
    func testDefaultsAreLoopbackWithoutCurveAndValid() throws {
        let c = try RunConfig.load()
        XCTAssertEqual(c.security.mode, .none)
        XCTAssertEqual(c.security.keysDir, "")
        XCTAssertFalse(c.security.allowInsecureRemote)
    }

    func testNonLoopbackWithoutCurveRefusesAndSaysHowToTurnItOn() throws {
        for sets in [["endpoints.bindHost=0.0.0.0"], ["endpoints.bindHost=10.0.0.1", "endpoints.host=10.0.0.1"],
                     ["endpoints.host=node1"], ["endpoints.bindHost=*"], ["endpoints.bindHost=127.0.0.1.evil.com"],
                     ["endpoints.bindHost=::"], ["endpoints.host=128.0.0.1"]] {
            XCTAssertThrowsError(try RunConfig.load(sets: sets), "\(sets)") { error in
                let m = "\(error)"
                XCTAssertTrue(m.contains("bonfire keys --dir D"), m)
                XCTAssertTrue(m.contains("--set security.mode=curve --set security.keysDir=D"), m)
                XCTAssertTrue(m.contains("security.allowInsecureRemote=true"), m)
            }
        }
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"] {
            XCTAssertNoThrow(try RunConfig.load(sets: ["endpoints.bindHost=\(host)", "endpoints.host=\(host)"]), host)
        }
        let opted = try RunConfig.load(sets: ["endpoints.bindHost=0.0.0.0", "security.allowInsecureRemote=true"])
        XCTAssertTrue(opted.security.allowInsecureRemote)
        let curve = try RunConfig.load(sets: ["endpoints.bindHost=0.0.0.0", "security.mode=curve", "security.keysDir=/k"])
        XCTAssertEqual(curve.security.mode, .curve)
    }

    func testCurveNeedsAKeyDirectoryAndHostileValuesAreRefusedByName() throws {
        XCTAssertThrowsError(try RunConfig.load(sets: ["security.mode=curve"])) {
            XCTAssertTrue("\($0)".contains("security.keysDir"), "\($0)")
        }
        for bad in ["security.mode=CURVE", "security.mode=", "security.mode=1", "security.allowInsecureRemote=yes",
                    "security.allowInsecureRemote=1", "security.keysDir", "security.unknown=1"] {
            XCTAssertThrowsError(try RunConfig.load(sets: [bad]), bad)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-sec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("c.json")
        for json in [#"{"security": {"mode": 1}}"#, #"{"security": {"allowInsecureRemote": "true"}}"#,
                     #"{"security": {"allowInsecureRemote": 1}}"#, #"{"security": {"mode": "tls"}}"#, #"{"security": "curve"}"#] {
            try Data(json.utf8).write(to: file)
            XCTAssertThrowsError(try RunConfig.load(overrides: [file]), json)
        }
        try Data(#"{"security": {"mode": "curve", "keysDir": "k", "allowInsecureRemote": true}}"#.utf8).write(to: file)
        let c = try RunConfig.load(overrides: [file])
        XCTAssertEqual(c.security.mode, .curve)
        XCTAssertTrue(c.security.allowInsecureRemote)
        // The resolved JSON round-trips (config.json of a run directory).
        try Data(c.resolvedJSON().utf8).write(to: file)
        XCTAssertEqual(try RunConfig.load(file: file), c)
    }

    func testRunIDIsRandomPerRunDirectoryAndKeptForLaterRolesAndResume() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-runid-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try RunDirectory.sharedRunID(dir: root.appendingPathComponent("a"))
        let again = try RunDirectory.sharedRunID(dir: root.appendingPathComponent("a"))
        let b = try RunDirectory.sharedRunID(dir: root.appendingPathComponent("b"))
        XCTAssertEqual(a, again, "a role started later (or a resume) must get the same id")
        XCTAssertNotEqual(a, b, "two runs with the same config must not share an id")
        let fresh = try RunDirectory.sharedRunID(dir: root.appendingPathComponent("a"), fresh: true)
        XCTAssertNotEqual(fresh, a)
        XCTAssertEqual(try RunDirectory.sharedRunID(dir: root.appendingPathComponent("a")), fresh)
        var c = RunConfig(); c.run.id = fresh
        XCTAssertNoThrow(try c.validate())
        XCTAssertGreaterThanOrEqual(fresh.count, 30, "time + 64 random bits: \(fresh)")
        // A damaged run-id file (empty, spaces, a slash) is replaced, not trusted.
        for junk in ["", "  \n", "a b", "x/y"] {
            try Data(junk.utf8).write(to: RunDirectory.runIDURL(root.appendingPathComponent("a")))
            let id = try RunDirectory.sharedRunID(dir: root.appendingPathComponent("a"))
            XCTAssertFalse(id.isEmpty || id.contains(" ") || id.contains("/"), id)
        }
    }

    /// Roles started together (bonfire local, a Slurm step) race to create the run id: all must agree. Each round
    /// starts 8 threads on a fresh directory at once.
    func testRolesStartedAtOnceAllGetTheSameRunID() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-runid-race-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for round in 0..<100 {
            let dir = root.appendingPathComponent("r\(round)")
            let ids = LockedIDs()
            let start = DispatchSemaphore(value: 0), done = DispatchGroup()
            for _ in 0..<8 {
                done.enter()
                Thread.detachNewThread {
                    start.wait()
                    ids.add((try? RunDirectory.sharedRunID(dir: dir)) ?? "error")
                    done.leave()
                }
            }
            for _ in 0..<8 { start.signal() }
            done.wait()
            XCTAssertEqual(Set(ids.all).count, 1, "round \(round): roles got different run ids \(Set(ids.all))")
            XCTAssertFalse(ids.all.contains("error"))
        }
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: root.path).filter { $0.contains(".run-id.") }
        XCTAssertEqual(leftovers, [], "temporary run-id files are removed")
    }

    final class LockedIDs: @unchecked Sendable {
        let lock = NSLock(); var all: [String] = []
        func add(_ s: String) { lock.lock(); all.append(s); lock.unlock() }
    }

    func testRoleSecurityWiresCurveServersClientsAndTheRoleCheck() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-rolesec-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try CurveKeyDirectory.generate(at: dir)
        let config = try RunConfig.load(sets: ["security.mode=curve", "security.keysDir=\(dir.path)"])
        let learnerContext = try ZMQContext(), actorContext = try ZMQContext()
        let learner = try RoleSecurity.start(config: config, role: .learner, context: learnerContext, log: { _ in })
        defer { learner.stop() }
        let actor = try RoleSecurity.start(config: config, role: .actor, context: actorContext, log: { _ in })
        XCTAssertNil(actor.authenticator, "actors bind nothing and hold no server key")
        let pull = try ZMQSocket(learnerContext, .pull, linger: .zero)
        try learner.server(pull)
        try pull.bind("tcp://127.0.0.1:*")
        let push = try ZMQSocket(actorContext, .push, linger: .zero)
        try actor.client(push)
        try push.connect(try pull.lastEndpoint())
        var decoder = WireDecoder(runID: "r")
        for claimed in [WireRole.actor, .learner, .coordinator] {
            let env = WireEnvelope(runID: "r", senderRole: claimed, senderID: 0, sequence: 1,
                                   payload: .heartbeat(WireHeartbeat(policyVersion: 1, unixTimeMs: 1, state: "x")))
            XCTAssertTrue(try push.send(env, timeout: .seconds(5)))
            let got = try XCTUnwrap(pull.receiveEnvelope(&decoder, timeout: .seconds(5)))
            XCTAssertEqual(learner.accepts(got), claimed == .actor, "actor key claiming \(claimed)")
        }
        XCTAssertEqual(learner.rejectedRole, 2)
        // A keyless peer gets nothing in and is counted.
        let plain = try ZMQSocket(try ZMQContext(), .push, linger: .zero)
        try plain.connect(try pull.lastEndpoint())
        _ = try plain.send([[1]], timeout: .milliseconds(100))
        XCTAssertNil(try pull.receive(timeout: .seconds(1)))
        let deadline = ContinuousClock.now + .seconds(10)
        while learner.rejectedPeers == 0 && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertGreaterThan(learner.rejectedPeers, 0)

        // Missing keys: a message that says how to make them.
        let missing = try RunConfig.load(sets: ["security.mode=curve", "security.keysDir=\(dir.path)-nope"])
        XCTAssertThrowsError(try RoleSecurity.start(config: missing, role: .actor, context: actorContext, log: { _ in })) {
            XCTAssertTrue("\($0)".contains("bonfire keys --dir"), "\($0)")
        }
        // Without CURVE: no-ops, everything accepted.
        let none = try RoleSecurity.start(config: RunConfig(), role: .learner, context: try ZMQContext(), log: { _ in })
        let s = try ZMQSocket(try ZMQContext(), .pull, linger: .zero)
        try none.server(s)
        XCTAssertFalse(s.usesCurve)
        XCTAssertNil(none.authenticator)
    }
}
