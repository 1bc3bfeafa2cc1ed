// Capped exponential backoff with jitter for reconnects and retries (zguide Paranoid Pirate: INTERVAL_INIT,
// INTERVAL_MAX).
//
//   base_k  = min(maxMs, initialMs · multiplier^k)          k = failures since the last success
//   delay_k = min(maxMs, base_k · (1 − jitter + 2·jitter·u)),  u ~ U[0, 1) from a seeded RNG
//
// `reset()` after a success starts again at initialMs. `next(giveUpAfterMs:)` also tracks the total delay since
// the last success and returns nil once the next delay would exceed the give-up budget, so a role can say which
// peer it waited for and for how long, then exit non-zero.

import BonfireMath

package struct Backoff: Sendable {
    package let initialMs: Int
    package let maxMs: Int
    package let multiplier: Double
    /// Relative jitter in [0, 1): each delay is spread over base · [1 − jitter, 1 + jitter).
    package let jitter: Double
    private var rng: RNG
    /// Failures since the last success.
    package private(set) var attempts = 0
    /// Sum of delays handed out since the last success (ms).
    package private(set) var totalDelayMs: Int64 = 0

    package init(initialMs: Int, maxMs: Int, multiplier: Double = 2, jitter: Double = 0.2, rng: RNG) {
        precondition(initialMs > 0 && maxMs >= initialMs && multiplier >= 1 && jitter >= 0 && jitter < 1,
                     "Backoff: need 0 < initialMs (\(initialMs)) ≤ maxMs (\(maxMs)), multiplier (\(multiplier)) ≥ 1, "
                     + "jitter (\(jitter)) in [0, 1)")
        self.initialMs = initialMs
        self.maxMs = maxMs
        self.multiplier = multiplier
        self.jitter = jitter
        self.rng = rng
    }

    /// From the liveness section (reconnectInitialMs, reconnectMaxMs) with a seeded stream.
    package init(_ config: RunConfig.LivenessSection, rng: RNG) {
        self.init(initialMs: config.reconnectInitialMs, maxMs: config.reconnectMaxMs, rng: rng)
    }

    /// Un-jittered delay of the current attempt (ms).
    package var baseDelayMs: Int {
        let b = Double(initialMs) * pow2(attempts)
        return b >= Double(maxMs) ? maxMs : Int(b)
    }

    private func pow2(_ k: Int) -> Double {
        var x = 1.0
        for _ in 0..<min(k, 64) { x *= multiplier; if x > 1e12 { break } }
        return x
    }

    /// The delay to wait before the next try (ms); counts one failure.
    package mutating func nextDelayMs() -> Int {
        let base = Double(baseDelayMs)
        let factor = 1 - jitter + 2 * jitter * rng.uniform()
        let delay = max(1, min(maxMs, Int((base * factor).rounded())))
        attempts += 1
        totalDelayMs += Int64(delay)
        return delay
    }

    /// Like `nextDelayMs()`, but nil when waiting it would push the total since the last success past
    /// `giveUpAfterMs` (then the caller gives up and reports the peer and `totalDelayMs`).
    package mutating func next(giveUpAfterMs: Int) -> Int? {
        var probe = self
        let d = probe.nextDelayMs()
        guard probe.totalDelayMs <= Int64(giveUpAfterMs) else { return nil }
        self = probe
        return d
    }

    /// A success: start again from initialMs.
    package mutating func reset() {
        attempts = 0
        totalDelayMs = 0
    }
}
