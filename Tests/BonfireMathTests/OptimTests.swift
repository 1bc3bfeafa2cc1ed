import XCTest
import BonfireMath
import BonfireTestSupport

final class OptimTests: XCTestCase {
    func testAdamWMatchesHandComputedStepsAndDecaysOnlyMatrices() {
        var layout = ParameterLayout()
        layout.append("w", shape: [1, 2]); layout.append("b", shape: [1])
        var opt = AdamW(learningRate: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.5, layout: layout)
        var p: [Float] = [1, -2, 3]
        let grads: [[Float]] = [[0.5, -1, 2], [0.1, 0.2, -0.3]]
        // Reference in Double.
        var pr: [Double] = [1, -2, 3], m = [Double](repeating: 0, count: 3), v = m
        let decay: [Double] = [1, 1, 0]
        for (t, g) in grads.enumerated() {
            opt.update(params: &p, grads: g)
            for i in 0..<3 {
                pr[i] *= 1 - 0.1 * 0.5 * decay[i]
                m[i] = 0.9 * m[i] + 0.1 * Double(g[i]); v[i] = 0.99 * v[i] + 0.01 * Double(g[i]) * Double(g[i])
                let mh = m[i] / (1 - pow(0.9, Double(t + 1))), vh = v[i] / (1 - pow(0.99, Double(t + 1)))
                pr[i] -= 0.1 * mh / (vh.squareRoot() + 1e-8)
            }
        }
        XCTAssertEqual(opt.step, 2)
        expectClose(p.map(Double.init), pr, rtol: 1e-5, atol: 1e-6, "AdamW params")
    }

    func testClipGradNormScalesToMaxAndReturnsPreClipNorm() {
        var g: [Float] = [3, 4]
        XCTAssertEqual(clipGradNorm(&g, maxNorm: 1), 5, accuracy: 1e-6)
        XCTAssertEqual((g[0] * g[0] + g[1] * g[1]).squareRoot(), 1, accuracy: 1e-5)
        var h: [Float] = [0.3, 0.4]
        XCTAssertEqual(clipGradNorm(&h, maxNorm: 1), 0.5, accuracy: 1e-6)
        XCTAssertEqual(h, [0.3, 0.4])
    }

    func testWarmupCosineSchedule() {
        let s = LRSchedule(peak: 1, warmupSteps: 10, totalSteps: 110, minRate: 0.1)
        XCTAssertEqual(s.rate(at: 0), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 9), 1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 10), 1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 60), 0.55, accuracy: 1e-5)
        XCTAssertEqual(s.rate(at: 110), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 500), 0.1, accuracy: 1e-6)
        XCTAssertGreaterThan(s.rate(at: 30), s.rate(at: 31))
    }
}
