// The run directory: everything a run leaves on disk, and the only thing `bonfire status` reads.
//
//   <run.dir>/
//     config.json              resolved RunConfig (pretty, sorted keys)
//     metrics.jsonl            append-only, one JSON object per line:
//                              {"time": <unix s>, "role": "learner", "version": 17, "loss/policy": 0.41, ...}
//     checkpoints/v000025.safetensors   learner checkpoints (write to <name>.tmp, then rename)
//     checkpoints/kl-reference.safetensors   π_start of a KL-penalised BoN run (Jobs/BoNJob.swift), written once
//     eval/v000025.json        evaluation tables (EvalTable)
//     logs/<role>.log          raw output of each role (written by the Supervisor)
//
// Each metrics line is written with one write(2) on an O_APPEND descriptor, so a crash never leaves a buffered
// line behind, and lines from several processes never interleave mid-line. Non-finite values are written as the
// strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers; a NaN loss must not vanish).

import BonfireMath
import BonfireWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Metric key names shared by the roles (writers) and StatusReport (reader). Namespaced as in cleanrl.
package enum MetricKey {
    package static let policyLoss = "loss/policy"
    package static let totalLoss = "loss/total"
    package static let stepsPerSecond = "throughput/steps_per_s"
    package static let samplesPerSecond = "throughput/samples_per_s"
    package static let liveActors = "cluster/live_actors"
    package static let learnerStep = "learner/step"
    package static let accepted = "staleness/accepted"
    package static let dropped = "staleness/dropped"
    package static let acceptedStale = "staleness/accepted_stale"
    package static let meanLag = "staleness/mean_lag"
    package static let wireDropped = DropReason.totalMetricKey
    package static let unitsPerSecond = "throughput/units_per_s"
    /// The learner's unit ledger (UnitLedger.swift): admitted = trained + stale + evicted + pending, across resumes.
    package static let unitsAdmitted = "units/admitted"
    package static let unitsTrained = "units/trained"
    package static let unitsStale = "units/stale"
    package static let unitsEvicted = "units/evicted"
    package static let unitsPending = "units/pending"
    package static let skippedUpdates = "learner/skipped_updates"
    package static let actorSamplesTotal = "actor/samples_total"
    package static let actorDroppedTotal = "actor/dropped_total"
    /// Parameter versions an actor installed from the learner's broadcast / from a direct ask (ActorLink).
    package static let actorParamsBroadcast = "actor/params_broadcast"
    package static let actorParamsRequested = "actor/params_requested"
    /// Of the broadcast installs, those copied out of the learner's shared-memory ring (same host), and the notices
    /// an actor could not use from there (then it asked directly; ParameterSlotRing.Rejection).
    package static let actorParamsSharedMemory = "actor/params_shared_memory"
    package static let actorParamsSharedMemoryRejected = "actor/params_shared_memory_rejected"
    package static let rewardMean = "train/reward_mean"
    package static let scoreMean = "train/score_mean"
    package static let groupPassRate = "train/group_pass_rate"
    package static let gradNorm = "train/grad_norm"
    package static let entropy = "train/entropy"
    package static let importanceRatio = "train/importance_ratio"
    package static let valueLoss = "loss/value"
    package static let rhoMean = "vtrace/rho_mean"
    package static let episodeReturn = "env/episode_return"
    package static let episodeLength = "env/episode_length"
    package static let episodes = "env/episodes"
    package static let envSteps = "env/steps"
    /// Actor → learner report of one round's completed episodes (on the rollout socket, may be dropped).
    package static let reportEpisodes = "env/report/episodes"
    package static let reportReturnSum = "env/report/return_sum"
    package static let reportLengthSum = "env/report/length_sum"
    package static let evalMeanReturn = "eval/mean_return"
    package static let evalFractionOfOptimal = "eval/fraction_of_optimal"
    /// Written once (value 1) by the coordinator when the run ends normally.
    package static let runFinished = "run/finished"
    package static func passAt(_ n: Int) -> String { "eval/pass@\(n)" }
    package static func bestOf(_ n: Int) -> String { "eval/bo\(n)" }
}

/// One line of metrics.jsonl.
package struct MetricsRecord: Equatable, Sendable {
    /// Unix time, seconds.
    package var time: Double
    package var role: String
    /// Policy version the values refer to.
    package var version: Int
    package var values: [String: Double]

    package init(time: Double, role: String, version: Int, values: [String: Double]) {
        self.time = time; self.role = role; self.version = version; self.values = values
    }

    /// The JSON line (no newline): time, role, version first, then keys sorted.
    package func jsonLine() -> String {
        var s = "{\"time\":\(RunDirectory.jsonNumber((time * 1000).rounded() / 1000)),\"role\":\(SafeTensors.jsonString(role)),\"version\":\(version)"
        for key in values.keys.sorted() where !["time", "role", "version"].contains(key) {
            s += ",\(SafeTensors.jsonString(key)):\(RunDirectory.jsonNumber(values[key]!))"
        }
        return s + "}"
    }

    /// Parses a line written by `jsonLine()` (or any JSON object with time/role/version and numeric values);
    /// nil for a malformed or partial line.
    package init?(jsonLine line: Substring) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let time = (obj["time"] as? NSNumber)?.doubleValue,
              let role = obj["role"] as? String,
              let version = (obj["version"] as? NSNumber)?.intValue else { return nil }
        var values: [String: Double] = [:]
        for (k, v) in obj where k != "time" && k != "role" && k != "version" {
            if let n = v as? NSNumber { values[k] = n.doubleValue }
            else if let s = v as? String {
                switch s {
                case "NaN": values[k] = .nan
                case "Infinity": values[k] = .infinity
                case "-Infinity": values[k] = -.infinity
                default: continue
                }
            }
        }
        self.init(time: time, role: role, version: version, values: values)
    }
}

/// A checkpoint file found in checkpoints/.
package struct CheckpointRef: Equatable, Sendable {
    package var version: Int
    package var url: URL
}

/// One evaluation: pass@N and Bo-N accuracy per (temperature, N) on `prompts` test prompts.
package struct EvalTable: Codable, Equatable, Sendable {
    package struct Row: Codable, Equatable, Sendable {
        package var temperature: Double
        package var n: Int
        /// P(at least one of N samples has reward 1).
        package var passAtN: Double
        /// Expected reward of the verifier's pick among N.
        package var boN: Double
        /// Environment jobs: mean undiscounted return of the policy and its fraction of the optimal return (nil for
        /// BoN jobs, whose rows are pass@N / Bo-N).
        package var meanReturn: Double?
        package var fractionOfOptimal: Double?
        package init(temperature: Double, n: Int, passAtN: Double, boN: Double, meanReturn: Double? = nil,
                     fractionOfOptimal: Double? = nil) {
            self.temperature = temperature; self.n = n; self.passAtN = passAtN; self.boN = boN
            self.meanReturn = meanReturn; self.fractionOfOptimal = fractionOfOptimal
        }
    }
    package var version: Int
    /// Unix time, seconds.
    package var time: Double
    package var prompts: Int
    package var rows: [Row]

    package init(version: Int, time: Double, prompts: Int, rows: [Row]) {
        self.version = version; self.time = time; self.prompts = prompts; self.rows = rows
    }

    /// Plain-text table, one row per (temperature, N).
    package func render() -> String {
        if rows.contains(where: { $0.meanReturn != nil }) {
            var lines = ["eval v\(version) (\(prompts) episodes)", "    T    return  of optimal"]
            for r in rows {
                lines.append(String(format: "%5.2f  %8.3f  %9.1f%%", r.temperature, r.meanReturn ?? 0, 100 * (r.fractionOfOptimal ?? 0)))
            }
            return lines.joined(separator: "\n")
        }
        var lines = ["eval v\(version) (\(prompts) prompts)", "    T      N   pass@N    Bo-N"]
        for r in rows {
            lines.append(String(format: "%5.2f  %5d   %6.3f  %6.3f", r.temperature, r.n, r.passAtN, r.boN))
        }
        return lines.joined(separator: "\n")
    }
}

package final class RunDirectory: @unchecked Sendable {
    package let url: URL
    package var configURL: URL { url.appendingPathComponent("config.json") }
    package var metricsURL: URL { url.appendingPathComponent("metrics.jsonl") }
    package var checkpointsURL: URL { url.appendingPathComponent("checkpoints", isDirectory: true) }
    package var evalURL: URL { url.appendingPathComponent("eval", isDirectory: true) }
    package var logsURL: URL { url.appendingPathComponent("logs", isDirectory: true) }

    private let lock = NSLock()
    private var metricsFD: Int32 = -1

    private init(url: URL) { self.url = url }

    deinit { if metricsFD >= 0 { close(metricsFD) } }

    /// Creates (or reopens, for --resume) the layout and writes the resolved config. Existing metrics are kept.
    package static func create(at url: URL, config: RunConfig) throws -> RunDirectory {
        let dir = RunDirectory(url: url)
        let fm = FileManager.default
        for sub in [url, dir.checkpointsURL, dir.evalURL, dir.logsURL] {
            do { try fm.createDirectory(at: sub, withIntermediateDirectories: true) } catch {
                throw ConfigError("run directory \(sub.path): cannot be created (\(error.localizedDescription)); "
                                  + "choose another run.dir or fix its permissions")
            }
        }
        do { try Data((config.resolvedJSON() + "\n").utf8).write(to: dir.configURL, options: .atomic) } catch {
            throw ConfigError("run directory: cannot write \(dir.configURL.path) (\(error.localizedDescription))")
        }
        try dir.openMetrics()
        return dir
    }

    /// `<dir>/run-id`: the run id every role of this run directory agrees on (see `sharedRunID`).
    package static func runIDURL(_ dir: URL) -> URL { dir.appendingPathComponent("run-id") }

    /// The run id for a config whose `run.id` is empty: the one recorded in `<dir>/run-id` (a role started later,
    /// or a resumed run, keeps it), or a fresh random one (`RunConfig.makeRunID`) recorded there by whichever role
    /// gets there first (O_EXCL, so roles starting at once on shared storage agree). `fresh` replaces a recorded id
    /// (a new run reusing the directory, e.g. `bonfire local` without --resume).
    package static func sharedRunID(dir: URL, fresh: Bool = false) throws -> String {
        let file = runIDURL(dir)
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw ConfigError("run directory \(dir.path): cannot be created (\(error.localizedDescription)); "
                              + "choose another run.dir or fix its permissions")
        }
        if fresh { unlink(file.path) }
        for _ in 0..<3 {
            if let data = FileManager.default.contents(atPath: file.path) {
                let id = String(decoding: data.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                if !id.isEmpty && !id.contains(where: { $0.isWhitespace || $0 == "/" }) { return id }
                unlink(file.path)  // empty or damaged: replace it
            }
            let id = RunConfig.makeRunID(extra: UInt64.random(in: 0..<(1 << 48)))
            // Written whole to a private name, then link(2)ed into place: the file appears with its content (a role
            // reading it concurrently never sees it empty) and exactly one role's link wins (EEXIST for the others).
            let tmp = dir.appendingPathComponent(".run-id.\(getpid()).\(UInt32.random(in: 0...UInt32.max))")
            do { try Data((id + "\n").utf8).write(to: tmp) } catch {
                throw ConfigError("cannot write \(tmp.path) (\(error.localizedDescription)); fix the run directory's permissions or set run.id")
            }
            defer { unlink(tmp.path) }
            if link(tmp.path, file.path) != 0 {
                if errno == EEXIST { continue }  // another role won the race: read its id
                throw ConfigError("cannot write \(file.path) (\(String(cString: strerror(errno)))); fix the run directory's permissions or set run.id")
            }
            return id
        }
        throw ConfigError("\(file.path) keeps changing (several runs in one run.dir?); set run.id explicitly")
    }

    /// Opens an existing run directory (it must hold config.json or metrics.jsonl).
    package static func open(at url: URL) throws -> RunDirectory {
        guard isRunDirectory(url) else {
            throw ConfigError("\(url.path) is not a run directory (no config.json or metrics.jsonl); "
                              + "pass the run.dir of a run, e.g. runs/latest")
        }
        return RunDirectory(url: url)
    }

    package static func isRunDirectory(_ url: URL) -> Bool {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else { return false }
        return fm.fileExists(atPath: url.appendingPathComponent("config.json").path)
            || fm.fileExists(atPath: url.appendingPathComponent("metrics.jsonl").path)
    }

    private func openMetrics() throws {
        lock.lock(); defer { lock.unlock() }
        guard metricsFD < 0 else { return }
        let fd = Glibc.open(metricsURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw ConfigError("cannot open \(metricsURL.path) for appending: \(String(cString: strerror(errno)))")
        }
        metricsFD = fd
    }

    /// Appends one metrics line (one write(2)); throws if the line could not be written completely.
    package func append(_ record: MetricsRecord) throws {
        if metricsFD < 0 { try openMetrics() }
        let bytes = Array((record.jsonLine() + "\n").utf8)
        lock.lock(); defer { lock.unlock() }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(metricsFD, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConfigError("writing \(metricsURL.path) failed: \(String(cString: strerror(errno))); "
                                  + "check free disk space")
            }
            off += n
        }
    }

    /// Appends `{"time", "role", "version", values...}`.
    package func appendMetrics(role: String, version: Int, values: [String: Double], time: Date = Date()) throws {
        try append(MetricsRecord(time: time.timeIntervalSince1970, role: role, version: version, values: values))
    }

    /// All parseable lines, and how many lines were malformed (a partial last line of a live run counts).
    package func readMetrics() throws -> (records: [MetricsRecord], malformed: Int) {
        guard FileManager.default.fileExists(atPath: metricsURL.path) else { return ([], 0) }
        let text = try String(contentsOf: metricsURL, encoding: .utf8)
        var records: [MetricsRecord] = []
        var malformed = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if let r = MetricsRecord(jsonLine: line) { records.append(r) } else { malformed += 1 }
        }
        return (records, malformed)
    }

    // MARK: Checkpoints

    /// checkpoints/v<version, 6+ digits>.safetensors. Write to `.tmp` beside it, then rename.
    package func checkpointURL(version: Int) -> URL {
        checkpointsURL.appendingPathComponent("v" + Self.padded(version) + ".safetensors")
    }

    /// Every checkpoint, newest first (a corrupt newest one falls back to the next).
    package func checkpoints() -> [CheckpointRef] {
        Self.versionedFiles(in: checkpointsURL, suffix: ".safetensors").reversed().map { CheckpointRef(version: $0.0, url: $0.1) }
    }

    /// The checkpoint with the highest version (ignores .tmp and other files).
    package func latestCheckpoint() -> CheckpointRef? {
        Self.versionedFiles(in: checkpointsURL, suffix: ".safetensors").last.map { CheckpointRef(version: $0.0, url: $0.1) }
    }

    // MARK: Evaluation tables

    package func evalURL(version: Int) -> URL { evalURL.appendingPathComponent("v" + Self.padded(version) + ".json") }

    @discardableResult
    package func writeEval(_ table: EvalTable) throws -> URL {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = evalURL(version: table.version)
        try FileManager.default.createDirectory(at: evalURL, withIntermediateDirectories: true)
        try enc.encode(table).write(to: url, options: .atomic)
        return url
    }

    package func latestEval() throws -> EvalTable? {
        guard let (_, url) = Self.versionedFiles(in: evalURL, suffix: ".json").last else { return nil }
        return try JSONDecoder().decode(EvalTable.self, from: Data(contentsOf: url))
    }

    // MARK: Logs

    package func logURL(role: String) -> URL { logsURL.appendingPathComponent(role + ".log") }

    // MARK: Helpers

    static func padded(_ v: Int) -> String {
        let s = String(v)
        return s.count >= 6 ? s : String(repeating: "0", count: 6 - s.count) + s
    }

    /// Files named v<digits><suffix>, sorted by version.
    static func versionedFiles(in dir: URL, suffix: String) -> [(Int, URL)] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var found: [(Int, URL)] = []
        for name in names where name.hasPrefix("v") && name.hasSuffix(suffix) {
            let digits = name.dropFirst().dropLast(suffix.count)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber),
                  let v = Int(digits) else { continue }
            found.append((v, dir.appendingPathComponent(name)))
        }
        return found.sorted { $0.0 < $1.0 }
    }

    static func jsonNumber(_ x: Double) -> String {
        if x.isNaN { return "\"NaN\"" }
        if x.isInfinite { return x > 0 ? "\"Infinity\"" : "\"-Infinity\"" }
        if x == x.rounded() && abs(x) < 1e15 { return String(Int64(x)) }
        return "\(x)"
    }
}
