// The learner's guard around one optimizer step: skip the update when the loss or any gradient is non-finite (or
// the gradient norm is absurd), and check the parameters after the step so the caller can roll back to the copy it
// kept. Pure: no model or optimizer knowledge; every skip/rollback is counted by reason for metrics
// (`update/skipped/<reason>`, `update/skipped_total`).
//
//     var guard_ = UpdateGuard()
//     let before = model.params                                  // cheap copy-on-write snapshot
//     guard guard_.allowStep(loss: stats.loss, gradients: grads) else { continue }   // skipped, counted
//     optimizer.step(&model.params, grads)
//     if !guard_.acceptResult(parameters: model.params) { model.params = before; optimizer = optimizerBefore }

/// Why an update was skipped or rolled back. `rawValue` is the metric-key suffix.
package enum UpdateSkipReason: String, CaseIterable, Sendable, Hashable, Codable {
    /// The loss is NaN or ±∞.
    case lossNonFinite = "loss_non_finite"
    /// A gradient entry is NaN or ±∞.
    case gradientNonFinite = "gradient_non_finite"
    /// The gradient L2 norm exceeds `maxGradientNorm` (when set).
    case gradientTooLarge = "gradient_too_large"
    /// After the step a parameter is NaN/±∞ or beyond `maxParameterMagnitude`: the step was rolled back.
    case parametersNonFinite = "parameters_non_finite"

    package var metricKey: String { "update/skipped/" + rawValue }
    package static let totalMetricKey = "update/skipped_total"
}

package struct UpdateGuard: Sendable, Equatable {
    /// Skip when ‖g‖₂ is above this (nil: only finiteness). Gradient clipping still applies below it.
    package var maxGradientNorm: Float?
    /// After a step, |θ| above this counts as a diverged parameter (default 1e6; the safe-tensor writer refuses
    /// non-finite values anyway).
    package var maxParameterMagnitude: Float
    package private(set) var counts: [UpdateSkipReason: Int] = [:]
    package private(set) var allowed = 0
    /// The last check's gradient norm (nil when the gradients were non-finite).
    package private(set) var lastGradientNorm: Float?

    package init(maxGradientNorm: Float? = nil, maxParameterMagnitude: Float = 1e6) {
        precondition(maxGradientNorm.map { $0 > 0 } ?? true, "maxGradientNorm must be positive, got \(String(describing: maxGradientNorm))")
        precondition(maxParameterMagnitude > 0, "maxParameterMagnitude must be positive, got \(maxParameterMagnitude)")
        self.maxGradientNorm = maxGradientNorm
        self.maxParameterMagnitude = maxParameterMagnitude
    }

    package var skipped: Int { counts.values.reduce(0, +) }

    /// The reason the step must be skipped, or nil if it may proceed. Pure (does not count).
    package static func check(loss: Float, gradients: [Float], maxGradientNorm: Float?) -> (UpdateSkipReason?, Float?) {
        guard loss.isFinite else { return (.lossNonFinite, nil) }
        // Sum of squares in Double: a NaN/∞ entry makes it non-finite; finite floats cannot overflow a Double here.
        var ss = 0.0
        for g in gradients { ss += Double(g) * Double(g) }
        guard ss.isFinite else { return (.gradientNonFinite, nil) }
        let norm = Float(ss.squareRoot())
        if let m = maxGradientNorm, !(norm <= m) { return (.gradientTooLarge, norm) }
        return (nil, norm)
    }

    /// Counts and answers whether the optimizer step may run.
    package mutating func allowStep(loss: Float, gradients: [Float]) -> Bool {
        let (reason, norm) = Self.check(loss: loss, gradients: gradients, maxGradientNorm: maxGradientNorm)
        lastGradientNorm = norm
        if let reason { counts[reason, default: 0] += 1; return false }
        allowed += 1
        return true
    }

    /// Checks the parameters after a step; false (counted as `.parametersNonFinite`) means: roll back.
    package mutating func acceptResult(parameters: [Float]) -> Bool {
        let bound = maxParameterMagnitude
        var worst: Float = 0
        var finite = true
        for x in parameters { finite = finite && x.isFinite; worst = max(worst, abs(x)) }
        if finite && worst <= bound { return true }
        counts[.parametersNonFinite, default: 0] += 1
        allowed -= 1
        return false
    }

    package subscript(reason: UpdateSkipReason) -> Int { counts[reason, default: 0] }

    /// `update/skipped/<reason>` (non-zero) and `update/skipped_total`, for the learner's metrics.
    package var metrics: [String: Double] {
        var m: [String: Double] = [UpdateSkipReason.totalMetricKey: Double(skipped)]
        for (r, n) in counts where n > 0 { m[r.metricKey] = Double(n) }
        return m
    }
}
