// MLP policy/value network: finite-difference gradient check of forward/backward (both activations), shapes, and
// the near-uniform initial policy.
import XCTest
import BonfireMath
import BonfireModel
import BonfireTestSupport

final class MLPTests: XCTestCase {
    /// L(θ) = Σ c·logits + Σ d·v for fixed random c, d, so dL/dlogits = c and dL/dv = d.
    func checkGradients(activation: MLPConfig.Activation) {
        let cfg = MLPConfig(inputSize: 5, actionCount: 3, hiddenSizes: [7, 6], activation: activation)
        let net = MLP(config: cfg, seed: 3)
        var rng = RNG(seed: 11)
        // Larger head weights than the default init so every parameter gets a sizeable gradient.
        for i in net.params.indices { net.params[i] = Float(rng.normal() * 0.5) }
        let B = 4
        let x = (0..<(B * 5)).map { _ in Float(rng.normal()) }
        let c = (0..<(B * 3)).map { _ in Float(rng.normal()) }
        let d = (0..<B).map { _ in Float(rng.normal()) }
        func loss() -> Double {
            let (l, v) = net.forward(x, batch: B)
            var s = 0.0
            for i in l.indices { s += Double(l[i]) * Double(c[i]) }
            for i in v.indices { s += Double(v[i]) * Double(d[i]) }
            return s
        }
        net.zeroGrad()
        _ = net.forward(x, batch: B)
        net.backward(dLogits: c, dValues: d)
        let analytic = net.grads
        var numeric = [Float](repeating: 0, count: net.params.count)
        let eps: Float = 1e-2
        for i in net.params.indices {
            let p0 = net.params[i]
            net.params[i] = p0 + eps; let lp = loss()
            net.params[i] = p0 - eps; let lm = loss()
            net.params[i] = p0
            numeric[i] = Float((lp - lm) / Double(2 * eps))
        }
        var maxDiff: Float = 0
        for i in numeric.indices { maxDiff = max(maxDiff, abs(numeric[i] - analytic[i])) }
        print("MLP \(activation) gradient check: \(net.params.count) params, maxdiff \(maxDiff)")
        expectClose(analytic, numeric, rtol: 2e-2, atol: 2e-3, "MLP \(activation) grads")
    }

    func testTanhGradientsMatchFiniteDifferences() { checkGradients(activation: .tanh) }
    func testReluGradientsMatchFiniteDifferences() { checkGradients(activation: .relu) }

    func testBackwardAccumulatesAcrossCalls() {
        let net = MLP(config: MLPConfig(inputSize: 3, actionCount: 2, hiddenSizes: [4]), seed: 1)
        let x: [Float] = [0.1, -0.2, 0.3]
        net.zeroGrad()
        _ = net.forward(x, batch: 1); net.backward(dLogits: [1, -1], dValues: [0.5])
        let once = net.grads
        _ = net.forward(x, batch: 1); net.backward(dLogits: [1, -1], dValues: [0.5])
        expectClose(net.grads, once.map { 2 * $0 }, rtol: 1e-5, atol: 1e-7, "accumulated twice")
    }

    func testInitialPolicyIsNearUniformAndLayoutIsContiguous() {
        let cfg = MLPConfig(inputSize: 32, actionCount: 5)
        let net = MLP(config: cfg, seed: 7)
        XCTAssertEqual(net.params.count, 32 * 64 + 64 + 64 * 64 + 64 + 64 * 6 + 6)
        XCTAssertEqual(net.layout.totalCount, net.params.count)
        var rng = RNG(seed: 2)
        let x = (0..<(8 * 32)).map { _ in Float(rng.normal()) }
        let (logits, values) = net.forward(x, batch: 8)
        XCTAssertEqual(logits.count, 40); XCTAssertEqual(values.count, 8)
        for r in 0..<8 {
            let lp = MLP.logSoftmax(logits, row: r, count: 5)
            for v in lp { XCTAssertEqual(exp(v), 0.2, accuracy: 0.02) }
        }
    }
}
