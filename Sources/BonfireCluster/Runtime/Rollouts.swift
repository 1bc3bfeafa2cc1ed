// The two protocols of the one runtime (docs/architecture.md):
//   RolloutSource  what an actor produces with the parameters it holds (BoN groups over a task, MLP environment
//                  episodes, multi-turn text episodes) and how it evaluates them: ActorRuntime (ActorRuntime.swift)
//                  runs any source;
//   PolicyLearner  what a learner does with those rollouts: validate and convert a message, one update on a batch,
//                  its parameters, and its state in the one checkpoint format (ModelCheckpoint): LearnerRuntime
//                  (LearnerRuntime.swift) runs any learner.
// A rollout *unit* is what a learner update counts: one BoN group, one episode chunk, one text episode. The version
// budget (`VersionBudget`) splits one update's units over the live actors.
import BonfireMath
import BonfireWire

/// One message an actor pushes: its payload, the units it carries and the samples (responses or env steps) in it.
package struct RolloutMessage {
    package var payload: WirePayload
    package var units: Int
    package var samples: Int
    /// Statistics that are not worth waiting for: pushed only if the queue has room.
    package var mayDrop = false
    package init(payload: WirePayload, units: Int, samples: Int, mayDrop: Bool = false) {
        self.payload = payload; self.units = units; self.samples = samples; self.mayDrop = mayDrop
    }
}

package protocol RolloutSource: AnyObject {
    /// The job this source serves (announced in the actor's hello).
    var job: JobKind { get }
    /// One line for the log: what is rolled out.
    var detail: String { get }
    var parameterCount: Int { get }
    var layoutHash: UInt64 { get }
    /// PUSH high-water mark in messages (backpressure: an actor cannot run far ahead).
    var pushHighWaterMark: Int32 { get }
    /// Installs the parameters of a new policy version.
    func install(parameters: [Float])
    /// Rolls out with the installed parameters (tagged `version`): messages carrying at most `maxUnits` units
    /// (maxUnits ≥ 1; a source may stop short), drawing all randomness from `rng`.
    func produce(version: Int, maxUnits: Int, rng: inout RNG) throws -> [RolloutMessage]
    /// Evaluates the installed parameters (`version`) as `request` asks, drawing all randomness from `rng`.
    func evaluate(_ request: WireEvalRequest, version: Int, rng: inout RNG) throws -> WireEvalReport
    /// Puts parameters in place for an evaluation of an older version (and back afterwards) without touching the
    /// rollout state `install` resets (e.g. the prompt cursor). Default: `install`.
    func swapParameters(_ values: [Float])
}

extension RolloutSource {
    package func swapParameters(_ values: [Float]) { install(parameters: values) }
}

/// A unit a learner trains on, tagged with the policy version that produced it.
package protocol RolloutUnit {
    /// The oldest policy version that produced any part of the unit (what staleness is judged by).
    var behaviourVersion: Int { get }
}

/// What a learner makes of one message.
package enum Accepted<Unit> {
    /// Units to train on.
    case units([Unit])
    /// Statistics folded into the learner's metrics (e.g. completed episodes); nothing to train on.
    case statistics
    /// Not used: why (counted by reason and logged, rate-limited).
    case invalid(DropReason, detail: String)
}

package protocol PolicyLearner: AnyObject {
    /// Codable: units accepted but not yet trained on are saved with each checkpoint (UnitLedger.swift).
    associatedtype Unit: RolloutUnit & Codable
    var job: JobKind { get }
    var detail: String { get }
    var parameters: [Float] { get }
    var layoutHash: UInt64 { get }
    /// Units per update.
    var unitsPerUpdate: Int { get }
    /// PULL high-water mark in messages.
    var pullHighWaterMark: Int32 { get }
    /// Updates applied so far (continues across --resume).
    var step: Int { get }
    /// A fresh start (no checkpoint to resume): init checkpoint or warm-up. `tick` keeps the role alive.
    func prepare(tick: () -> Void, log: (String) -> Void) throws
    /// What this learner knows about valid rollouts (task or environment, model sizes, group size, value ranges):
    /// the runtime's `WireInbox` checks every message against it (`ValidationContext.validate`) before `accept`.
    func admission(_ context: inout ValidationContext)
    /// Converts one message the inbox admitted; job-specific checks the context cannot express (e.g. text-episode
    /// padding) return `.invalid`.
    func accept(_ payload: WirePayload) -> Accepted<Unit>
    /// One update on `batch` (all accepted for `version`); returns namespaced metrics. Throws only on a
    /// programmer error; a non-finite update is reported in the metrics (`MetricKey.skippedUpdates`) and not applied.
    func update(_ batch: [Unit], version: Int) throws -> [String: Double]
    /// Metrics that are not per update (e.g. episode statistics), merged into every update's metrics.
    var runningMetrics: [String: Double] { get }
    /// Writes the learner's state (model, optimizer, step) with `metadata` to `url`.
    func save(to url: URL, metadata: [String: String]) throws
    /// Restores the state `save` wrote; returns its caller metadata.
    func restore(from url: URL) throws -> [String: String]
}

/// How many units an actor produces with one policy version: its share of `publishEvery` updates over the live
/// actors (rounded up, so together they always fill an update). Pure; the actor runtime keeps one.
package struct VersionBudget: Equatable, Sendable {
    package var unitsPerUpdate: Int
    package var publishEvery: Int
    package var liveActors: Int
    /// Units produced with the version held now.
    package var produced = 0

    package init(unitsPerUpdate: Int, publishEvery: Int, liveActors: Int) {
        self.unitsPerUpdate = unitsPerUpdate; self.publishEvery = publishEvery; self.liveActors = liveActors
    }

    /// This actor's share of one version.
    package var share: Int {
        let total = unitsPerUpdate * max(1, publishEvery)
        let k = max(1, liveActors)
        return max(1, (total + k - 1) / k)
    }
    package var remaining: Int { max(0, share - produced) }
    package var exhausted: Bool { remaining == 0 }
}

import Foundation
