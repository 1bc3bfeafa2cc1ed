// What became of every rollout unit the learner admitted, across crashes and resumes — the bookkeeping behind
// "every accepted rollout is trained on exactly once, or counted":
//
//   admitted = trained + stale + evicted + pending
//
//   admitted  units of messages that passed admission (meaning checked) and conversion
//   trained   units in an applied update (a skipped non-finite update still consumed its units)
//   stale     units judged too old (or from a lost future) when they were about to be used
//   evicted   units pushed out of the bounded waiting queue (`wire/dropped/buffer_full`)
//   pending   units waiting (received, or accepted for the next update)
//
// The ledger and the pending units are saved with each checkpoint (`v<version>.pending.json`, written atomically
// beside `v<version>.safetensors`) and restored by --resume, so a resumed learner trains on the rollouts its
// predecessor had accepted but not yet used (peers lose these: OpenRLHF #1322, NeMo-RL PR 3599). What arrived after
// the newest checkpoint is lost with the crashed process (with `learner.checkpointEvery = 1`: at most one update's
// worth; the synchronous schedule re-produces it exactly).
import BonfireMath
import Foundation

package struct UnitLedger: Codable, Equatable, Sendable {
    package var admitted = 0
    package var trained = 0
    package var stale = 0
    package var evicted = 0

    package init() {}

    /// The units not accounted for by training, staleness or eviction: what must be pending.
    package var outstanding: Int { admitted - trained - stale - evicted }

    /// Metrics under `units/…` (with `units/pending` given by the runtime).
    package func metrics(pending: Int) -> [String: Double] {
        [MetricKey.unitsAdmitted: Double(admitted), MetricKey.unitsTrained: Double(trained),
         MetricKey.unitsStale: Double(stale), MetricKey.unitsEvicted: Double(evicted),
         MetricKey.unitsPending: Double(pending)]
    }
}

/// The pending units and the ledger of one checkpoint.
package struct PendingRollouts<Unit: Codable>: Codable {
    package var version: Int
    package var ledger: UnitLedger
    package var units: [Unit]

    package init(version: Int, ledger: UnitLedger, units: [Unit]) {
        self.version = version; self.ledger = ledger; self.units = units
    }

    /// `v<version>.pending.json` beside the checkpoint `v<version>.safetensors`.
    package static func url(forCheckpoint checkpoint: URL) -> URL {
        checkpoint.deletingPathExtension().appendingPathExtension("pending.json")
    }

    package func write(forCheckpoint checkpoint: URL) throws {
        let data = try JSONEncoder().encode(self)
        try atomicWrite(data: data, to: Self.url(forCheckpoint: checkpoint))
    }

    /// The pending units saved with `checkpoint`; nil when there is no such file (a checkpoint written before the
    /// ledger existed). Throws with the file named when it is unreadable.
    package static func read(forCheckpoint checkpoint: URL) throws -> PendingRollouts? {
        let url = url(forCheckpoint: checkpoint)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        do { return try JSONDecoder().decode(PendingRollouts.self, from: Data(contentsOf: url)) } catch {
            throw ClusterError("\(url.lastPathComponent) is unreadable (\(error)); its pending rollouts are lost")
        }
    }
}
