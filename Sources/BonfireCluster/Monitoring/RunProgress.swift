// Progress of a training run, read from its metrics.jsonl: `bonfire train` / `train-env` show learner steps against
// learner.maxSteps with rate and ETA (BonfireTasks.Progress: one line in place on a terminal, plain lines in a log).
// Reading the run's own metrics keeps the learner and coordinator untouched, and shows exactly what status/report see.
//
//   train  120/300   40.0%  6.10 steps/s  ETA 30s  v120  loss -0.0123  R 0.141
//
// The line starts at the learner's first reported step (after the SFT warm-up, which has its own line), so the rate
// and ETA count training steps only; a resumed run starts at its checkpoint's step. Time is the records' own time
// stamps, not when this reader polled: a short run whose records all arrive in one poll still shows its true rate
// (it used to print "53259 steps/s done in 0s" for 8 steps in 80 ms).
import BonfireTasks
import Foundation

package final class RunProgress: @unchecked Sendable {
    private let maxSteps: Int
    private let makeProgress: (Int, @escaping () -> Double) -> BonfireTasks.Progress
    private let recordTime = RecordTime()
    private let lock = NSLock()
    private var progress: BonfireTasks.Progress?
    private var tail: MetricsTail
    private var stopped = false
    private var thread: Thread?

    /// `makeProgress(initialStep, recordClock)` builds the line when the first learner step is seen; `recordClock`
    /// reads the time stamp of the record being applied (tests inject a fake output, and may use their own clock).
    package init(metricsURL: URL, maxSteps: Int, label: String = "train",
                 makeProgress: ((Int, @escaping () -> Double) -> BonfireTasks.Progress)? = nil) {
        self.maxSteps = maxSteps
        self.makeProgress = makeProgress ?? {
            BonfireTasks.Progress(label, total: maxSteps, unit: "steps", initial: $0, clock: $1)
        }
        tail = MetricsTail(url: metricsURL)
        tail.keepsRecords = false
        tail.skipToEnd()
    }

    /// Applies metrics records: learner records carrying `learner/step` move the line; finished at maxSteps.
    package func observe(_ records: [MetricsRecord]) {
        lock.lock(); defer { lock.unlock() }
        for r in records where r.role == "learner" {
            guard let s = r.values[MetricKey.learnerStep], s.isFinite, s >= 0, s < 1e15 else { continue }
            let step = Int(s)
            if r.time.isFinite { recordTime.value = max(recordTime.value, r.time) }   // never backwards
            if progress == nil {   // the rate counts steps from here on
                let t = recordTime
                progress = makeProgress(step, { t.value })
            }
            var detail = "v\(r.version)"
            if let l = r.values[MetricKey.policyLoss], l.isFinite { detail += String(format: "  loss %.4g", l) }
            if let v = r.values[MonitoringKey.verifierScoreMean], v.isFinite { detail += String(format: "  r %.3f", v) }
            if let R = r.values[MonitoringKey.rewardMean] ?? r.values[MetricKey.rewardMean], R.isFinite {
                detail += String(format: "  R %.3f", R)
            }
            if let ret = r.values[MetricKey.episodeReturn], ret.isFinite { detail += String(format: "  return %.3g", ret) }
            progress?.update(completed: step, detail: detail)
            if step >= maxSteps { progress?.finish() }
        }
    }

    /// Reads what metrics.jsonl gained since the last poll.
    package func poll() { observe(tail.poll()) }

    /// Polls every `interval` seconds on a background thread until `stop()`.
    package func start(interval: Double = 0.5) {
        let t = Thread { [self] in
            while !isStopped { poll(); usleep(UInt32(interval * 1e6)) }
        }
        thread = t
        t.start()
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    /// Last poll, then the final line (if a step was ever seen). Idempotent.
    package func stop() {
        lock.lock(); stopped = true; lock.unlock()
        while let t = thread, !t.isFinished { usleep(5_000) }
        poll()
        lock.lock(); defer { lock.unlock() }
        progress?.finish()
    }

    /// Whether the line has begun (a learner step was seen).
    package var started: Bool { lock.lock(); defer { lock.unlock() }; return progress != nil }
}

/// The time stamp of the newest applied record (RunProgress's clock).
private final class RecordTime: @unchecked Sendable {
    var value = -Double.infinity
}
