// Staleness gate for rollouts arriving at the learner, as a pure state machine.
//
//   lag = currentVersion − behaviourVersion      (behaviour version: the policy version that sampled the BoN group)
//   0 ≤ lag ≤ maxPolicyLag  → accept, importance-correct with ρ = min(ρ̄, π(y|x) / μ(y|x))
//   lag > maxPolicyLag      → drop (too stale), counted
//   lag < 0                 → drop (a version the learner never published: an actor from another run or a learner
//                             restarted without --resume), counted separately
//
// The importance weight uses the log ratio log π − log μ (sums of token log-probs of the response under the
// current policy π and the behaviour policy μ), truncated at ρ̄ as in V-trace / IMPALA.

#if canImport(Glibc)
import Glibc
#else
import Foundation
#endif

package struct StalenessGate: Sendable {
    package enum Decision: Equatable, Sendable {
        case accept(lag: Int)
        case drop(lag: Int)

        package var isAccepted: Bool { if case .accept = self { return true } else { return false } }
    }

    /// Largest accepted lag.
    package let maxPolicyLag: Int
    /// Rollouts accepted so far.
    package private(set) var accepted = 0
    /// Rollouts dropped so far (too stale or from the future).
    package private(set) var dropped = 0
    /// Of `dropped`, those with a behaviour version newer than the current one.
    package private(set) var droppedFromFuture = 0
    /// Sum of accepted lags (mean lag = lagSum / accepted).
    package private(set) var lagSum = 0
    /// Accepted rollouts with lag > 0 (they carry importance weights ≠ 1 in general).
    package private(set) var acceptedStale = 0
    /// Accepted rollouts per lag k (0 ≤ k ≤ maxPolicyLag; only lags seen have an entry): the staleness histogram
    /// the learner reports as `staleness/lag_count/<k>` (cumulative counts). At most maxPolicyLag + 1 entries.
    package private(set) var acceptedByLag: [Int: Int] = [:]

    package init(maxPolicyLag: Int) {
        precondition(maxPolicyLag >= 0, "StalenessGate: maxPolicyLag must be ≥ 0, got \(maxPolicyLag)")
        self.maxPolicyLag = maxPolicyLag
    }

    package init(_ config: RunConfig.LearnerSection) { self.init(maxPolicyLag: config.maxPolicyLag) }

    /// Accept or drop a rollout sampled by `behaviourVersion` when the learner is at `currentVersion`; counts it.
    package mutating func decide(behaviourVersion: Int, currentVersion: Int) -> Decision {
        let lag = currentVersion - behaviourVersion
        if lag < 0 {
            dropped += 1
            droppedFromFuture += 1
            return .drop(lag: lag)
        }
        if lag > maxPolicyLag {
            dropped += 1
            return .drop(lag: lag)
        }
        accepted += 1
        lagSum += lag
        acceptedByLag[lag, default: 0] += 1
        if lag > 0 { acceptedStale += 1 }
        return .accept(lag: lag)
    }

    /// The per-lag counts as metrics: `staleness/lag_count/<k>` → accepted rollouts with lag k (MonitoringKey.lagCount).
    package var lagCountMetrics: [String: Double] {
        Dictionary(uniqueKeysWithValues: acceptedByLag.map { (MonitoringKey.lagCount($0.key), Double($0.value)) })
    }

    /// Mean lag of accepted rollouts (0 when none).
    package var meanAcceptedLag: Double { accepted == 0 ? 0 : Double(lagSum) / Double(accepted) }

    /// ρ = min(clip, exp(logRatio)), logRatio = log π(y|x) − log μ(y|x); clip = ρ̄ > 0.
    package static func truncatedImportanceWeight(logRatio: Double, clip: Double) -> Double {
        precondition(clip > 0, "truncatedImportanceWeight: clip ρ̄ must be > 0, got \(clip)")
        precondition(!logRatio.isNaN, "truncatedImportanceWeight: logRatio is NaN")
        // Compare in log space so a huge ratio never overflows before truncation.
        if logRatio >= log(clip) { return clip }
        return exp(logRatio)
    }
}

/// Free-function spelling of `StalenessGate.truncatedImportanceWeight`.
package func truncatedImportanceWeight(logRatio: Double, clip: Double) -> Double {
    StalenessGate.truncatedImportanceWeight(logRatio: logRatio, clip: clip)
}
