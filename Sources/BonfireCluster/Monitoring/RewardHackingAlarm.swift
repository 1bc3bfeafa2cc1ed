// Reward-hacking alarm, as a pure state machine: warns when the verifier score r rises while the true reward R
// falls — the policy is learning to please the verifier rather than to solve the task (most visible with a learned
// verifier). Bonfire carries r and R side by side in every sample, so it can watch both.
//
// Input: per policy version, the mean r and mean R of all samples and of the BoN picks (`RewardGap`, metric keys
// reward/r_mean, reward/R_mean, reward/r_pick_mean, reward/R_pick_mean). Several observations of one version are
// averaged. Over the last `window` versions (monitoring.hackingWindow), with A = the older half and B = the newer:
//
//   Δr = mean_B(r) − mean_A(r),   ΔR = mean_B(R) − mean_A(R)
//   hacking  ⇔  Δr ≥ minRise  ∧  −ΔR ≥ minFall  ∧  Δr ≥ z·SE(Δr)  ∧  −ΔR ≥ z·SE(ΔR)        (z = 4)
//
// checked for all samples and for the BoN picks (either raises). SE = σ̂·√(1/|A| + 1/|B|), where σ̂ is the
// per-version noise estimated from successive differences over a longer history (the last max(4·window, 32)
// versions: σ̂² = mean((x_v − x_{v−1})²) / 2, insensitive to slow trends); judging starts once max(window, 16) versions
// are known (a full window, and at least 15 differences for σ̂; a long window judges as soon as it is full, because
// with a learned verifier the true reward can collapse within the first few dozen versions). So noise of any size stays silent unless the trend stands out of it. Joint improvement (both rise) and plain degradation (R falls, r flat) are not hacking. The alarm clears after
// `window / 2` consecutive checks without the condition (no flapping).
import Foundation

package struct RewardHackingAlarm: Sendable {
    package enum Signal: String, Sendable { case allSamples = "all samples", bonPicks = "BoN picks" }

    package struct Finding: Equatable, Sendable {
        package var signal: Signal
        package var fromVersion: Int
        package var toVersion: Int
        package var verifierScoreChange: Double
        package var rewardChange: Double
        /// r − R at the newest version of the window (for the signal).
        package var gap: Double
    }

    package enum Event: Equatable, Sendable {
        case raised(Finding)
        case cleared(atVersion: Int)

        /// The coordinator's log line.
        package var message: String {
            switch self {
            case .raised(let f):
                return String(format: "WARNING reward hacking suspected (%@): over versions %d…%d the verifier score r rose by %+.3f "
                              + "while the true reward R fell by %+.3f (r − R gap now %.3f). The policy may be exploiting the verifier; "
                              + "check the verifier, lower the learning rate or stop the run (monitoring.hackingWindow sets the window)",
                              f.signal.rawValue, f.fromVersion, f.toVersion, f.verifierScoreChange, f.rewardChange, f.gap)
            case .cleared(let v):
                return "reward-hacking alarm cleared at version \(v): r and R no longer diverge"
            }
        }
    }

    package let window: Int
    package let minRise: Double
    package let minFall: Double
    /// Standard errors a change must exceed.
    package let z: Double = 4

    package private(set) var isRaised = false
    package private(set) var latestFinding: Finding?
    /// Observations ignored: non-finite values, negative versions, versions older than the window.
    package private(set) var rejected = 0

    private struct Point { var version: Int; var n: Double; var r: Double; var R: Double; var pr: Double; var pR: Double }
    private var points: [Point] = []      // sorted by version, at most `historyLength`
    private var historyLength: Int { max(4 * window, 32) }
    private var quietChecks = 0

    package init(window: Int, minRise: Double, minFall: Double) {
        precondition(window >= 2, "RewardHackingAlarm: window must be ≥ 2 versions, got \(window)")
        precondition(minRise.isFinite && minRise >= 0 && minFall.isFinite && minFall >= 0,
                     "RewardHackingAlarm: thresholds must be finite and ≥ 0, got minRise \(minRise), minFall \(minFall)")
        self.window = window; self.minRise = minRise; self.minFall = minFall
    }

    package init(_ config: MonitoringSection) {
        self.init(window: config.hackingWindow, minRise: config.hackingMinRise, minFall: config.hackingMinFall)
    }

    /// The latest per-version means in the window: (version, r, R, r of picks, R of picks).
    package var history: [(version: Int, r: Double, R: Double, pickR: Double, pickRTrue: Double)] {
        points.map { ($0.version, $0.r, $0.R, $0.pr, $0.pR) }
    }

    /// One observation for `version`; returns an event when the alarm is raised or cleared.
    package mutating func observe(version: Int, gap g: RewardGap) -> Event? {
        let values = [g.verifierScoreMean, g.rewardMean, g.pickVerifierScoreMean, g.pickRewardMean]
        guard version >= 0, values.allSatisfy(\.isFinite) else { rejected += 1; return nil }
        if let i = points.firstIndex(where: { $0.version == version }) {
            var p = points[i]
            let n = p.n + 1
            p.r += (g.verifierScoreMean - p.r) / n; p.R += (g.rewardMean - p.R) / n
            p.pr += (g.pickVerifierScoreMean - p.pr) / n; p.pR += (g.pickRewardMean - p.pR) / n
            p.n = n
            points[i] = p
            return nil   // the version's point changed; judged when the next version arrives
        }
        if points.count >= historyLength, let first = points.first, version < first.version { rejected += 1; return nil }
        let p = Point(version: version, n: 1, r: g.verifierScoreMean, R: g.rewardMean, pr: g.pickVerifierScoreMean, pR: g.pickRewardMean)
        let at = points.firstIndex { $0.version > version } ?? points.count
        points.insert(p, at: at)
        if points.count > historyLength { points.removeFirst(points.count - historyLength) }
        guard points.count >= max(window, 16), at >= points.count - window else { return nil }

        let finding = check(\.r, \.R, .allSamples) ?? check(\.pr, \.pR, .bonPicks)
        if let finding {
            quietChecks = 0
            latestFinding = finding
            if !isRaised { isRaised = true; return .raised(finding) }
            return nil
        }
        if isRaised {
            quietChecks += 1
            if quietChecks >= max(1, window / 2) {
                isRaised = false; quietChecks = 0
                return .cleared(atVersion: points.last!.version)
            }
        }
        return nil
    }

    private func check(_ rKey: KeyPath<Point, Double>, _ RKey: KeyPath<Point, Double>, _ signal: Signal) -> Finding? {
        let half = window / 2
        let recent = points.suffix(window)
        let a = recent.prefix(window - half), b = recent.suffix(half)
        func mean(_ xs: some Collection<Point>, _ k: KeyPath<Point, Double>) -> Double {
            xs.reduce(0) { $0 + $1[keyPath: k] } / Double(xs.count)
        }
        /// Per-version noise σ̂² from successive differences over the whole history.
        func noiseVariance(_ k: KeyPath<Point, Double>) -> Double {
            let d = zip(points, points.dropFirst()).map { $1[keyPath: k] - $0[keyPath: k] }
            return d.reduce(0) { $0 + $1 * $1 } / Double(max(1, d.count)) / 2
        }
        let scale = (1 / Double(a.count) + 1 / Double(b.count)).squareRoot()
        let dr = mean(b, rKey) - mean(a, rKey), dR = mean(b, RKey) - mean(a, RKey)
        let ser = noiseVariance(rKey).squareRoot() * scale, seR = noiseVariance(RKey).squareRoot() * scale
        guard dr >= minRise, -dR >= minFall, dr >= z * ser, -dR >= z * seR else { return nil }
        let last = points.last!
        return Finding(signal: signal, fromVersion: recent.first!.version, toVersion: last.version,
                       verifierScoreChange: dr, rewardChange: dR, gap: last[keyPath: rKey] - last[keyPath: RKey])
    }
}
