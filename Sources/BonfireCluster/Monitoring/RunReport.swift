// `bonfire report <run>`: one self-contained HTML page (inline SVG charts, inline CSS, no scripts, no external
// resources) summarising a run from its run directory: learning curves, pass@N / Bo-N against N and against
// temperature, pass@N over versions, per-actor throughput, staleness over time, r-vs-R curves, and the resolved
// config. Everything shown comes from config.json, metrics.jsonl and eval/*.json; every string is HTML-escaped.
import Foundation

package enum RunReport {
    package struct Series {
        package var name: String
        package var points: [(x: Double, y: Double)]
        package init(name: String, points: [(x: Double, y: Double)]) { self.name = name; self.points = points }
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"]

    package static func escape(_ s: String) -> String {
        var o = ""
        o.reserveCapacity(s.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default:
                if c.value < 0x20 && c != "\n" && c != "\t" { o += "\u{FFFD}" } else { o.unicodeScalars.append(c) }
            }
        }
        return o
    }

    static func num(_ x: Double) -> String {
        guard x.isFinite else { return "–" }
        if x == x.rounded(), abs(x) < 1e9 { return String(Int(x)) }
        let a = abs(x)
        if a >= 1e4 || a < 1e-3 { return String(format: "%.2e", x) }
        return String(format: a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : "%.3g", x)
    }

    /// "Nice" tick values covering lo...hi.
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo, (hi - lo).isFinite else { return [lo] }
        let raw = (hi - lo) / Double(count)
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = ceil(lo / step) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9, out.count < 50 { out.append(t); t += step }
        return out
    }

    /// An inline SVG line chart; non-finite points are skipped; empty input gives a "no data" panel.
    package static func lineChart(title: String, xLabel: String, yLabel: String, series: [Series],
                                  width: Int = 560, height: Int = 300, logX: Bool = false) -> String {
        let W = Double(width), H = Double(height)
        let left = 62.0, right = 14.0, top = 30.0, bottom = 46.0
        let tx: (Double) -> Double = { logX ? log2(max($0, 1e-12)) : $0 }
        let clean = series.map { s in Series(name: s.name, points: s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) }) }
            .filter { !$0.points.isEmpty }
        var svg = "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 \(width) \(height)\" width=\"\(width)\" height=\"\(height)\">"
        svg += "<title>\(escape(title))</title>"
        svg += "<text x=\"\(Int(W / 2))\" y=\"18\" text-anchor=\"middle\" class=\"t\">\(escape(title))</text>"
        guard !clean.isEmpty else {
            svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(W - left - right)\" height=\"\(H - top - bottom)\" class=\"frame\"/>"
            svg += "<text x=\"\(Int(W / 2))\" y=\"\(Int(H / 2))\" text-anchor=\"middle\" class=\"nodata\">no data in this run</text></svg>"
            return svg
        }
        let xs = clean.flatMap { $0.points.map { tx($0.x) } }, ys = clean.flatMap { $0.points.map(\.y) }
        var x0 = xs.min()!, x1 = xs.max()!, y0 = ys.min()!, y1 = ys.max()!
        if x1 - x0 < 1e-12 { x0 -= 1; x1 += 1 }
        if y1 - y0 < 1e-12 { let d = max(abs(y0) * 0.1, 0.5); y0 -= d; y1 += d }
        let pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (tx(x) - x0) / (x1 - x0) * (W - left - right) }
        func py(_ y: Double) -> Double { H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom) }
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(W - left - right)\" height=\"\(H - top - bottom)\" class=\"frame\"/>"
        for t in ticks(y0, y1) {
            let y = String(format: "%.1f", py(t))
            svg += "<line x1=\"\(left)\" x2=\"\(W - right)\" y1=\"\(y)\" y2=\"\(y)\" class=\"grid\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y)\" text-anchor=\"end\" dy=\"4\" class=\"tick\">\(num(t))</text>"
        }
        let xTicks: [Double] = logX ? ticks(x0, x1).filter { $0 == $0.rounded() }.map { pow(2, $0) } : ticks(x0, x1)
        for t in xTicks {
            let x = String(format: "%.1f", px(t))
            svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(H - bottom)\" y2=\"\(H - bottom + 4)\" class=\"axis\"/>"
            svg += "<text x=\"\(x)\" y=\"\(H - bottom + 16)\" text-anchor=\"middle\" class=\"tick\">\(num(t))</text>"
        }
        svg += "<text x=\"\(Int((left + W - right) / 2))\" y=\"\(Int(H - 8))\" text-anchor=\"middle\" class=\"lab\">\(escape(xLabel))</text>"
        svg += "<text transform=\"translate(14 \(Int((top + H - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\" class=\"lab\">\(escape(yLabel))</text>"
        for (i, s) in clean.enumerated() {
            let color = palette[i % palette.count]
            let pts = s.points.sorted { $0.x < $1.x }
            let path = pts.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.6\" points=\"\(path)\"/>"
            if pts.count <= 40 {
                for p in pts { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"\(color)\"/>", px(p.x), py(p.y)) }
            }
            let ly = top + 14 + Double(i) * 15
            svg += "<rect x=\"\(left + 8)\" y=\"\(ly - 8)\" width=\"10\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(left + 22)\" y=\"\(ly + 1)\" class=\"leg\">\(escape(s.name))</text>"
        }
        return svg + "</svg>"
    }

    /// Series of `key` over policy versions from the lines of `role` (nil role: any role).
    static func series(_ records: [MetricsRecord], _ key: String, role: String? = nil, name: String? = nil, byTime t0: Double? = nil) -> Series {
        Series(name: name ?? key, points: records.compactMap { r in
            guard role == nil || r.role == role, let v = r.values[key] else { return nil }
            return (t0.map { r.time - $0 } ?? Double(r.version), v)
        })
    }

    /// The whole page.
    package static func html(runDirectory url: URL, now: Date = Date()) throws -> String {
        let status = try StatusReport.load(runDirectory: url, now: now)
        let tail = MetricsTail(url: url.appendingPathComponent("metrics.jsonl"))
        while !tail.poll().isEmpty {}
        let records = tail.records
        var tables: [EvalTable] = []
        for (_, e) in RunDirectory.versionedFiles(in: url.appendingPathComponent("eval"), suffix: ".json") {
            if let d = try? Data(contentsOf: e), let t = try? JSONDecoder().decode(EvalTable.self, from: d) { tables.append(t) }
        }
        let configText = (try? String(contentsOf: url.appendingPathComponent("config.json"), encoding: .utf8)) ?? "(config.json missing)"
        let t0 = records.map(\.time).filter(\.isFinite).min() ?? 0

        var charts: [(String, String)] = []   // (section, svg)
        // Learning curves (learner lines, by version).
        let learnerKeys = Set(records.filter { $0.role == "learner" }.flatMap { $0.values.keys })
        let curveKeys = ["loss/policy", "loss/total", "loss/value", "train/reward_mean", "train/group_pass_rate",
                         "train/entropy", "train/grad_norm", "env/episode_return"].filter(learnerKeys.contains)
        for k in curveKeys.isEmpty ? ["loss/policy"] : curveKeys {
            charts.append(("Learning curves", lineChart(title: k, xLabel: "policy version", yLabel: k,
                                                        series: [series(records, k, role: "learner")])))
        }
        // Evaluation.
        if let latest = tables.last {
            let temps = Array(Set(latest.rows.map(\.temperature))).sorted()
            let ns = Array(Set(latest.rows.map(\.n))).sorted()
            func vsN(_ value: (EvalTable.Row) -> Double, _ label: String) -> String {
                lineChart(title: "\(label) vs N (v\(latest.version), \(latest.prompts) prompts)", xLabel: "N", yLabel: label,
                          series: temps.map { t in Series(name: "T=\(num(t))", points: latest.rows.filter { $0.temperature == t }
                                                            .map { (Double($0.n), value($0)) }) }, logX: true)
            }
            func vsT(_ value: (EvalTable.Row) -> Double, _ label: String) -> String {
                lineChart(title: "\(label) vs temperature (v\(latest.version))", xLabel: "temperature", yLabel: label,
                          series: ns.map { n in Series(name: "N=\(n)", points: latest.rows.filter { $0.n == n }
                                                          .map { ($0.temperature, value($0)) }) })
            }
            charts.append(("Evaluation", vsN(\.passAtN, "pass@N")))
            charts.append(("Evaluation", vsN(\.boN, "Bo-N accuracy")))
            charts.append(("Evaluation", vsT(\.passAtN, "pass@N")))
            charts.append(("Evaluation", vsT(\.boN, "Bo-N accuracy")))
            let t = temps.first ?? 1
            charts.append(("Evaluation", lineChart(title: "pass@N and Bo-N over training (T=\(num(t)))", xLabel: "policy version", yLabel: "accuracy",
                series: ns.flatMap { n in [
                    Series(name: "pass@\(n)", points: tables.compactMap { tb in tb.rows.first { $0.n == n && $0.temperature == t }.map { (Double(tb.version), $0.passAtN) } }),
                    Series(name: "Bo-\(n)", points: tables.compactMap { tb in tb.rows.first { $0.n == n && $0.temperature == t }.map { (Double(tb.version), $0.boN) } }),
                ] })))
        } else {
            charts.append(("Evaluation", lineChart(title: "pass@N / Bo-N", xLabel: "N", yLabel: "accuracy", series: [])))
        }
        // Throughput per actor (and the learner), over wall time.
        let actors = Array(Set(records.map(\.role).filter { $0.hasPrefix("actor") })).sorted()
        charts.append(("Throughput", lineChart(title: "samples/s per actor", xLabel: "seconds since start", yLabel: "samples/s",
            series: actors.map { series(records, MetricKey.samplesPerSecond, role: $0, name: $0, byTime: t0) }
                + [series(records, MetricKey.samplesPerSecond, role: "coordinator", name: "all (coordinator)", byTime: t0)])))
        charts.append(("Throughput", lineChart(title: "learner updates/s", xLabel: "seconds since start", yLabel: "steps/s",
            series: [series(records, MetricKey.stepsPerSecond, role: "coordinator", name: "steps/s", byTime: t0)])))
        // Staleness.
        charts.append(("Staleness", lineChart(title: "mean lag of accepted rollouts", xLabel: "policy version", yLabel: "versions",
            series: [series(records, MetricKey.meanLag, role: "learner", name: "mean lag")])))
        charts.append(("Staleness", lineChart(title: "rollouts dropped / accepted stale (cumulative)", xLabel: "policy version", yLabel: "count",
            series: [series(records, MetricKey.dropped, name: "dropped (too stale)"),
                     series(records, MetricKey.acceptedStale, name: "accepted with lag > 0")])))
        // r vs R.
        charts.append(("Verifier score r vs true reward R", lineChart(title: "r vs R per policy version", xLabel: "policy version", yLabel: "mean",
            series: [series(records, MonitoringKey.verifierScoreMean, role: "learner", name: "r (all samples)"),
                     series(records, MonitoringKey.rewardMean, role: "learner", name: "R (all samples)"),
                     series(records, MonitoringKey.pickVerifierScoreMean, role: "learner", name: "r (BoN picks)"),
                     series(records, MonitoringKey.pickRewardMean, role: "learner", name: "R (BoN picks)")])))
        let alarms = records.filter { $0.values[MonitoringKey.hackingAlarm] == 1 }.map(\.version)

        var h = """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Bonfire run \(escape(status.runID))</title>
        <style>
        body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#222;background:#fff}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
        .grid2{display:flex;flex-wrap:wrap;gap:12px} .chart{border:1px solid #eee;background:#fcfcfc;max-width:100%;height:auto}
        .t{font-size:13px;font-weight:600} .tick{font-size:10px;fill:#555} .lab{font-size:11px;fill:#333} .leg{font-size:11px}
        .frame{fill:none;stroke:#bbb} .grid{stroke:#eee} .axis{stroke:#999} .nodata{font-size:13px;fill:#999}
        table{border-collapse:collapse} td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:right}
        td:first-child,th:first-child{text-align:left} pre{background:#f6f6f6;padding:10px;overflow:auto;max-height:600px;font-size:12px}
        .warn{color:#b00020;font-weight:600}
        </style></head><body>
        <h1>Bonfire run \(escape(status.runID))</h1>
        <div>\(escape(status.algorithm)) on \(escape(status.task)) · state: \(escape(status.state.rawValue)) · latest version \(status.latestVersion.map(String.init) ?? "–") · \(status.metricLines) metric lines\(status.malformedLines > 0 ? " (\(status.malformedLines) malformed, skipped)" : "") · directory \(escape(url.path)) · generated \(escape(ISO8601DateFormatter().string(from: now)))</div>

        """
        for p in status.problems { h += "<div class=\"warn\">problem: \(escape(p))</div>\n" }
        if !alarms.isEmpty {
            h += "<div class=\"warn\">reward-hacking alarm raised at version(s) \(alarms.prefix(20).map(String.init).joined(separator: ", "))</div>\n"
        }
        var section = ""
        for (name, svg) in charts {
            if name != section {
                if !section.isEmpty { h += "</div>\n" }
                h += "<h2>\(escape(name))</h2>\n<div class=\"grid2\">\n"
                section = name
            }
            h += svg + "\n"
        }
        if !section.isEmpty { h += "</div>\n" }
        if let latest = tables.last {
            h += "<h2>Latest evaluation table (v\(latest.version), \(latest.prompts) prompts)</h2>\n<table><tr><th>T</th><th>N</th><th>pass@N</th><th>Bo-N</th></tr>\n"
            for r in latest.rows {
                h += "<tr><td>\(num(r.temperature))</td><td>\(r.n)</td><td>\(String(format: "%.3f", r.passAtN))</td><td>\(String(format: "%.3f", r.boN))</td></tr>\n"
            }
            h += "</table>\n"
        }
        h += "<h2>Resolved config</h2>\n<pre>\(escape(configText))</pre>\n</body></html>\n"
        return h
    }

    /// Writes the page to `output` (default <run>/report.html) atomically; returns its URL.
    @discardableResult
    package static func write(runDirectory url: URL, to output: URL? = nil, now: Date = Date()) throws -> URL {
        let page = try html(runDirectory: url, now: now)
        let out = output ?? url.appendingPathComponent("report.html")
        do { try Data(page.utf8).write(to: out, options: .atomic) } catch {
            throw MonitoringError("cannot write the report to \(out.path) (\(error.localizedDescription)); pass --output <file> elsewhere")
        }
        return out
    }
}
