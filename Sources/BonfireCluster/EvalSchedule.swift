// Evaluation schedule as a pure state machine, driven by the coordinator.
//
// Every E policy versions (E = eval.everyVersions, 0 = never) the coordinator asks actors to evaluate the current
// parameters. A request is made when a published version crosses a new multiple of E; if versions jump (several
// multiples crossed at once, e.g. 24 → 60 with E = 25) one request is made for the version just published (older
// parameters no longer exist), and the schedule continues from there. No version is ever requested twice.
// Each request carries a deadline; `tick(now:)` reports requests past their deadline as timed out, and a report
// after that is `.late` (still worth logging). `finish(finalVersion:)` asks for one last evaluation of the final
// version unless it was already requested.

package struct EvalSchedule: Sendable {
    package enum Action: Equatable, Sendable {
        /// Ask actors to evaluate `version` (the parameters currently published).
        case requestEval(version: Int)
        /// No report for `version` by its deadline.
        case timedOut(version: Int)
    }

    package enum ReportOutcome: Equatable, Sendable {
        /// Report for an outstanding request; `latencyMs` since it was requested.
        case completed(version: Int, latencyMs: Int64)
        /// Report for a request that had already timed out.
        case late(version: Int)
        /// Report for a version never requested, or reported twice.
        case unexpected(version: Int)
    }

    /// E: evaluate every E versions (0 = never).
    package let everyVersions: Int
    /// Deadline of each request, ms after it is made.
    package let timeoutMs: Int64
    /// Requested versions not yet reported → deadline (ms).
    package private(set) var outstanding: [Int: Int64] = [:]
    /// Request time of outstanding requests (ms).
    private var requestedAt: [Int: Int64] = [:]
    /// Every version ever requested.
    package private(set) var requested: Set<Int> = []
    /// Versions whose report arrived in time.
    package private(set) var completed: Set<Int> = []
    /// Versions that timed out.
    package private(set) var timedOut: Set<Int> = []
    /// Highest multiple index k (version ≥ k·E) already served.
    private var servedMultiple = 0
    /// Highest version seen.
    package private(set) var latestVersion: Int?

    package init(everyVersions: Int, timeoutMs: Int) {
        precondition(everyVersions >= 0 && timeoutMs > 0,
                     "EvalSchedule: everyVersions \(everyVersions) must be ≥ 0 and timeoutMs \(timeoutMs) > 0")
        self.everyVersions = everyVersions
        self.timeoutMs = Int64(timeoutMs)
    }

    package init(_ config: RunConfig.EvalSection) {
        self.init(everyVersions: config.everyVersions, timeoutMs: config.timeoutMs)
    }

    /// The learner published `version`. Returns `[.requestEval(version)]` when a new multiple of E was reached.
    package mutating func versionPublished(_ version: Int, now: Int64) -> [Action] {
        if let latest = latestVersion, version <= latest { return [] }   // republished or out of order
        latestVersion = version
        guard everyVersions > 0, version > 0 else { return [] }
        let multiple = version / everyVersions
        guard multiple > servedMultiple else { return [] }
        servedMultiple = multiple
        return request(version, now: now)
    }

    /// The learner's starting version (0, an init checkpoint, or a resumed run): one baseline evaluation, so every
    /// run's table starts from where training began. Later versions follow the every-E rule.
    package mutating func started(atVersion version: Int, now: Int64) -> [Action] {
        guard everyVersions > 0, latestVersion == nil else { return [] }
        latestVersion = version
        servedMultiple = version / everyVersions
        return request(version, now: now)
    }

    /// The run ends at `finalVersion`: one last evaluation unless that version was already requested.
    package mutating func finish(finalVersion: Int, now: Int64) -> [Action] {
        if let latest = latestVersion, finalVersion < latest { return [] }
        latestVersion = finalVersion
        return request(finalVersion, now: now)
    }

    private mutating func request(_ version: Int, now: Int64) -> [Action] {
        guard !requested.contains(version) else { return [] }
        requested.insert(version)
        outstanding[version] = now + timeoutMs
        requestedAt[version] = now
        return [.requestEval(version: version)]
    }

    /// An evaluation report for `version` arrived.
    package mutating func reportReceived(version: Int, now: Int64) -> ReportOutcome {
        if outstanding.removeValue(forKey: version) != nil {
            completed.insert(version)
            let t0 = requestedAt.removeValue(forKey: version) ?? now
            return .completed(version: version, latencyMs: now - t0)
        }
        if timedOut.contains(version) && !completed.contains(version) {
            completed.insert(version)
            return .late(version: version)
        }
        return .unexpected(version: version)
    }

    /// Requests past their deadline, sorted by version.
    package mutating func tick(now: Int64) -> [Action] {
        var actions: [Action] = []
        for (version, deadline) in outstanding.sorted(by: { $0.key < $1.key }) where now >= deadline {
            outstanding[version] = nil
            requestedAt[version] = nil
            timedOut.insert(version)
            actions.append(.timedOut(version: version))
        }
        return actions
    }

    /// Earliest outstanding deadline (ms), for the caller's poll timeout.
    package var nextDeadline: Int64? { outstanding.values.min() }
}
