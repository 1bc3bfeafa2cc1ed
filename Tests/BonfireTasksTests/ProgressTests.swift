// Progress: rate and ETA arithmetic on a fake clock, in-place redraws on a terminal (cut to the width), periodic
// plain lines in a log, and hostile totals.
import BonfireTasks
import XCTest

final class ProgressTests: XCTestCase {
    final class Sink { var writes: [String] = [] }

    func testTerminalRedrawsOneLineInPlaceWithRateAndETA() {
        let sink = Sink()
        var now = 0.0
        let p = Progress("sft warm-up", total: 200, unit: "steps", isTerminal: true,
                         output: { sink.writes.append($0) }, clock: { now }, width: { 200 })
        for _ in 0..<100 { now += 0.05; p.advance(detail: "loss 0.5") }
        // 100 steps in 5 s: 20 steps/s, 100 left → ETA 5s.
        let last = sink.writes.last!
        XCTAssertTrue(last.hasPrefix("\r") && last.hasSuffix("\u{1B}[K"), last)
        XCTAssertTrue(last.contains("/200") && last.contains("20.0 steps/s") && last.contains("ETA 5s") && last.contains("loss 0.5"), last)
        XCTAssertEqual(Progress.line(label: "sft", completed: 100, total: 200, unit: "steps", elapsed: 5, detail: "loss 0.5", final: false),
                       "sft  100/200   50.0%  20.0 steps/s  ETA 5s  loss 0.5")
        XCTAssertLessThanOrEqual(sink.writes.count, 26, "redrawn at most every 0.2 s, not every step")
        XCTAssertFalse(sink.writes.contains { $0.contains("\n") }, "no new lines until finish")
        p.finish()
        p.finish()
        XCTAssertTrue(sink.writes.last!.hasSuffix("\n") && sink.writes.last!.contains("done in 5s"))
        XCTAssertEqual(sink.writes.filter { $0.contains("\n") }.count, 1)
        p.advance()   // after finish: ignored
        XCTAssertEqual(sink.writes.filter { $0.contains("\n") }.count, 1)
    }

    func testNarrowTerminalLinesAreCutNotWrapped() {
        let sink = Sink()
        var now = 0.0
        let p = Progress("eval", total: 10, isTerminal: true, output: { sink.writes.append($0) }, clock: { now }, width: { 30 })
        now = 1; p.advance(detail: String(repeating: "x", count: 200))
        let visible = sink.writes.last!.dropFirst().replacingOccurrences(of: "\u{1B}[K", with: "")
        XCTAssertLessThanOrEqual(visible.count, 29, visible)
    }

    func testLogModePrintsPlainPeriodicLines() {
        let sink = Sink()
        var now = 0.0
        let p = Progress("train", total: 1000, isTerminal: false, output: { sink.writes.append($0) }, clock: { now })
        for _ in 0..<1000 { now += 0.1; p.advance() }   // 100 s, a line every 10 s
        p.finish()
        XCTAssertTrue((10...12).contains(sink.writes.count), "\(sink.writes.count) lines")
        XCTAssertFalse(sink.writes.contains { $0.contains("\r") || $0.contains("\u{1B}") })
        XCTAssertTrue(sink.writes.last!.contains("1000/1000") && sink.writes.last!.contains("done in 1m40s"), sink.writes.last!)
    }

    func testUnknownOrHostileTotalsAndDurations() {
        XCTAssertEqual(Progress.line(label: "x", completed: 5, total: nil, unit: "items", elapsed: 0, detail: "", final: false),
                       "x  5  – items/s")
        let p = Progress("x", total: -3, isTerminal: false, output: { _ in }, clock: { 0 })
        XCTAssertNil(p.total)
        p.advance(by: Int.max); p.advance(by: 5)
        XCTAssertEqual(p.completed, Int.max, "saturates, no overflow trap")
        p.update(completed: 3)
        XCTAssertEqual(p.completed, Int.max, "never moves backwards")
        XCTAssertTrue(Progress.line(label: "x", completed: 0, total: 10, unit: "s", elapsed: 5, detail: "", final: false).contains("ETA –"))
        XCTAssertEqual(Progress.duration(42), "42s")
        XCTAssertEqual(Progress.duration(153), "2m33s")
        XCTAssertEqual(Progress.duration(3900), "1h05m")
        XCTAssertEqual(Progress.duration(.infinity), "–")
        XCTAssertEqual(Progress.duration(1e9), "> 99h")
        XCTAssertEqual(Progress.duration(-1), "–")
    }
}
