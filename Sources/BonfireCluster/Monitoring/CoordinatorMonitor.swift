// Everything the coordinator needs for monitoring, behind four calls, so wiring it into the runtime is a few lines:
//
//   let monitor = try CoordinatorMonitor(config.monitoring, runDirectory: runDir.url, runID: config.run.id, log: roleLog)
//   defer { monitor.close() }
//   // .metrics(m) from `peer`, after runDir.appendMetrics(...):
//   for (k, v) in monitor.metrics(role: peer, version: Int(m.version), values: m.values) { … append as coordinator }
//   // after runDir.writeEval(table):
//   monitor.eval(table)
//   // every period line:
//   monitor.actors(live: live, dead: total - live)
//
// It feeds the TensorBoard writer (one events file per role), the Prometheus snapshot (when
// monitoring.prometheusPort ≠ 0; a port in use throws at construction, naming the key), and the reward-hacking
// alarm (learner lines carrying reward/r_mean and reward/R_mean; a raised/cleared alarm is logged and returned as
// `alarm/reward_hacking` = 1/0 for the caller to append to metrics.jsonl as the coordinator). File errors of the
// TensorBoard writer are logged once and counted, never fatal.
import Foundation

package final class CoordinatorMonitor: @unchecked Sendable {
    package let config: MonitoringSection
    package private(set) var state: MonitoringState
    package private(set) var alarm: RewardHackingAlarm
    package let tensorboard: TensorBoardWriter?
    package let prometheus: PrometheusServer?
    package private(set) var tensorboardErrors = 0
    private let log: (String) -> Void
    private let lock = NSLock()

    package init(_ config: MonitoringSection, runDirectory: URL, runID: String, log: @escaping (String) -> Void) throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw MonitoringError(problems.joined(separator: "; ")) }
        self.config = config
        self.log = log
        state = MonitoringState(runID: runID)
        alarm = RewardHackingAlarm(config)
        tensorboard = config.tensorboard ? TensorBoardWriter(runDirectory: runDirectory) : nil
        if config.prometheusPort != 0 {
            let server = try PrometheusServer(host: config.prometheusHost, port: config.prometheusPort)
            server.update(state.snapshot)
            server.start()
            prometheus = server
            log("monitoring: Prometheus metrics on http://\(config.prometheusHost):\(server.port)/metrics")
        } else {
            prometheus = nil
        }
        if let tb = tensorboard { log("monitoring: TensorBoard event files under \(tb.directory.path) (tensorboard --logdir \(tb.directory.path))") }
    }

    deinit { close() }

    package func close() {
        prometheus?.stop()
        tensorboard?.close()
    }

    /// One metrics message (or metrics.jsonl line) of `role`. Returns metrics the coordinator should append as its
    /// own line (the alarm state when it changed), empty otherwise.
    @discardableResult
    package func metrics(role: String, version: Int, values: [String: Double], time: Date = Date()) -> [String: Double] {
        lock.lock(); defer { lock.unlock() }
        var extra: [String: Double] = [:]
        state.ingest(role: role, version: version, values: values, time: time.timeIntervalSince1970)
        if MonitoringState.kind(ofRole: role) == .learner, let gap = RewardGap(metrics: values),
           let event = alarm.observe(version: version, gap: gap) {
            log("coordinator: " + event.message)
            let on: Bool
            if case .raised = event { on = true } else { on = false }
            state.setHackingAlarm(on)
            extra[MonitoringKey.hackingAlarm] = on ? 1 : 0
        }
        writeTensorBoard { try $0.record(role: role, step: version, values: values, time: time) }
        if !extra.isEmpty { writeTensorBoard { try $0.record(role: "coordinator", step: version, values: extra, time: time) } }
        prometheus?.update(state.snapshot)
        return extra
    }

    package func eval(_ table: EvalTable) {
        lock.lock(); defer { lock.unlock() }
        state.ingest(eval: table)
        writeTensorBoard { try $0.record(eval: table) }
        prometheus?.update(state.snapshot)
    }

    package func actors(live: Int, dead: Int) {
        lock.lock(); defer { lock.unlock() }
        state.setActors(live: live, dead: dead)
        prometheus?.update(state.snapshot)
    }

    private func writeTensorBoard(_ body: (TensorBoardWriter) throws -> Void) {
        guard let tb = tensorboard else { return }
        do { try body(tb) } catch {
            tensorboardErrors += 1
            if tensorboardErrors == 1 || tensorboardErrors % 1000 == 0 {
                log("monitoring: TensorBoard write failed (\(tensorboardErrors) so far): \(error); metrics.jsonl is unaffected")
            }
        }
    }
}
