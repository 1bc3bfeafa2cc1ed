// Hostile BoN groups at the learner's door (BoNGroup.validated, what BoNPolicyLearner.accept runs): every one is
// rejected with a reason, none traps, and a valid group passes.
import BonfireAlgorithms
import BonfireCluster
import BonfireWire
import XCTest

final class RolloutValidationTests: XCTestCase {
    func group(_ edit: (inout WireBoNGroup) -> Void = { _ in }) -> WireBoNGroup {
        var g = WireBoNGroup(itemID: 7, promptTokens: [5, 6, 7], behaviourVersion: 3, temperature: 1,
                             responses: (0..<8).map { _ in WireBoNResponse(tokens: [10, 11, 2], tokenLogProbs: [-0.5, -1, -0.1],
                                                                           verifierScore: 1, reward: 1) })
        edit(&g)
        return g
    }

    func testHostileGroupsAreRejectedWithAReasonAndAValidOnePasses() throws {
        let c = try RunConfig.load(sets: [])
        guard case .success(let ok) = BoNGroup.validated(group(), config: c) else { return XCTFail("a valid group was rejected") }
        XCTAssertEqual(ok.itemIndex, 7)
        XCTAssertEqual(ok.behaviourVersion, 3)
        let cases: [(String, WireBoNGroup)] = [
            ("version_out_of_range", group { $0.behaviourVersion = .max }),
            ("version_out_of_range", group { $0.behaviourVersion = UInt64(Int32.max) + 1 }),
            ("item_out_of_range", group { $0.itemID = .max }),
            ("group_size", group { $0.responses = [] }),
            ("group_size", group { $0.responses += $0.responses }),
            ("token_out_of_vocabulary", group { $0.promptTokens = [5, 64] }),
            ("token_out_of_vocabulary", group { $0.promptTokens = [-1] }),
            ("token_out_of_vocabulary", group { $0.promptTokens = [] }),
            ("bad_response", group { $0.responses[3].tokens = [] }),
            ("bad_response", group { $0.responses[3].tokens = [Int.max] }),
            ("bad_response", group { $0.responses[3].tokens = [Int](repeating: 1, count: 25) }),
            ("over_context", group { $0.promptTokens = [Int](repeating: 5, count: 61) }),
            ("bad_log_prob", group { $0.responses[0].tokenLogProbs = [.nan, -1, -1] }),
            ("bad_log_prob", group { $0.responses[0].tokenLogProbs = [0.5, -1, -1] }),
            ("bad_log_prob", group { $0.responses[0].tokenLogProbs = [-1] }),
            ("bad_reward", group { $0.responses[0].reward = .infinity }),
            ("bad_reward", group { $0.responses[0].reward = 1e30 }),
            ("bad_reward", group { $0.responses[0].verifierScore = -.nan }),
        ]
        for (reason, g) in cases {
            switch BoNGroup.validated(g, config: c) {
            case .success: XCTFail("accepted a hostile group (\(reason))")
            case .failure(let r): XCTAssertEqual(r.reason, reason, r.detail)
            }
        }
    }

    func testTheLearnerCountsAWrongTaskAndAnEmptyMessage() throws {
        let learner = try BoNPolicyLearner(config: RunConfig.load(sets: ["algorithm.sftWarmupSteps=0"]))
        if case .invalid(let reason, _) = learner.accept(.bonGroups(WireBoNGroupBatch(task: "code", groups: [group()]))) {
            XCTAssertEqual(reason, "wrong_task")
        } else { XCTFail("a group of another task was accepted") }
        if case .invalid(let reason, _) = learner.accept(.bonGroups(WireBoNGroupBatch(task: "math", groups: []))) {
            XCTAssertEqual(reason, "empty")
        } else { XCTFail("an empty message was accepted") }
        if case .units(let u) = learner.accept(.bonGroups(WireBoNGroupBatch(task: "math", groups: [group()]))) {
            XCTAssertEqual(u.count, 1)
        } else { XCTFail("a valid message was rejected") }
    }
}
