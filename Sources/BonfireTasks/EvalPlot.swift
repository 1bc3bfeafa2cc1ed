// Hand-written SVG plot of an EvalReport: pass@N (solid) and Bo-N (dashed) against N on a log2 x axis, y in [0, 1],
// one colour per temperature, error bars of ±1 standard error, axis ticks and a legend; under each temperature's
// legend entry its diversity (Evaluator.swift): distinct final answers per prompt and mean token entropy (nats).

import Foundation

package enum EvalPlot {
    private static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    package static func svg(_ report: EvalReport, title: String? = nil) -> String {
        let W = 720.0, left = 60.0, right = 190.0, top = 40.0, bottom = 50.0
        let H = max(440.0, top + 8 + 58 * Double(report.temperatures.count) + 45)   // room for the legend
        let pw = W - left - right, ph = H - top - bottom
        let ns = report.nList.sorted()
        let lo = log2(Double(ns.first ?? 1)), hi = max(log2(Double(ns.last ?? 1)), lo + 1)
        func x(_ n: Int) -> Double { left + (log2(Double(n)) - lo) / (hi - lo) * pw }
        func y(_ v: Double) -> Double { top + (1 - min(max(v, 0), 1)) * ph }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(W))" height="\(Int(H))" viewBox="0 0 \(Int(W)) \(Int(H))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(W / 2))" y="22" text-anchor="middle" font-size="14">\(escape(title ?? defaultTitle(report)))</text>

        """
        // Grid and y ticks.
        for k in 0...5 {
            let v = Double(k) / 5
            s += "<line x1=\"\(f(left))\" y1=\"\(f(y(v)))\" x2=\"\(f(left + pw))\" y2=\"\(f(y(v)))\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(String(format: "%.1f", v))</text>\n"
        }
        for n in ns {
            s += "<line x1=\"\(f(x(n)))\" y1=\"\(f(top))\" x2=\"\(f(x(n)))\" y2=\"\(f(top + ph))\" stroke=\"#eee\"/>\n"
            s += "<text x=\"\(f(x(n)))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(n)</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"black\"/>\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(H - 12))\" text-anchor=\"middle\">N (samples per prompt, log2 scale)</text>\n"
        s += "<text x=\"16\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(f(top + ph / 2)))\">accuracy</text>\n"
        // Lines.
        for (ti, T) in report.temperatures.enumerated() {
            let c = colours[ti % colours.count]
            let rows = report.rows.filter { $0.temperature == T }.sorted { $0.n < $1.n }
            for (metric, dash) in [(\EvalRow.passAtN, ""), (\EvalRow.boN, " stroke-dasharray=\"6 4\"")] {
                let se: KeyPath<EvalRow, Double> = metric == \EvalRow.passAtN ? \EvalRow.passAtNStdErr : \EvalRow.boNStdErr
                let pts = rows.map { "\(f(x($0.n))),\(f(y($0[keyPath: metric])))" }.joined(separator: " ")
                s += "<polyline points=\"\(pts)\" fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\"\(dash)/>\n"
                for r in rows {
                    let v = r[keyPath: metric], e = r[keyPath: se]
                    s += "<line x1=\"\(f(x(r.n)))\" y1=\"\(f(y(v - e)))\" x2=\"\(f(x(r.n)))\" y2=\"\(f(y(v + e)))\" stroke=\"\(c)\"/>\n"
                    s += "<circle cx=\"\(f(x(r.n)))\" cy=\"\(f(y(v)))\" r=\"3\" fill=\"\(c)\"/>\n"
                }
            }
        }
        // Legend.
        let lx = left + pw + 16
        var ly = top + 8
        for (ti, T) in report.temperatures.enumerated() {
            let c = colours[ti % colours.count]
            s += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 24))\" y2=\"\(f(ly))\" stroke=\"\(c)\" stroke-width=\"2\"/>\n"
            s += "<text x=\"\(f(lx + 30))\" y=\"\(f(ly + 4))\">pass@N  T=\(T)</text>\n"
            ly += 18
            s += "<line x1=\"\(f(lx))\" y1=\"\(f(ly))\" x2=\"\(f(lx + 24))\" y2=\"\(f(ly))\" stroke=\"\(c)\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>\n"
            s += "<text x=\"\(f(lx + 30))\" y=\"\(f(ly + 4))\">Bo-N  T=\(T)</text>\n"
            ly += 16
            if let r = report.rows.first(where: { $0.temperature == T }), let d = r.distinctAnswers {
                let h = r.tokenEntropy.map { String(format: ", H %.2f", $0) } ?? ""
                s += "<text x=\"\(f(lx + 30))\" y=\"\(f(ly + 4))\" font-size=\"10\" fill=\"\(c)\">"
                    + String(format: "distinct %.2f", d) + h + "</text>\n"
            }
            ly += 24
        }
        s += "<text x=\"\(f(lx))\" y=\"\(f(ly + 6))\" font-size=\"10\">bars: ±1 s.e. over prompts</text>\n"
        s += "<text x=\"\(f(lx))\" y=\"\(f(ly + 20))\" font-size=\"10\">distinct: answers per prompt;</text>\n"
        s += "<text x=\"\(f(lx))\" y=\"\(f(ly + 32))\" font-size=\"10\">H: token entropy (nats)</text>\n"
        s += "</svg>\n"
        return s
    }

    /// "math test: pass@N and Bo-N (verifier v.safetensors), 100 prompts, n=64" — paths shortened to the file name.
    static func defaultTitle(_ r: EvalReport) -> String {
        var v = r.verifier
        if let slash = v.lastIndex(of: "/") { v = (v.hasPrefix("learned:") ? "learned:" : "") + v[v.index(after: slash)...] }
        return "\(r.task) \(r.split): pass@N (solid) and Bo-N (dashed, \(v)), \(r.numPrompts) prompts, n=\(r.samples)"
    }

    private static func escape(_ t: String) -> String {
        t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;")
    }
}
