// CURVE on real sockets over tcp://127.0.0.1 (OS-chosen ports): who gets in and who does not. Attackers run in their
// own ZeroMQ context, as another process would: a peer without keys, with an unknown key, with the right client key
// but the wrong server key, and an actor key posing as the learner or the coordinator. The first three never get a
// message through (handshake fails) and are counted; the impostor's messages arrive labelled with its true role, so
// the role check rejects them. A passive subscriber without the key receives no parameters.
import BonfireWire
import Foundation
import XCTest

private final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func add(_ s: String) { lock.withLock { lines.append(s) } }
    var all: [String] { lock.withLock { lines } }
}

private struct Deployment {
    let dir: URL
    let context: ZMQContext
    let auth: ZAPAuthenticator
    let logs: LogLines
    let credentials: [CurveClientRole: CurveCredentials]
    var server: CurveKeyPair { credentials[.learner]!.server! }
    var serverPublicKey: String { server.publicKey }

    static func make() throws -> Deployment {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bonfire-curve-\(UUID().uuidString)")
        try CurveKeyDirectory.generate(at: dir)
        var creds: [CurveClientRole: CurveCredentials] = [:]
        for role in CurveClientRole.allCases { creds[role] = try CurveCredentials.load(dir: dir, role: role) }
        let ctx = try ZMQContext()
        let logs = LogLines()
        let auth = try ZAPAuthenticator.start(context: ctx, allow: creds[.learner]!.allow!, logInterval: .zero,
                                              log: { logs.add($0) })
        return Deployment(dir: dir, context: ctx, auth: auth, logs: logs, credentials: creds)
    }

    /// A CURVE server socket of `type` bound on 127.0.0.1 (port chosen by the OS); returns it and its endpoint.
    func serverSocket(_ type: ZMQSocketType) throws -> (ZMQSocket, String) {
        let s = try ZMQSocket(context, type, linger: .zero)
        try s.configureCurveServer(keys: server, authenticator: auth)
        try s.bind("tcp://127.0.0.1:*")
        return (s, try s.lastEndpoint())
    }

    func cleanup() {
        auth.stop()
        try? FileManager.default.removeItem(at: dir)
    }
}

/// How a client presents itself.
private enum Peer {
    case role(CurveClientRole)      // an allow-listed key
    case noKeys                     // plain ZeroMQ (NULL mechanism)
    case unknownKey                 // a valid CURVE key pair that is not on the allow list
    case wrongServerKey             // the actor's key, but pinning another server's public key
}

private func client(_ d: Deployment, _ ctx: ZMQContext, _ type: ZMQSocketType, _ peer: Peer, _ endpoint: String) throws -> ZMQSocket {
    let s = try ZMQSocket(ctx, type, linger: .zero)
    switch peer {
    case .role(let r): try s.configureCurveClient(serverPublicKey: d.serverPublicKey, keys: d.credentials[r]!.client)
    case .noKeys: break
    case .unknownKey: try s.configureCurveClient(serverPublicKey: d.serverPublicKey, keys: try CurveKeyPair.generate())
    case .wrongServerKey:
        try s.configureCurveClient(serverPublicKey: try CurveKeyPair.generate().publicKey, keys: d.credentials[.actor]!.client)
    }
    if type == .sub { try s.set(.subscribe([])) }
    try s.connect(endpoint)
    return s
}

private func envelope(_ payload: WirePayload, as role: WireRole, sequence: UInt64 = 1) -> WireEnvelope {
    WireEnvelope(runID: Samples.runID, senderRole: role, senderID: 0, sequence: sequence, payload: payload)
}

/// Waits (up to 10 s) until `condition` holds.
private func eventually(_ what: String, _ condition: () -> Bool) {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.02) }
    XCTAssertTrue(condition(), "timed out waiting for: \(what)")
}

final class CurveTransportTests: XCTestCase {
    func testAllowListedActorPushesAndItsMessagesCarryTheActorRole() throws {
        let d = try Deployment.make()
        defer { d.cleanup() }
        let (pull, endpoint) = try d.serverSocket(.pull)
        XCTAssertTrue(pull.usesCurve)
        let actorContext = try ZMQContext()
        let push = try client(d, actorContext, .push, .role(.actor), endpoint)
        XCTAssertTrue(push.usesCurve)
        let sent = envelope(.bonGroups(Samples.bonBatch()), as: .actor)
        XCTAssertTrue(try push.send(sent, timeout: .seconds(5)))
        var decoder = WireDecoder(runID: Samples.runID)
        let got = try XCTUnwrap(pull.receiveEnvelope(&decoder, timeout: .seconds(5)))
        XCTAssertEqual(try got.envelope.get(), sent)
        XCTAssertEqual(got.authenticatedUserId, "actor")
        XCTAssertEqual(pull.lastReceivedUserId, "actor")
        XCTAssertTrue(got.senderIsAuthenticated(requireCurve: true))
        XCTAssertEqual(d.auth.counters.acceptedByRole, ["actor": 1])
        XCTAssertEqual(d.auth.counters.rejected, 0)
        // Plain frames carry it too.
        XCTAssertTrue(try push.send([[1, 2, 3]], timeout: .seconds(5)))
        XCTAssertEqual(try pull.receive(timeout: .seconds(5)), [[1, 2, 3]])
        XCTAssertEqual(pull.lastReceivedUserId, "actor")
    }

    func testPeersWithoutKeyWithUnknownKeyOrWrongServerKeyCannotPushRolloutsAndAreCounted() throws {
        let d = try Deployment.make()
        defer { d.cleanup() }
        let (pull, endpoint) = try d.serverSocket(.pull)
        var decoder = WireDecoder(runID: Samples.runID)
        let forged = envelope(.bonGroups(Samples.bonBatch()), as: .actor)

        // No keys: the NULL mechanism meets a CURVE server; the handshake fails before ZAP is asked.
        let c1 = try ZMQContext()
        let keyless = try client(d, c1, .push, .noKeys, endpoint)
        _ = try keyless.send(forged, timeout: .milliseconds(200))
        eventually("keyless handshake failure counted") { d.auth.counters.handshakeFailures >= 1 }
        XCTAssertNil(try pull.receiveEnvelope(&decoder, timeout: .milliseconds(500)), "a keyless peer got a rollout in")
        keyless.close()

        // A valid CURVE key that is not on the allow list: ZAP says 400.
        let c2 = try ZMQContext()
        let stranger = try client(d, c2, .push, .unknownKey, endpoint)
        _ = try stranger.send(forged, timeout: .milliseconds(200))
        eventually("unknown key rejected by ZAP") { d.auth.counters.rejectedUnknownKey >= 1 }
        XCTAssertEqual(d.auth.counters.lastRejectedAddress, "127.0.0.1")
        XCTAssertNil(try pull.receiveEnvelope(&decoder, timeout: .milliseconds(500)), "an unknown key got a rollout in")
        stranger.close()

        // The actor's own key but another server pinned: the server cannot decrypt the hello.
        let before = d.auth.counters.handshakeFailures
        let c3 = try ZMQContext()
        let misled = try client(d, c3, .push, .wrongServerKey, endpoint)
        _ = try misled.send(forged, timeout: .milliseconds(200))
        eventually("wrong server key handshake failure counted") { d.auth.counters.handshakeFailures > before }
        XCTAssertNil(try pull.receiveEnvelope(&decoder, timeout: .milliseconds(500)))
        misled.close()

        XCTAssertEqual(decoder.accepted, 0)
        XCTAssertEqual(d.auth.counters.accepted, 0)
        XCTAssertGreaterThanOrEqual(d.auth.counters.rejected, 3)
        let logs = d.logs.all
        XCTAssertTrue(logs.contains { $0.contains("not on the allow list") && $0.contains("127.0.0.1") }, "\(logs)")
        XCTAssertTrue(logs.contains { $0.contains("failed CURVE handshake") }, "\(logs)")
        for line in logs {
            for c in d.credentials.values {
                XCTAssertFalse(line.contains(c.client.secretKey), "a secret key was logged: \(line)")
            }
            XCTAssertFalse(line.contains(d.server.secretKey), "the server secret key was logged: \(line)")
        }
    }

    func testHostilePeersCannotRegisterRequestEvaluationsOrSendMetricsToTheCoordinator() throws {
        let d = try Deployment.make()
        defer { d.cleanup() }
        let (router, endpoint) = try d.serverSocket(.router)
        var decoder = WireDecoder(runID: Samples.runID)
        let messages: [WirePayload] = [
            .hello(WireHello(role: .learner, id: 0, host: "evil", pid: 1)),
            .evalRequest(WireEvalRequest(requestID: 1, version: 1, task: "math", split: "test", nList: [1],
                                         temperatures: [1], numPrompts: 1)),
            .metrics(WireMetrics(step: 1, version: 1, values: ["loss/policy": 0])),
        ]
        var dealers: [ZMQSocket] = []  // kept open until the end: a closed socket stops reconnecting
        for peer in [Peer.noKeys, .unknownKey, .wrongServerKey] {
            let dealer = try client(d, try ZMQContext(), .dealer, peer, endpoint)
            dealers.append(dealer)
            for m in messages { _ = try dealer.send(envelope(m, as: .learner), timeout: .milliseconds(100)) }
        }
        eventually("three rejected peers") {
            let c = d.auth.counters
            return c.rejectedUnknownKey >= 1 && c.handshakeFailures >= 2
        }
        XCTAssertNil(try router.receiveEnvelope(&decoder, timeout: .seconds(1)), "a hostile peer reached the coordinator")
        XCTAssertEqual(d.auth.counters.accepted, 0)
        withExtendedLifetime(dealers) {}
    }

    func testAnActorKeyPosingAsLearnerOrCoordinatorArrivesLabelledActorAndFailsTheRoleCheck() throws {
        let d = try Deployment.make()
        defer { d.cleanup() }
        let (router, endpoint) = try d.serverSocket(.router)
        let (pull, rolloutEndpoint) = try d.serverSocket(.pull)
        let ctx = try ZMQContext()
        let impostor = try client(d, ctx, .dealer, .role(.actor), endpoint)
        let learner = try client(d, ctx, .dealer, .role(.learner), endpoint)
        var decoder = WireDecoder(runID: Samples.runID)
        var seq: UInt64 = 0
        for payload in Samples.payloads {
            for claimed in [WireRole.learner, .coordinator, .tool, .unspecified] {
                seq += 1
                XCTAssertTrue(try impostor.send(envelope(payload, as: claimed, sequence: seq), timeout: .seconds(5)))
                let got = try XCTUnwrap(router.receiveEnvelope(&decoder, timeout: .seconds(5)), "\(payload.kind)")
                XCTAssertEqual(got.authenticatedUserId, "actor")
                XCTAssertEqual(try got.envelope.get().senderRole, claimed)
                XCTAssertFalse(got.senderIsAuthenticated(requireCurve: true),
                               "an actor key passed as \(claimed) sending \(payload.kind)")
            }
        }
        // The genuine learner passes as learner, and not as anything else.
        XCTAssertTrue(try learner.send(envelope(.metrics(WireMetrics(step: 1, version: 1, values: [:])), as: .learner),
                                       timeout: .seconds(5)))
        let real = try XCTUnwrap(router.receiveEnvelope(&decoder, timeout: .seconds(5)))
        XCTAssertEqual(real.authenticatedUserId, "learner")
        XCTAssertTrue(real.senderIsAuthenticated(requireCurve: true))
        XCTAssertFalse(real.isAuthenticated(as: .coordinator, requireCurve: true))
        XCTAssertFalse(real.isAuthenticated(as: .actor, requireCurve: true))
        // A learner key pushing "actor" rollouts is caught the same way.
        let learnerPush = try client(d, ctx, .push, .role(.learner), rolloutEndpoint)
        XCTAssertTrue(try learnerPush.send(envelope(.bonGroups(Samples.bonBatch()), as: .actor), timeout: .seconds(5)))
        let pushed = try XCTUnwrap(pull.receiveEnvelope(&decoder, timeout: .seconds(5)))
        XCTAssertEqual(pushed.authenticatedUserId, "learner")
        XCTAssertFalse(pushed.senderIsAuthenticated(requireCurve: true))
        XCTAssertEqual(d.auth.counters.acceptedByRole["actor"], 1)
    }

    func testAPassiveSubscriberWithoutTheKeyReceivesNoParameters() throws {
        let d = try Deployment.make()
        defer { d.cleanup() }
        let (pub, endpoint) = try d.serverSocket(.pub)
        let ctx = try ZMQContext()
        let actor = try client(d, ctx, .sub, .role(.actor), endpoint)
        let eavesdropper = try client(d, try ZMQContext(), .sub, .noKeys, endpoint)
        let stranger = try client(d, try ZMQContext(), .sub, .unknownKey, endpoint)
        let params = envelope(.parameters(WireParameters(version: 7, layoutHash: 99, values: (0..<4096).map { Float($0) })),
                              as: .learner)
        var decoder = WireDecoder(runID: Samples.runID)
        var got: ZMQReceived?
        for _ in 0..<500 where got == nil {  // slow joiner: publish until the keyed subscriber is in
            _ = try pub.send(params, timeout: .zero)
            got = try actor.receiveEnvelope(&decoder, timeout: .milliseconds(20))
        }
        XCTAssertEqual(try XCTUnwrap(got, "the keyed subscriber never received parameters").envelope.get(), params)
        for _ in 0..<20 { _ = try pub.send(params, timeout: .zero) }
        var other = WireDecoder(runID: nil)
        XCTAssertNil(try eavesdropper.receive(timeout: .milliseconds(500)), "a keyless subscriber received parameters")
        XCTAssertNil(try stranger.receiveEnvelope(&other, timeout: .milliseconds(200)), "an unknown key received parameters")
        eventually("both subscribers counted") {
            d.auth.counters.handshakeFailures >= 1 && d.auth.counters.rejectedUnknownKey >= 1
        }
    }

    func testHandlerAnswersHostileZAPRequestsAndOneHandlerPerContext() throws {
        let d = try Deployment.make()
        defer { d.cleanup() }
        func t(_ s: String) -> [UInt8] { Array(s.utf8) }
        let actorKey = Curve.decode(d.credentials[.actor]!.client.publicKey)!
        let ok = [t("1.0"), t("7"), t("bonfire"), t("10.0.0.9"), [], t("CURVE"), actorKey]
        XCTAssertEqual(d.auth.reply(to: ok), [t("1.0"), t("7"), t("200"), t("OK"), t("actor"), []])
        let hostile: [([[UInt8]], String)] = [
            ([], "500"), ([t("1.0")], "500"), ([t("2.0"), t("7"), t("bonfire"), t("a"), [], t("CURVE"), actorKey], "500"),
            ([t("1.0"), t("7"), t("bonfire"), t("a"), [], t("NULL")], "400"),
            ([t("1.0"), t("7"), t("bonfire"), t("a"), [], t("PLAIN"), t("admin"), t("pw")], "400"),
            ([t("1.0"), t("7"), t("bonfire"), t("a"), [], t("CURVE"), Array(actorKey.prefix(31))], "500"),
            ([t("1.0"), t("7"), t("bonfire"), t("a"), [], t("CURVE"), actorKey + [0]], "500"),
            ([t("1.0"), t("7"), t("other-domain"), t("a"), [], t("CURVE"), actorKey], "400"),
            ([t("1.0"), t("7"), t("bonfire"), [UInt8](repeating: 0xFF, count: 100_000), [], t("CURVE"), [UInt8](repeating: 0, count: 32)], "400"),
        ]
        for (frames, code) in hostile {
            let r = d.auth.reply(to: frames)
            XCTAssertEqual(r.count, 6)
            XCTAssertEqual(r[2], t(code), "\(frames.map(\.count))")
            XCTAssertEqual(r[4], [], "a refused request must carry no user id")
        }
        // The same over the real inproc endpoint, from a REQ socket.
        let req = try ZMQSocket(d.context, .req, linger: .zero)
        try req.connect(ZAPAuthenticator.endpoint)
        XCTAssertTrue(try req.send([t("garbage")], timeout: .seconds(5)))
        XCTAssertEqual(try req.receive(timeout: .seconds(5))?[2], t("500"))
        XCTAssertGreaterThanOrEqual(d.auth.counters.malformedRequests, 6)  // 5 above + the REQ's garbage
        XCTAssertGreaterThanOrEqual(d.auth.counters.rejectedMechanism, 2)

        XCTAssertThrowsError(try ZAPAuthenticator.start(context: d.context, allow: CurveAllowList())) {
            XCTAssertTrue("\($0)".contains("already has a ZAP handler"), "\($0)")
        }
        XCTAssertTrue(d.auth.isRunning)
        d.auth.stop()
        d.auth.stop()
        XCTAssertFalse(d.auth.isRunning)
    }

    func testWithoutCurveThereIsNoUserIdAndCurveCanBeRequired() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull, linger: .zero)
        try pull.bind("tcp://127.0.0.1:*")
        XCTAssertFalse(pull.usesCurve)
        let push = try ZMQSocket(ctx, .push, linger: .zero)
        try push.connect(try pull.lastEndpoint())
        XCTAssertTrue(try push.send(envelope(.heartbeat(WireHeartbeat(policyVersion: 1, unixTimeMs: 1, state: "x")), as: .actor),
                                    timeout: .seconds(5)))
        var decoder = WireDecoder(runID: Samples.runID)
        let got = try XCTUnwrap(pull.receiveEnvelope(&decoder, timeout: .seconds(5)))
        XCTAssertNil(got.authenticatedUserId)
        XCTAssertTrue(got.senderIsAuthenticated(requireCurve: false))
        XCTAssertFalse(got.senderIsAuthenticated(requireCurve: true))
    }
}
