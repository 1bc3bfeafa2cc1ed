import XCTest
import BonfireMath

final class UpdateGuardTests: XCTestCase {
    func testNonFiniteLossOrGradientSkipsTheUpdateAndCountsTheReason() {
        var g = UpdateGuard()
        XCTAssertTrue(g.allowStep(loss: 1.5, gradients: [0.1, -0.2, 3]))
        XCTAssertEqual(g.lastGradientNorm!, (0.01 + 0.04 + 9 as Float).squareRoot(), accuracy: 1e-5)
        XCTAssertFalse(g.allowStep(loss: .nan, gradients: [0]))
        XCTAssertFalse(g.allowStep(loss: .infinity, gradients: [0]))
        XCTAssertFalse(g.allowStep(loss: 1, gradients: [0, .nan, 0]))
        XCTAssertFalse(g.allowStep(loss: 1, gradients: [-.infinity]))
        // Finite entries whose squares overflow Float still give a finite norm (computed in Double).
        XCTAssertTrue(g.allowStep(loss: 1, gradients: [.greatestFiniteMagnitude, .greatestFiniteMagnitude]))
        XCTAssertEqual(g[.lossNonFinite], 2)
        XCTAssertEqual(g[.gradientNonFinite], 2)
        XCTAssertEqual(g.skipped, 4)
        XCTAssertEqual(g.allowed, 2)
        XCTAssertEqual(g.metrics["update/skipped/loss_non_finite"], 2)
        XCTAssertEqual(g.metrics[UpdateSkipReason.totalMetricKey], 4)
    }

    func testGradientNormBoundAndEmptyGradients() {
        var g = UpdateGuard(maxGradientNorm: 10)
        XCTAssertTrue(g.allowStep(loss: 0, gradients: []))
        XCTAssertTrue(g.allowStep(loss: 0, gradients: [6, 8]))  // norm exactly 10
        XCTAssertFalse(g.allowStep(loss: 0, gradients: [6, 8.01]))
        XCTAssertEqual(g[.gradientTooLarge], 1)
    }

    func testParametersAreCheckedAfterTheStepSoTheCallerCanRollBack() {
        var g = UpdateGuard(maxParameterMagnitude: 100)
        var params: [Float] = [1, 2, 3]
        let before = params
        XCTAssertTrue(g.allowStep(loss: 1, gradients: [1, 1, 1]))
        params[1] = .nan
        if !g.acceptResult(parameters: params) { params = before }
        XCTAssertEqual(params, before)
        XCTAssertFalse(g.acceptResult(parameters: [1, 1e9]))
        XCTAssertFalse(g.acceptResult(parameters: [-.infinity]))
        XCTAssertTrue(g.acceptResult(parameters: [-100, 100]))
        XCTAssertEqual(g[.parametersNonFinite], 3)
    }
}
