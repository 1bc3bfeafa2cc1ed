// The same-host parameter notice (ParameterNotice+Wire.swift): it round-trips, only the learner may send it to an
// actor, and its version, size, layout and strings pass the same checks as a full parameter broadcast — a replayed,
// out-of-range, wrong-size or wrong-layout notice is dropped before any shared memory is touched.
import BonfireWire
import XCTest

final class ParameterNoticeTests: XCTestCase {
    let good = WireParameterNotice(version: 12, layoutHash: 77, byteLength: 400, slot: 1, checksum: 0xFEED,
                                   fileName: "bonfire-params-r-1-" + String(repeating: "a", count: 32), hostIdentity: "b/1000/h")

    var actor: ValidationContext {
        var c = ValidationContext(receiver: .actor, runID: "r")
        c.parameterCount = 100
        c.layoutHash = 77
        c.currentVersion = 10
        return c
    }

    func testRoundTripsAloneAndInAnEnvelope() throws {
        XCTAssertEqual(try WireParameterNotice(wire: good.encoded()), good)
        let env = WireEnvelope(runID: "r", senderRole: .learner, senderID: 9, sequence: 1, payload: .parameterNotice(good))
        var decoder = WireDecoder(runID: "r")
        XCTAssertEqual(try decoder.accept(env.encoded()).get(), env)
        XCTAssertLessThan(env.encoded().count, 200, "a notice is small whatever the model size")
    }

    func testAWellFormedNoticeIsValidAndOnlyTheLearnerMaySendIt() {
        XCTAssertEqual(actor.validate(good), .valid)
        var same = good
        same.version = 10
        XCTAssertEqual(actor.validate(same), .valid, "the held version again is valid (skipped by the caller)")
        XCTAssertEqual(WireMessageKind.parameterNotice.allowedSenders(to: .actor), [.learner])
        for role in [WireRole.coordinator, .actor, .tool] {
            let env = WireEnvelope(runID: "r", senderRole: role, senderID: 1, sequence: 1, payload: .parameterNotice(good))
            XCTAssertEqual(actor.validate(env).reason, .senderRoleNotAllowed, "\(role)")
        }
        XCTAssertEqual(WireMessageKind.parameterNotice.allowedSenders(to: .learner), [])
    }

    func testHostileNoticesAreDroppedWithTheReasonOfTheFullBroadcast() {
        func reason(_ change: (inout WireParameterNotice) -> Void) -> DropReason? {
            var n = good
            change(&n)
            return actor.validate(n).reason
        }
        XCTAssertEqual(reason { $0.version = 9 }, .versionReplayed)
        XCTAssertEqual(reason { $0.version = .max }, .versionOutOfRange)
        XCTAssertEqual(reason { $0.version = UInt64(Int64.max) + 1 }, .versionOutOfRange)
        XCTAssertEqual(reason { $0.byteLength = 396 }, .parameterCountMismatch)
        XCTAssertEqual(reason { $0.byteLength = .max }, .parameterCountMismatch)
        XCTAssertEqual(reason { $0.layoutHash = 78 }, .layoutMismatch)
        XCTAssertNotNil(reason { $0.fileName = String(repeating: "x", count: 10_000) })
        XCTAssertNotNil(reason { $0.hostIdentity = String(repeating: "x", count: 10_000) })
    }
}
