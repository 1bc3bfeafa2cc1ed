// Transport tests over inproc:// and tcp://127.0.0.1 (ports chosen by the OS via tcp://127.0.0.1:*), with unique
// endpoint names: PUSH/PULL envelopes, PUB/SUB, ROUTER/DEALER, receive deadlines, HWM would-block, shutdown.
import BonfireWire
import Foundation
import XCTest

private func uniqueInproc(_ name: String) -> String { "inproc://\(name)-\(UUID().uuidString)" }

final class ZMQTransportTests: XCTestCase {
    func testPushPullEnvelopesOverInproc() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull)
        let endpoint = uniqueInproc("pushpull")
        try pull.bind(endpoint)
        let push = try ZMQSocket(ctx, .push)
        try push.connect(endpoint)
        var decoder = WireDecoder(runID: Samples.runID)
        for (i, payload) in Samples.payloads.enumerated() {
            XCTAssertTrue(try push.send(Samples.envelope(payload, sequence: UInt64(i + 1)), timeout: .seconds(5)))
        }
        for (i, payload) in Samples.payloads.enumerated() {
            let got = try XCTUnwrap(pull.receiveEnvelope(&decoder, timeout: .seconds(5)), "message \(i) missing")
            XCTAssertEqual(got.prefix, [])
            XCTAssertEqual(try got.envelope.get(), Samples.envelope(payload, sequence: UInt64(i + 1)))
        }
        XCTAssertEqual(decoder.accepted, Samples.payloads.count)
    }

    func testPushPullOverTCPLoopbackWithOSChosenPortAndBigParameters() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull)
        try pull.bind("tcp://127.0.0.1:*")
        let endpoint = try pull.lastEndpoint()
        XCTAssertTrue(endpoint.hasPrefix("tcp://127.0.0.1:"), endpoint)
        XCTAssertFalse(endpoint.hasSuffix(":*"), endpoint)
        let push = try ZMQSocket(ctx, .push)
        try push.connect(endpoint)
        let params = WireParameters(version: 3, layoutHash: 42, values: (0..<1_000_000).map { Float($0) })
        XCTAssertTrue(try push.send(Samples.envelope(.parameters(params)), timeout: .seconds(10)))
        var decoder = WireDecoder(runID: Samples.runID)
        let got = try XCTUnwrap(pull.receiveEnvelope(&decoder, timeout: .seconds(10)))
        guard case .parameters(let p) = try got.envelope.get().payload else { return XCTFail("not parameters") }
        XCTAssertEqual(p, params)
        // Plain byte frames (multipart) as well.
        XCTAssertTrue(try push.send([[1, 2], [], [3]], timeout: .seconds(5)))
        XCTAssertEqual(try pull.receive(timeout: .seconds(5)), [[1, 2], [], [3]])
    }

    func testMaxMessageSizeMakesLibzmqDropOversizedFramesWhileSmallOnesStillArrive() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull)
        try pull.limitIncoming(to: WireLimits(maxMessageBytes: 64 << 10))
        try pull.bind("tcp://127.0.0.1:*")
        let push = try ZMQSocket(ctx, .push)
        try push.set(.reconnectInterval(.milliseconds(20)))
        try push.connect(try pull.lastEndpoint())
        let big = WireParameters(version: 1, layoutHash: 1, values: [Float](repeating: 1, count: 100_000))  // 400 KB
        XCTAssertTrue(try push.send(Samples.envelope(.parameters(big)), timeout: .seconds(5)))
        var decoder = WireDecoder(runID: Samples.runID)
        var gotSmall = false
        let deadline = ContinuousClock.now + .seconds(20)
        var seq: UInt64 = 1
        while !gotSmall && ContinuousClock.now < deadline {
            seq += 1
            _ = try push.send(Samples.envelope(.heartbeat(WireHeartbeat(policyVersion: 1, unixTimeMs: 0)), sequence: seq),
                              timeout: .milliseconds(100))
            while let got = try pull.receiveEnvelope(&decoder, timeout: .milliseconds(50)) {
                let env = try got.envelope.get()
                if case .parameters = env.payload { XCTFail("the oversized frame must never be delivered") }
                if case .heartbeat = env.payload { gotSmall = true }
            }
        }
        XCTAssertTrue(gotSmall, "small frames still arrive after the oversized sender was disconnected")
    }

    func testPubSubDeliversOnlySubscribedPrefixes() throws {
        let ctx = try ZMQContext()
        let pub = try ZMQSocket(ctx, .pub)
        let endpoint = uniqueInproc("pubsub")
        try pub.bind(endpoint)
        let sub = try ZMQSocket(ctx, .sub)
        try sub.set(.subscribe(Array("params".utf8)))
        try sub.connect(endpoint)
        // Slow joiner: keep publishing a probe until the subscription has propagated.
        var joined = false
        for _ in 0..<200 where !joined {
            _ = try pub.send([Array("params".utf8), [0]], timeout: .zero)
            joined = try sub.receive(timeout: .milliseconds(10)) != nil
        }
        XCTAssertTrue(joined, "subscription never propagated")
        while try sub.receive(timeout: .zero) != nil {}  // drain extra probes
        XCTAssertTrue(try pub.send([Array("other".utf8), [9]], timeout: .zero))
        XCTAssertTrue(try pub.send([Array("params".utf8), [7]], timeout: .zero))
        XCTAssertEqual(try sub.receive(timeout: .seconds(5)), [Array("params".utf8), [7]])
        XCTAssertNil(try sub.receive(timeout: .milliseconds(50)))
    }

    func testRouterDealerRepliesReachTheRightPeer() throws {
        let ctx = try ZMQContext()
        let router = try ZMQSocket(ctx, .router)
        try router.set(.routerMandatory(true))
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try router.lastEndpoint()
        var dealers: [ZMQSocket] = []
        for id in 0..<2 {
            let d = try ZMQSocket(ctx, .dealer)
            try d.set(.routingID(Array("actor-\(id)".utf8)))
            try d.connect(endpoint)
            dealers.append(d)
        }
        var inbox = WireDecoder(runID: Samples.runID)
        for (id, d) in dealers.enumerated() {
            let hello = WireHello(role: .actor, id: UInt32(id), host: "127.0.0.1", pid: 1)
            XCTAssertTrue(try d.send(Samples.envelope(.hello(hello)), timeout: .seconds(5)))
        }
        for _ in 0..<2 {
            let got = try XCTUnwrap(router.receiveEnvelope(&inbox, timeout: .seconds(5)))
            guard case .hello(let h) = try got.envelope.get().payload else { return XCTFail("not hello") }
            XCTAssertEqual(got.prefix, [Array("actor-\(h.id)".utf8)])
            let ack = WireHelloAck(accepted: true, currentVersion: UInt64(h.id) + 10, heartbeatIntervalMs: 100,
                                   liveness: 3)
            XCTAssertTrue(try router.send(Samples.envelope(.helloAck(ack)), prefix: got.prefix, timeout: .seconds(5)))
        }
        for (id, d) in dealers.enumerated() {
            var decoder = WireDecoder(runID: Samples.runID)
            let got = try XCTUnwrap(d.receiveEnvelope(&decoder, timeout: .seconds(5)))
            guard case .helloAck(let ack) = try got.envelope.get().payload else { return XCTFail("not ack") }
            XCTAssertEqual(ack.currentVersion, UInt64(id) + 10)
        }
        // ROUTER_MANDATORY: a reply to an unknown peer is an error, not a silent drop.
        XCTAssertThrowsError(try router.send([Array("nobody".utf8), [1]], timeout: .zero))
    }

    func testReceiveDeadlineExpiresAndReturnsNil() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull)
        try pull.bind(uniqueInproc("deadline"))
        let start = ContinuousClock.now
        XCTAssertNil(try pull.receive(timeout: .milliseconds(100)))
        let waited = ContinuousClock.now - start
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(95))
        XCTAssertLessThan(waited, .seconds(2))
        XCTAssertNil(try pull.receive(timeout: .zero))
        var decoder = WireDecoder(runID: nil)
        XCTAssertNil(try pull.receiveEnvelope(&decoder, timeout: .milliseconds(10)))
        // RCVTIMEO on a blocking receive also ends in nil.
        try pull.set(.receiveTimeout(.milliseconds(20)))
        XCTAssertNil(try pull.receive())
    }

    func testHighWaterMarkMakesNonBlockingSendReportWouldBlock() throws {
        let ctx = try ZMQContext()
        let push = try ZMQSocket(ctx, .push, linger: .zero)
        try push.set(.sendHighWaterMark(4))
        // No peer yet: PUSH has nowhere to queue, so a non-blocking send would block, and a deadline send times out.
        XCTAssertFalse(try push.trySend([[1]]))
        let start = ContinuousClock.now
        XCTAssertFalse(try push.send([[1]], timeout: .milliseconds(50)))
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(45))

        let endpoint = uniqueInproc("hwm")
        let pull = try ZMQSocket(ctx, .pull)
        try pull.set(.receiveHighWaterMark(4))
        try pull.bind(endpoint)
        try push.connect(endpoint)
        var sent = 0, blocked = 0
        for _ in 0..<100 { if try push.trySend([[UInt8](repeating: 1, count: 100)]) { sent += 1 } else { blocked += 1 } }
        XCTAssertGreaterThan(sent, 0)
        XCTAssertLessThanOrEqual(sent, 16, "inproc queue is bounded by SNDHWM + RCVHWM")
        XCTAssertGreaterThan(blocked, 0, "backpressure must show up as would-block")
        // Draining frees room again.
        var drained = 0
        while try pull.receive(timeout: .milliseconds(20)) != nil { drained += 1 }
        XCTAssertEqual(drained, sent)
        XCTAssertTrue(try push.trySend([[2]]))
    }

    func testContextShutdownEndsBlockingReceiveWithShutdownError() throws {
        let ctx = try ZMQContext()
        let pull = try ZMQSocket(ctx, .pull)
        try pull.bind(uniqueInproc("shutdown"))
        let shutdownAt = ContinuousClock.now
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { ctx.shutdown() }
        do {
            _ = try pull.receive()
            XCTFail("receive returned after shutdown")
        } catch {
            XCTAssertTrue(error.isShutdown, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - shutdownAt, .seconds(2))
        pull.close()
    }

    func testErrorsNameTheCallAndErrnoText() throws {
        let ctx = try ZMQContext()
        let s = try ZMQSocket(ctx, .pull)
        do {
            try s.bind("nonsense://x")
            XCTFail("bind accepted a bad endpoint")
        } catch {
            XCTAssertTrue(error.call.contains("zmq_bind(nonsense://x)"), error.call)
            XCTAssertFalse(error.message.isEmpty)
            XCTAssertFalse(error.isShutdown)
        }
    }
}
