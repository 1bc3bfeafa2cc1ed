// The learner's answer to "send me the current parameters" (LearnerLink.serveParameterRequests): an actor that asked
// several times while the learner was busy gets one copy, not one per request (with a 124 M model each copy is
// 498 MB; ten queued copies took an actor to 14 GB). Two different actors each get theirs.
import BonfireCluster
import BonfireWire
import Foundation
import XCTest

final class ParameterRequestTests: XCTestCase {
    func testRepeatedRequestsFromOnePeerGetOneAnswerAndEveryPeerGetsOne() throws {
        var config = RunConfig()
        config.run.id = "param-requests"
        config.endpoints.transport = .inproc
        let base = 40_000 + Int.random(in: 0..<20_000)
        (config.endpoints.coordinatorPort, config.endpoints.rolloutPort, config.endpoints.paramsPort,
         config.endpoints.paramsRequestPort) = (base, base + 1, base + 2, base + 3)
        let ctx = try ZMQContext()
        defer { ctx.shutdown() }
        let link = try LearnerLink(context: ctx, config: config, capabilities: [], pullHighWaterMark: 4, pubHighWaterMark: 4,
                                   parameterCount: 8)
        defer { link.close() }
        var peers: [ZMQSocket] = []
        defer { peers.forEach { $0.close() } }
        for (k, asks) in [5, 1].enumerated() {
            let dealer = try ZMQSocket(ctx, .dealer, linger: .zero)
            peers.append(dealer)
            try dealer.connect(config.endpoints.connect(config.endpoints.paramsRequestPort))
            var identity = RoleIdentity(runID: config.run.id, role: .actor, id: UInt32(k))
            for _ in 0..<asks {
                let hello = WireHello(role: .actor, id: UInt32(k), host: "test", pid: 1)
                XCTAssertTrue(try dealer.send(identity.envelope(.hello(hello)), timeout: .seconds(2)))
            }
        }
        Thread.sleep(forTimeInterval: 0.2)   // all six requests queued at the learner's ROUTER
        try link.serveParameterRequests(version: 3, layoutHash: 7, values: { [1, 2, 3] })
        for (k, dealer) in peers.enumerated() {
            var decoder = WireDecoder(runID: config.run.id)
            var answers = 0
            while let got = try dealer.receiveEnvelope(&decoder, timeout: .milliseconds(300)) {
                if case .success(let env) = got.envelope, case .parameters(let p) = env.payload {
                    XCTAssertEqual(p.values, [1, 2, 3])
                    XCTAssertEqual(p.version, 3)
                    answers += 1
                }
            }
            XCTAssertEqual(answers, 1, "peer \(k) gets exactly one copy of the parameters")
        }
    }
}
