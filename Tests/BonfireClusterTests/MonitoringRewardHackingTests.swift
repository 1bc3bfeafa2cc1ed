// The reward-hacking alarm on synthetic per-version (r, R) sequences: it fires when r rises while R falls (also
// under noise and when only the BoN picks diverge), stays silent on joint improvement, on degradation without an r
// rise, and on pure noise over thousands of versions, clears after recovery, and never traps on hostile input.
import BonfireCluster
import Foundation
import XCTest

final class MonitoringRewardHackingTests: XCTestCase {
    /// SplitMix64 + Box–Muller: a seeded Gaussian stream.
    struct Noise {
        var state: UInt64
        mutating func uniform() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
        }
        mutating func gaussian(_ sigma: Double) -> Double {
            sigma * (-2 * log(max(uniform(), 1e-300))).squareRoot() * cos(2 * .pi * uniform())
        }
    }

    func gap(_ r: Double, _ R: Double, pick: (Double, Double)? = nil) -> RewardGap {
        RewardGap(verifierScoreMean: r, rewardMean: R, pickVerifierScoreMean: pick?.0 ?? r, pickRewardMean: pick?.1 ?? R)
    }

    /// Feeds versions 0..<count; returns the events with their versions.
    func run(_ alarm: inout RewardHackingAlarm, count: Int, _ f: (Int) -> RewardGap) -> [(Int, RewardHackingAlarm.Event)] {
        var events: [(Int, RewardHackingAlarm.Event)] = []
        for v in 0..<count { if let e = alarm.observe(version: v, gap: f(v)) { events.append((v, e)) } }
        return events
    }

    func testFiresWhenVerifierScoreRisesWhileTrueRewardFalls() {
        var alarm = RewardHackingAlarm(MonitoringSection())   // the defaults users run: window 8, 0.02 / 0.02
        var noise = Noise(state: 7)
        // 20 healthy versions (both improve), then hacking: r +0.02/version, R −0.015/version, noise σ 0.01.
        let events = run(&alarm, count: 40) { v in
            v < 20 ? self.gap(0.3 + 0.01 * Double(v) + noise.gaussian(0.01), 0.2 + 0.008 * Double(v) + noise.gaussian(0.01))
                   : self.gap(0.5 + 0.02 * Double(v - 20) + noise.gaussian(0.01), 0.36 - 0.015 * Double(v - 20) + noise.gaussian(0.01))
        }
        XCTAssertEqual(events.count, 1, "\(events)")
        guard let (v, e) = events.first, case .raised(let f) = e else { return XCTFail("no alarm: \(events)") }
        XCTAssertGreaterThanOrEqual(v, 20)
        XCTAssertLessThanOrEqual(v, 20 + 8, "raised within one window of the onset")
        XCTAssertGreaterThan(f.verifierScoreChange, 0.02)
        XCTAssertLessThan(f.rewardChange, -0.02)
        XCTAssertTrue(alarm.isRaised)
        XCTAssertTrue(e.message.contains("reward hacking") && e.message.contains("monitoring.hackingWindow"), e.message)
    }

    /// The learned-verifier pattern (Scripts/reward-hacking-demo.sh): R collapses from 0.15 to 0 over the first 30
    /// versions while r climbs slowly, under per-version noise of a 64-sample batch. A long window judges as soon as
    /// it is full (not after two windows, by when R has nothing left to lose); the default window cannot see it.
    func testALongWindowSeesAnEarlyCollapseAsSoonAsItIsFull() {
        func sequence(_ seed: UInt64) -> (Int) -> RewardGap {
            var noise = Noise(state: seed)
            return { v in
                let R = max(0, 0.15 * (1 - Double(v) / 30)), r = 0.65 + 0.15 * (1 - exp(-Double(v) / 60))
                return self.gap(r + noise.gaussian(0.035), max(0, R + noise.gaussian(0.03)))
            }
        }
        for seed: UInt64 in [1, 2, 3] {
            var long = RewardHackingAlarm(window: 64, minRise: 0.02, minFall: 0.02)
            let events = run(&long, count: 200, sequence(seed))
            guard let (v, e) = events.first, case .raised(let f) = e else { XCTFail("seed \(seed): no alarm"); continue }
            XCTAssertEqual(v, 63, "seed \(seed): raised when the first window is full")
            XCTAssertGreaterThan(f.verifierScoreChange, 0.02)
            XCTAssertLessThan(f.rewardChange, -0.02)
            var short = RewardHackingAlarm(MonitoringSection())
            XCTAssertTrue(run(&short, count: 200, sequence(seed)).isEmpty, "seed \(seed): window 8 is too short for this noise")
        }
    }

    func testFiresOnTheBoNPicksAlone() {
        var alarm = RewardHackingAlarm(window: 8, minRise: 0.02, minFall: 0.02)
        // Population means flat; the verifier's picks drift: picked r up, picked R down.
        let events = run(&alarm, count: 24) { v in
            self.gap(0.4, 0.3, pick: (0.6 + 0.02 * Double(v), 0.5 - 0.02 * Double(v)))
        }
        guard case .raised(let f)? = events.first?.1 else { return XCTFail("\(events)") }
        XCTAssertEqual(f.signal, .bonPicks)
    }

    func testSilentOnJointImprovementDegradationAndNoise() {
        var a = RewardHackingAlarm(MonitoringSection())
        var noise = Noise(state: 42)
        XCTAssertTrue(run(&a, count: 200) { v in
            self.gap(0.2 + 0.003 * Double(v) + noise.gaussian(0.02), 0.1 + 0.003 * Double(v) + noise.gaussian(0.02))
        }.isEmpty, "joint improvement")
        var b = RewardHackingAlarm(MonitoringSection())
        XCTAssertTrue(run(&b, count: 100) { v in self.gap(0.5 + noise.gaussian(0.01), 0.5 - 0.01 * Double(v)) }.isEmpty,
                      "R falls but r does not rise: degradation, not hacking")
        // Pure noise, large relative to the thresholds, over many versions and several seeds.
        for seed in 1...5 {
            var c = RewardHackingAlarm(MonitoringSection())
            var n = Noise(state: UInt64(seed))
            let events = run(&c, count: 3000) { _ in self.gap(0.5 + n.gaussian(0.1), 0.4 + n.gaussian(0.1)) }
            XCTAssertTrue(events.isEmpty, "noise seed \(seed): \(events.prefix(3))")
        }
        // Anti-correlated noise (r and R jitter in opposite directions each version) is still noise.
        var d = RewardHackingAlarm(MonitoringSection())
        var m = Noise(state: 99)
        XCTAssertTrue(run(&d, count: 2000) { _ in let e = m.gaussian(0.05); return self.gap(0.5 + e, 0.4 - e) }.isEmpty)
    }

    func testClearsAfterRecoveryWithoutFlapping() {
        var alarm = RewardHackingAlarm(window: 8, minRise: 0.02, minFall: 0.02)
        var events = run(&alarm, count: 20) { v in self.gap(0.2 + 0.03 * Double(v), 0.8 - 0.03 * Double(v)) }
        XCTAssertEqual(events.count, 1)
        // Recovery: both flat.
        for v in 20..<60 { if let e = alarm.observe(version: v, gap: gap(0.8, 0.2)) { events.append((v, e)) } }
        XCTAssertEqual(events.count, 2, "\(events)")
        guard case .cleared(let at)? = events.last?.1 else { return XCTFail("\(events)") }
        XCTAssertGreaterThan(at, 20)
        XCTAssertFalse(alarm.isRaised)
    }

    func testHostileObservationsAreCountedNotTrapped() {
        var alarm = RewardHackingAlarm(window: 4, minRise: 0, minFall: 0)
        XCTAssertNil(alarm.observe(version: -1, gap: gap(1, 0)))   // history: max(4·4, 32) = 32 versions
        XCTAssertNil(alarm.observe(version: 1, gap: gap(.nan, 0)))
        XCTAssertNil(alarm.observe(version: 1, gap: gap(0, .infinity)))
        XCTAssertEqual(alarm.rejected, 3)
        for v in [10, 10, 10] + Array(11..<42) { _ = alarm.observe(version: v, gap: gap(0.5, 0.5)) }   // duplicates averaged
        XCTAssertEqual(alarm.history.map(\.version), Array(10..<42))
        _ = alarm.observe(version: 2, gap: gap(0.5, 0.5))                                          // older than the window
        XCTAssertEqual(alarm.rejected, 4)
        _ = alarm.observe(version: Int.max, gap: gap(1e308, -1e308))
        _ = alarm.observe(version: 11, gap: gap(0.1, 0.9))                                         // late, in the window
        XCTAssertEqual(alarm.history.count, 32)
        XCTAssertNil(RewardGap.of(groups: []))
        XCTAssertNil(RewardGap.of(groups: [(scores: [1, 2], rewards: [1])]), "mismatched lengths skipped")
        let g = RewardGap.of(groups: [(scores: [0.2, 0.9, 0.9], rewards: [1, 0, 1]), (scores: [.nan], rewards: [1]), (scores: [0.5], rewards: [1])])
        XCTAssertEqual(g?.verifierScoreMean ?? 0, 2.5 / 4, accuracy: 1e-12)
        XCTAssertEqual(g?.rewardMean, 0.75)
        XCTAssertEqual(g?.pickVerifierScoreMean, 0.7)   // picks: first 0.9 (R 0), then 0.5 (R 1)
        XCTAssertEqual(g?.pickRewardMean, 0.5)
        XCTAssertEqual(RewardGap(metrics: g!.metrics), g)
    }
}
