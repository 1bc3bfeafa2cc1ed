// `bonfire-bench wire`'s methodology (WireBenchPlan.swift): flag checks with hostile values, message counts, the
// paired round order, the paired-ratio statistics, thread placement and pinning (the calling thread and ZeroMQ's
// I/O thread), on the real kernel interfaces.
import BonfireWire
import Foundation
import XCTest

final class WireBenchPlanTests: XCTestCase {
    private func plan(rounds: Int = 9, warmup: Int = 1, kib: [Int] = [1, 64, 1024], scale: Double = 1,
                      hwm: Int32 = 64) throws(WireBenchPlanError) -> WireBenchPlan {
        try WireBenchPlan(rounds: rounds, warmupRounds: warmup, kib: kib, scale: scale, highWaterMark: hwm)
    }

    private func rejects(_ flag: String, _ make: () throws(WireBenchPlanError) -> WireBenchPlan,
                         file: StaticString = #filePath, line: UInt = #line) {
        do {
            let p = try make()
            XCTFail("accepted \(p)", file: file, line: line)
        } catch {
            XCTAssertTrue(error.description.contains(flag), "message \"\(error)\" does not name \(flag)", file: file, line: line)
        }
    }

    func testDefaultsAreAccepted() throws {
        let p = try plan()
        XCTAssertEqual(p.rounds, 9)
        XCTAssertEqual(p.kib, [1, 64, 1024])
        XCTAssertNoThrow(try plan(rounds: 1, warmup: 0, kib: [WireBenchPlan.maxKiB], scale: 1e-9, hwm: 1))
    }

    func testHostileRoundsWarmupSizesScaleAndHWMAreRejectedNamingTheFlag() {
        for r in [0, -1, Int.min, 10_001, Int.max] { rejects("--rounds") { () throws(WireBenchPlanError) in try plan(rounds: r) } }
        for w in [-1, Int.min, 1001, Int.max] { rejects("--warmup") { () throws(WireBenchPlanError) in try plan(warmup: w) } }
        rejects("--kib") { () throws(WireBenchPlanError) in try plan(kib: []) }
        for k in [0, -64, Int.min, WireBenchPlan.maxKiB + 1, Int.max] {
            rejects("--kib") { () throws(WireBenchPlanError) in try plan(kib: [64, k]) }
        }
        for s in [0, -1, -0.0, .nan, .infinity, -.infinity] {
            rejects("--scale") { () throws(WireBenchPlanError) in try plan(scale: s) }
        }
        for h: Int32 in [0, -1, .min] { rejects("--hwm") { () throws(WireBenchPlanError) in try plan(hwm: h) } }
    }

    func testMessageCountsAreAboutHalfAGigabyteCappedAndClamped() throws {
        let p = try plan()
        XCTAssertEqual(p.messagesPerRound(kib: 1), 100_000)
        XCTAssertEqual(p.messagesPerRound(kib: 64), 8_192)
        XCTAssertEqual(p.messagesPerRound(kib: 1024), 512)
        XCTAssertEqual(p.messagesPerRound(kib: WireBenchPlan.maxKiB), 32)
        XCTAssertEqual(try plan(scale: 0.5).messagesPerRound(kib: 64), 4_096)
        // Tiny and huge scales stay inside 10…maxMessagesPerRound (no trap converting a huge Double to Int).
        XCTAssertEqual(try plan(scale: 1e-12).messagesPerRound(kib: 1), 10)
        XCTAssertEqual(try plan(scale: 1e300).messagesPerRound(kib: 1), WireBenchPlan.maxMessagesPerRound)
        XCTAssertEqual(try plan(scale: .greatestFiniteMagnitude).messagesPerRound(kib: 1024), WireBenchPlan.maxMessagesPerRound)
    }

    func testRoundOrderReversesEveryRoundSoEachPathRunsInEveryPosition() {
        XCTAssertEqual(WireBenchPlan.order(round: 0), [.raw, .ours, .oursAdmission])
        XCTAssertEqual(WireBenchPlan.order(round: 1), [.oursAdmission, .ours, .raw])
        XCTAssertEqual(WireBenchPlan.order(round: 2), WireBenchPlan.order(round: 0))
        var firsts: [WireBenchPath: Int] = [:], lasts: [WireBenchPath: Int] = [:]
        for r in 0..<10 {
            let o = WireBenchPlan.order(round: r)
            XCTAssertEqual(Set(o), Set(WireBenchPath.allCases), "round \(r) must run every path once")
            XCTAssertEqual(o.count, WireBenchPath.allCases.count)
            firsts[o.first!, default: 0] += 1
            lasts[o.last!, default: 0] += 1
        }
        XCTAssertEqual(firsts[.raw], 5)
        XCTAssertEqual(lasts[.raw], 5)
    }

    func testPairedRatiosAreBaselineOverCandidatePerRound() {
        // Round 2 is slow for both sides: paired, its ratio is still 1; best/best would say 1.0 too, but a round
        // slow for one side only moves one ratio, not the median.
        let r = PairedRatios(baseline: [1.0, 2.0, 1.0, 1.0, 1.0], candidate: [1.25, 2.0, 1.0, 2.0, 0.8])
        XCTAssertEqual(r.sorted, [0.5, 0.8, 1.0, 1.0, 1.25])
        XCTAssertEqual(r.median, 1.0)
        XCTAssertEqual(r.min, 0.5)
        XCTAssertEqual(r.max, 1.25)
        XCTAssertEqual(PairedRatios(baseline: [1, 1], candidate: [2, 1]).median, 0.75)
    }

    func testPairedRatiosLeaveOutRoundsWithoutAUsableTimeAndAreNaNWhenEmpty() {
        let r = PairedRatios(baseline: [1, 0, .nan, 1, -1, .infinity, 2], candidate: [2, 1, 1, .nan, 1, 1, 0])
        XCTAssertEqual(r.sorted, [0.5])
        let empty = PairedRatios(baseline: [], candidate: [])
        XCTAssertEqual(empty.count, 0)
        XCTAssertTrue(empty.median.isNaN && empty.min.isNaN && empty.max.isNaN)
        XCTAssertTrue(PairedRatios.median([]).isNaN)
        XCTAssertEqual(PairedRatios.median([3, 1, 2]), 2)
    }

    func testPlacementsPinToTheAllowedCPUsAndNeedTwo() throws {
        XCTAssertNil(try WireBenchPlacement.os.cpus(allowed: []))
        XCTAssertNil(try WireBenchPlacement.os.cpus(allowed: [0]))
        XCTAssertEqual(try WireBenchPlacement.ioAlone.cpus(allowed: [2, 5, 7]), WireBenchCPUs(sender: 5, receiver: 5, io: 2))
        XCTAssertEqual(try WireBenchPlacement.senderAlone.cpus(allowed: [2, 5]), WireBenchCPUs(sender: 2, receiver: 5, io: 5))
        XCTAssertEqual(try WireBenchPlacement.receiverAlone.cpus(allowed: [0, 1]), WireBenchCPUs(sender: 1, receiver: 0, io: 1))
        // sides: two contexts, each side with its own I/O thread on its own CPU.
        XCTAssertEqual(try WireBenchPlacement.sides.cpus(allowed: [0, 1]), WireBenchCPUs(sender: 0, receiver: 1, io: 1, senderIO: 0))
        XCTAssertTrue(WireBenchPlacement.sides.describe(try WireBenchPlacement.sides.cpus(allowed: [0, 1])).contains("two ZeroMQ contexts"))
        for p in WireBenchPlacement.allCases where p != .os {
            for allowed in [[], [3]] {
                XCTAssertThrowsError(try p.cpus(allowed: allowed)) { e in
                    XCTAssertTrue("\(e)".contains("--placement os"), "\(e)")
                }
            }
        }
        XCTAssertEqual(WireBenchPlacement(rawValue: "io-alone"), .ioAlone)
        XCTAssertNil(WireBenchPlacement(rawValue: "IO_ALONE"))
    }

    func testPinningTheCallingThreadMovesItAndRestores() throws {
        let before = ThreadAffinity.current()
        try XCTSkipIf(before.isEmpty, "no sched_getaffinity here")
        let target = before.last!
        let done = expectation(description: "pinned thread")
        let result = Box()
        let t = Thread {
            do {
                try ThreadAffinity.set([target])
                result.value = (ThreadAffinity.current(), ThreadAffinity.currentCPU())
                try ThreadAffinity.set(before)
                result.restored = ThreadAffinity.current()
            } catch { result.error = "\(error)" }
            done.fulfill()
        }
        t.start()
        wait(for: [done], timeout: 10)
        XCTAssertNil(result.error)
        XCTAssertEqual(result.value?.0, [target])
        XCTAssertEqual(result.value?.1, target)
        XCTAssertEqual(result.restored, before)
        XCTAssertEqual(ThreadAffinity.current(), before, "only the pinned thread changes")
        // Hostile CPUs: negative, past cpu_set_t, and none at all are refused with a message, not a trap.
        for bad in [[-1], [Int.max], [1 << 20], []] {
            XCTAssertThrowsError(try ThreadAffinity.set(bad), "\(bad)")
        }
        XCTAssertEqual(ThreadAffinity.current(), before)
    }

    func testZeroMQIOThreadRunsOnlyOnTheGivenCPUAndForeignCPUsAreRefused() throws {
        let allowed = ThreadAffinity.current()
        try XCTSkipIf(allowed.count < 2, "needs two CPUs")
        let cpu = allowed.last!
        func ioThreads() -> Set<String> {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            return Set(tasks.filter { (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8))?.hasPrefix("ZMQbg/IO") == true })
        }
        let earlier = ioThreads()
        let ctx = try ZMQContext(ioThreadCPUs: [cpu])
        let pull = try ZMQSocket(ctx, .pull)  // starts the context's threads
        try pull.bind("tcp://127.0.0.1:*")
        var mine = ioThreads().subtracting(earlier)
        let deadline = Date().addingTimeInterval(5)  // libzmq names its threads once they run
        while mine.isEmpty && Date() < deadline { usleep(1000); mine = ioThreads().subtracting(earlier) }
        XCTAssertEqual(mine.count, 1, "one new I/O thread expected, found \(mine)")
        for tid in mine {
            let status = try String(contentsOfFile: "/proc/self/task/\(tid)/status", encoding: .utf8)
            let line = status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") }
            XCTAssertEqual(line?.split(separator: "\t").last.map(String.init), "\(cpu)")
        }
        pull.close()
        for bad in [-1, Int.max, 100_000] {
            XCTAssertThrowsError(try ZMQContext(ioThreadCPUs: [bad])) { e in
                XCTAssertTrue("\(e)".contains("not one this process may run on"), "\(e)")
            }
        }
    }
}

private final class Box: @unchecked Sendable {  // written by one thread before `fulfill`, read after `wait`
    var value: ([Int], Int)?
    var restored: [Int]?
    var error: String?
}
