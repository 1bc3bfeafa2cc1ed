// The same-host parameter broadcast through the real LearnerLink and ActorLink over tcp://127.0.0.1 (the endpoints
// `bonfire local` uses): a same-host actor installs versions from the learner's shared-memory ring; hostile or
// unusable notices on the learner's socket are never installed, are counted by reason and make the actor ask for the
// full parameters; an actor that cannot read this host's memory turns the learner to full broadcasts; the ring file
// is gone when the learner closes; and `bonfire local` trains with versions taken from shared memory and leaves
// nothing in /dev/shm.
import BonfireCluster
import BonfireWire
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class SharedMemoryBroadcastTests: XCTestCase {
    override func setUpWithError() throws {
        guard ParameterSlotRing.hostIdentity() != nil else { throw XCTSkip("no boot id: shared memory is never used here") }
    }

    func config(_ runID: String, sharedMemory: Bool = true) -> RunConfig {
        var c = RunConfig()
        c.run.id = runID
        c.run.dir = NSTemporaryDirectory()
        c.endpoints.transport = .tcp
        c.endpoints.sharedMemoryParameters = sharedMemory
        c.liveness.heartbeatIntervalMs = 100
        // These links start without `fetchInitialParameters` (single-threaded tests): no give-up on a silent learner.
        c.liveness.peerGiveUpMs = 1 << 40
        return c
    }

    func withPorts(_ c: RunConfig) -> RunConfig {
        var c = c
        let p = freePorts(4)   // random ports collided with other tests' ephemeral client ports (32768–60999)
        (c.endpoints.coordinatorPort, c.endpoints.rolloutPort, c.endpoints.paramsPort, c.endpoints.paramsRequestPort) =
            (p[0], p[1], p[2], p[3])
        return c
    }

    func ringFiles(_ runID: String) -> [String] {
        let dir = ParameterSlotRing.directory(fallback: NSTemporaryDirectory())
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter {
            ParameterSlotRing.isRingFileName($0, runID: runID)
        }
    }

    let count = 3000
    func values(_ version: Int) -> [Float] { (0..<count).map { Float($0 % 97) * 0.01 + Float(version) } }

    /// Polls `actor` until it holds `version`, publishing it every 50 ms (a PUB drops what a not yet subscribed SUB
    /// would have got) and answering direct asks; false after 10 s.
    func deliver(_ version: Int, from learner: LearnerLink, to actors: [ActorLink],
                 apply: ([Float], Int) throws -> Void) throws -> Bool {
        let until = Date().addingTimeInterval(10)
        var lastPublish = Date.distantPast
        while Date() < until {
            if Date().timeIntervalSince(lastPublish) > 0.05 {
                try learner.publish(version: version, layoutHash: 5, values: values(version))
                lastPublish = Date()
            }
            try learner.serveParameterRequests(version: version, layoutHash: 5, values: { self.values(version) })
            for a in actors { _ = try a.pollParameters(apply, timeout: .milliseconds(5)) }
            if actors.allSatisfy({ $0.version == version }) { return true }
        }
        return false
    }

    func testASameHostActorInstallsEachVersionFromTheLearnersSharedMemory() throws {
        let runID = "shm-same-host-\(getpid())"
        let c = withPorts(config(runID))
        let ctx = try ZMQContext()
        defer { ctx.shutdown() }
        let learner = try LearnerLink(context: ctx, config: c, capabilities: [], pullHighWaterMark: 4, pubHighWaterMark: 4,
                                      parameterCount: count)
        let actor = try ActorLink(context: ctx, config: c, id: 0, capabilities: [], pushHighWaterMark: 4, layoutHash: 5,
                                  parameterCount: count)
        defer { actor.close() }
        var held: [Float] = []
        let apply: ([Float], Int) throws -> Void = { v, _ in held = v }
        XCTAssertTrue(try deliver(0, from: learner, to: [actor], apply: apply))
        func descriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }
        func mappings(of name: String) -> Int {
            // Read to the end (a /proc file reports size 0; a one-shot read may stop early).
            let maps = String(decoding: FileHandle(forReadingAtPath: "/proc/self/maps")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
            return maps.split(separator: "\n").filter { $0.contains(name) }.count
        }
        var fdsAfterFirst = 0
        for version in 1...30 {
            XCTAssertTrue(try deliver(version, from: learner, to: [actor], apply: apply), "version \(version)")
            XCTAssertEqual(held, values(version), "version \(version)")
            if version == 2 { fdsAfterFirst = descriptors() }
        }
        // One mapping each for the learner and the actor, whatever the number of versions; no descriptor per version.
        let name = try XCTUnwrap(ringFiles(runID).first)
        XCTAssertEqual(mappings(of: name), 2)
        XCTAssertLessThanOrEqual(descriptors(), fdsAfterFirst + 2, "descriptors grow with versions")
        XCTAssertTrue(learner.broadcastsThroughSharedMemory)
        XCTAssertGreaterThanOrEqual(actor.sharedMemoryInstalls, 25, "broadcast \(actor.broadcastInstalls), asked \(actor.requestedInstalls)")
        XCTAssertEqual(actor.sharedMemoryRejections, [:])
        XCTAssertEqual(ringFiles(runID).count, 1)
        learner.close()
        XCTAssertEqual(ringFiles(runID), [], "the learner removes its ring when it closes")
    }

    func testAnActorThatCannotReadThisHostsMemoryTurnsTheLearnerToFullBroadcasts() throws {
        let runID = "shm-fallback-\(getpid())"
        let c = withPorts(config(runID))
        var remote = c
        remote.endpoints.sharedMemoryParameters = false   // says so in its hello, like an actor on another host
        let ctx = try ZMQContext()
        defer { ctx.shutdown() }
        let learner = try LearnerLink(context: ctx, config: c, capabilities: [], pullHighWaterMark: 4, pubHighWaterMark: 4,
                                      parameterCount: count)
        defer { learner.close() }
        let local = try ActorLink(context: ctx, config: c, id: 0, capabilities: [], pushHighWaterMark: 4, layoutHash: 5,
                                  parameterCount: count)
        defer { local.close() }
        var held: [Float] = []
        let apply: ([Float], Int) throws -> Void = { v, _ in held = v }
        XCTAssertTrue(try deliver(1, from: learner, to: [local], apply: apply))
        XCTAssertTrue(learner.broadcastsThroughSharedMemory)
        XCTAssertEqual(ringFiles(runID).count, 1)

        let other = try ActorLink(context: ctx, config: remote, id: 1, capabilities: [], pushHighWaterMark: 4, layoutHash: 5,
                                  parameterCount: count)
        defer { other.close() }
        XCTAssertTrue(try other.fetchInitialParametersOnce(learner: learner, version: 1, values: values(1), apply: apply))
        XCTAssertFalse(learner.broadcastsThroughSharedMemory, "an actor without shared memory asked")
        XCTAssertEqual(ringFiles(runID), [], "the ring is removed once it is no longer used")
        let sharedBefore = local.sharedMemoryInstalls
        for version in 2...4 {
            XCTAssertTrue(try deliver(version, from: learner, to: [local, other], apply: apply), "version \(version)")
            XCTAssertEqual(held, values(version))
        }
        XCTAssertEqual(local.sharedMemoryInstalls, sharedBefore, "full broadcasts from now on")
        XCTAssertEqual(other.sharedMemoryInstalls, 0)
        XCTAssertGreaterThan(other.broadcastInstalls, 0, "the remote actor takes the full broadcast")
    }

    /// A fake learner (PUB + ROUTER bound where the learner's are) sends notices an actor must not install: each is
    /// counted by its reason and followed by a direct ask, which the fake answers with the full parameters.
    func testHostileNoticesOnTheLearnersSocketAreNeverInstalledAndTheActorAsksInstead() throws {
        let runID = "shm-hostile-\(getpid())"
        let c = withPorts(config(runID))
        let ctx = try ZMQContext()
        defer { ctx.shutdown() }
        let pub = try ZMQSocket(ctx, .pub, linger: .zero)
        let router = try ZMQSocket(ctx, .router, linger: .zero)
        defer { pub.close(); router.close() }
        try pub.bind(c.endpoints.bind(c.endpoints.paramsPort))
        try router.bind(c.endpoints.bind(c.endpoints.paramsRequestPort))
        let actor = try ActorLink(context: ctx, config: c, id: 0, capabilities: [], pushHighWaterMark: 4, layoutHash: 5,
                                  parameterCount: count)
        defer { actor.close() }
        var fake = RoleIdentity(runID: runID, role: .learner, id: 77)
        var decoder = WireDecoder(runID: runID)
        var held: [Float] = []
        var heldVersion = -1
        let apply: ([Float], Int) throws -> Void = { v, version in held = v; heldVersion = version }

        // Version 1 the honest way (the direct ask answered), so the actor holds something and knows its learner.
        func answerAsks(version: Int, waitMs: Int = 300) throws -> Int {
            var asks = 0
            while let got = try router.receiveEnvelope(&decoder, timeout: .milliseconds(asks == 0 ? waitMs : 0)) {
                guard case .success(let e) = got.envelope, case .hello = e.payload, let route = got.prefix.first else { continue }
                asks += 1
                _ = try router.send(fake.envelope(.parameters(WireParameters(version: UInt64(version), layoutHash: 5,
                                                                             values: values(version)))),
                                    prefix: [route], timeout: .seconds(1))
            }
            return asks
        }
        let until = Date().addingTimeInterval(10)
        while actor.version < 1, Date() < until {
            _ = try actor.pollParameters(apply, timeout: .milliseconds(20))
            _ = try answerAsks(version: 1)
            _ = try actor.pollParameters(apply, timeout: .milliseconds(20))
            if actor.version < 1 { _ = try actor.catchUp(to: 1, withinMs: 1, apply) }
        }
        XCTAssertEqual(heldVersion, 1)

        let ring = try ParameterSlotRing.create(directory: ParameterSlotRing.directory(fallback: c.run.dir), runID: runID,
                                                layoutHash: 5, parameterCount: count)
        defer { ring.close() }
        let host = ParameterSlotRing.hostIdentity()!
        var nan = values(3)
        nan[17] = .nan
        let good2 = values(2).withUnsafeBufferPointer { ring.write($0, version: 2, hostIdentity: host) }
        let nan3 = nan.withUnsafeBufferPointer { ring.write($0, version: 3, hostIdentity: host) }
        func with(_ n: WireParameterNotice, _ change: (inout WireParameterNotice) -> Void) -> WireParameterNotice {
            var m = n; change(&m); return m
        }
        let other = ring.fileName.replacingOccurrences(of: "-", with: "_")
        let hostile: [(String, WireParameterNotice, ParameterSlotRing.Rejection?)] = [
            ("another host", with(good2) { $0.hostIdentity = "other-boot/\(getuid())/elsewhere" }, .otherHost),
            ("another user", with(good2) { $0.hostIdentity = host.replacingOccurrences(of: "/\(getuid())/", with: "/\(getuid() &+ 1)/") }, .otherHost),
            ("a path", with(good2) { $0.fileName = "../../etc/passwd" }, .badFileName),
            ("a name of no file", with(good2) { $0.fileName = String(ring.fileName.dropLast(32)) + String(repeating: "0", count: 32) }, .fileMissing),
            ("garbage name", with(good2) { $0.fileName = other }, .badFileName),
            ("flipped checksum", with(good2) { $0.checksum ^= 1 << 40 }, .checksumMismatch),
            ("future version", with(good2) { $0.version = 9 }, .versionMismatch),
            ("NaN in the slot", nan3, .nonFinite),
            ("wrong size", with(good2) { $0.byteLength -= 4 }, nil),     // dropped by validation, before any file access
            ("replayed version", with(good2) { $0.version = 0 }, nil),   // older than held: validation drops it
        ]
        for (what, notice, reason) in hostile {
            // Whatever is still queued from the previous case is handled first (CONFLATE: at most one broadcast).
            for _ in 0..<3 { _ = try actor.pollParameters(apply, timeout: .milliseconds(20)) }
            _ = try answerAsks(version: 1, waitMs: 20)
            let before = actor.sharedMemoryRejections
            let droppedBefore = actor.inbox.drops.total
            // Send until the actor has seen it (a counted rejection or a counted drop).
            let deadline = Date().addingTimeInterval(5)
            while actor.sharedMemoryRejections == before, actor.inbox.drops.total == droppedBefore, Date() < deadline {
                _ = try pub.send(fake.envelope(.parameterNotice(notice)), timeout: .zero)
                _ = try actor.pollParameters(apply, timeout: .milliseconds(30))
            }
            XCTAssertEqual(heldVersion, 1, "\(what): installed")
            XCTAssertEqual(held, values(1), "\(what): parameters changed")
            if let reason {
                XCTAssertEqual(actor.sharedMemoryRejections[reason, default: 0], before[reason, default: 0] + 1, what)
                XCTAssertGreaterThanOrEqual(try answerAsks(version: 1), 1, "\(what): the actor asks for the full parameters")
            } else {
                XCTAssertGreaterThan(actor.inbox.drops.total, droppedBefore, "\(what): dropped by validation")
            }
        }
        // The honest notice is installed from shared memory.
        let deadline = Date().addingTimeInterval(5)
        while actor.version < 2, Date() < deadline {
            _ = try pub.send(fake.envelope(.parameterNotice(good2)), timeout: .zero)
            _ = try actor.pollParameters(apply, timeout: .milliseconds(30))
        }
        XCTAssertEqual(heldVersion, 2)
        XCTAssertEqual(held, values(2))
        XCTAssertEqual(actor.sharedMemoryInstalls, 1)
    }

    /// The real entry point: `bonfire local` (processes over tcp://127.0.0.1) trains with actors taking versions from
    /// shared memory, and nothing of the run is left in /dev/shm afterwards.
    func testBonfireLocalTrainsThroughSharedMemoryAndLeavesNothingBehind() throws {
        let url = temporaryRunDir("shm-local")
        defer { try? FileManager.default.removeItem(at: url) }
        let runID = "shm_local_\(getpid())"
        let sets = ["run.dir=\(url.path)", "run.id=\(runID)", "learner.maxSteps=12", "learner.groupsPerStep=2",
                    "learner.checkpointEvery=0", "algorithm.sftWarmupSteps=2", "model.layers=1", "model.dim=32",
                    "sampling.groupSize=4", "sampling.maxNewTokens=8", "algorithm.trainN=2", "eval.everyVersions=0",
                    "liveness.heartbeatIntervalMs=100", "liveness.livenessCount=20", "liveness.peerGiveUpMs=20000",
                    "logging.periodSeconds=0.2", "learner.schedule=sync"]
        let (status, out) = try runBonfire(["local", "--actors", "2"] + sets.flatMap { ["--set", $0] })
        XCTAssertEqual(status, 0, String(out.suffix(3000)))
        // Each actor's last line counts how its versions came (its metrics lines may not come in so short a run).
        let counts = out.split(separator: "\n").filter { $0.contains("shutdown from coordinator") && $0.contains("versions installed") }
        XCTAssertFalse(counts.isEmpty, String(out.suffix(3000)))
        // "N from broadcasts (M through shared memory)": every broadcast install came through shared memory.
        var broadcasts = 0
        for line in counts {
            guard let r = line.range(of: #"\d+ from broadcasts \(\d+ through shared memory\)"#, options: .regularExpression) else {
                XCTFail("no counts in: \(line)"); continue
            }
            let numbers = line[r].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            XCTAssertEqual(numbers.count, 2, String(line))
            XCTAssertEqual(numbers.first, numbers.last, "every broadcast version through shared memory: \(line)")
            broadcasts += numbers.first ?? 0
        }
        XCTAssertGreaterThan(broadcasts, 0, counts.joined(separator: "\n"))
        XCTAssertFalse(out.contains("not taken from shared memory"), String(out.suffix(3000)))
        XCTAssertTrue(out.contains("same-host actors read parameters from"), String(out.suffix(2000)))
        XCTAssertEqual(ringFiles(runID), [], "the run's ring file is removed")
    }
}

extension ActorLink {
    /// The late-joiner ask answered by `learner` in the same thread: asks, lets the learner serve, takes the answer.
    func fetchInitialParametersOnce(learner: LearnerLink, version: Int, values: [Float],
                                    apply: ([Float], Int) throws -> Void) throws -> Bool {
        let until = Date().addingTimeInterval(10)
        while self.version < version, Date() < until {
            _ = try catchUp(to: version, withinMs: 1, apply)
            try learner.serveParameterRequests(version: version, layoutHash: 5, values: { values })
            _ = try pollParameters(apply, timeout: .milliseconds(20))
        }
        return self.version >= version
    }
}
