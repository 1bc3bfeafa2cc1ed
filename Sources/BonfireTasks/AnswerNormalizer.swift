// Final-answer extraction and a normalising equality for maths problems in the GSM8K and MATH conventions.
//
// Extraction (`FinalAnswer.extract`), from a dataset solution or a model response:
//   1. the content of the last `\boxed{…}` (or `\fbox{…}`), braces matched with nesting (`\boxed{\frac{1}{2}}`);
//      `\boxed 5` (one token, no braces) is accepted too; an unclosed brace is no answer;
//   2. else the rest of the line after the last `####` (GSM8K);
//   3. else nothing: the response is malformed (R = 0 with that reason).
// Normalisation (`AnswerNormalizer.normalize`) then canonicalises the text:
//   - white space, `$`, `\$`, `\(`…`\)`, `\[`…`\]`, LaTeX spacing (`\,` `\;` `\!` `\ ` `~`), `\left`/`\right`,
//     `^\circ`/`°`, `\%`/`%`, a trailing `.`, and `\text{…}`/`\mbox{…}`/`\mathrm{…}` wrappers (the content is kept)
//     are removed; `\dfrac`/`\tfrac` → `\frac`; U+2212 minus → "-";
//   - a number becomes an exact reduced fraction: integers with or without thousands separators ("1,234,567",
//     "1 234" after spacing removal, with groups of exactly three digits), decimals ("0.50", ".5"), plain fractions
//     ("-3/4"), `\frac{a}{b}` and `\frac ab` with integer or decimal a and b, and a leading sign; so "0.5", "1/2",
//     "\frac{1}{2}", "\dfrac12" and "$\frac{2}{4}$." are all "1/2"; "-0" is "0";
//   - anything else (expressions, tuples, intervals, words) is compared as the cleaned text.
// Numbers with more than 18 significant digits are compared as cleaned text (no overflow, no trap).

package enum FinalAnswer {
    /// The extracted final answer, or nil when the text has neither a `\boxed{…}` nor a `####` answer.
    package static func extract(_ text: String) -> String? {
        if let boxed = lastBoxed(text) { return boxed }
        if let r = text.range(of: "####", options: .backwards) {
            let rest = text[r.upperBound...]
            let line = rest.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let t = line.trimmingCharacters(in: .whitespaces)
            return t.isEmpty ? nil : t
        }
        return nil
    }

    /// Content of the last `\boxed{…}` / `\fbox{…}` with nested braces, or the token after `\boxed `.
    package static func lastBoxed(_ text: String) -> String? {
        let s = Array(text.unicodeScalars)
        var best: String? = nil
        var i = 0
        while i < s.count {
            var matched: Int? = nil
            for cmd in ["\\boxed", "\\fbox"] {
                let c = Array(cmd.unicodeScalars)
                if i + c.count <= s.count && Array(s[i..<(i + c.count)]) == c { matched = c.count; break }
            }
            guard let len = matched else { i += 1; continue }
            var j = i + len
            if j < s.count && s[j] == "{" {
                var depth = 0
                var k = j
                var end: Int? = nil
                while k < s.count {
                    if s[k] == "\\" { k += 2; continue }   // escaped brace or command
                    if s[k] == "{" { depth += 1 } else if s[k] == "}" {
                        depth -= 1
                        if depth == 0 { end = k; break }
                    }
                    k += 1
                }
                if let end {
                    best = String(String.UnicodeScalarView(s[(j + 1)..<end]))
                    i = end + 1
                    continue
                }
                i = j
                continue
            } else if j < s.count && s[j] == " " {
                while j < s.count && s[j] == " " { j += 1 }
                var k = j
                while k < s.count && !s[k].properties.isWhitespace && s[k] != "$" { k += 1 }
                if k > j { best = String(String.UnicodeScalarView(s[j..<k])) }
                i = k
                continue
            }
            i = j
        }
        return best
    }
}

package enum AnswerNormalizer {
    /// The canonical form of an answer (see the file header).
    package static func normalize(_ answer: String) -> String {
        let t = clean(answer)
        if let q = Rational.parse(t) { return q.description }
        return t
    }

    /// True when the two answers normalise to the same text.
    package static func equivalent(_ a: String, _ b: String) -> Bool { normalize(a) == normalize(b) }

    /// Removes presentation (see the file header), keeping the mathematical content.
    package static func clean(_ answer: String) -> String {
        var s = answer
        s = s.replacingOccurrences(of: "\u{2212}", with: "-")
        for wrapper in ["\\text", "\\textbf", "\\mbox", "\\mathrm", "\\mathbf"] { s = unwrap(s, command: wrapper) }
        let removals = ["\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "\\$", "\\%",
                        "^\\circ", "^{\\circ}", "\\circ", "°", "\\(", "\\)", "\\[", "\\]", "$", "%", "~"]
        for r in removals { s = s.replacingOccurrences(of: r, with: "") }
        s = s.replacingOccurrences(of: "\\dfrac", with: "\\frac").replacingOccurrences(of: "\\tfrac", with: "\\frac")
        s = String(s.unicodeScalars.filter { !$0.properties.isWhitespace }.map(Character.init))
        while s.hasSuffix(".") { s.removeLast() }
        return s
    }

    /// `\cmd{x}` → `x` for every occurrence (nested braces kept balanced).
    static func unwrap(_ text: String, command: String) -> String {
        var s = Array(text.unicodeScalars)
        let c = Array((command + "{").unicodeScalars)
        var i = 0
        while i + c.count <= s.count {
            guard Array(s[i..<(i + c.count)]) == c else { i += 1; continue }
            var depth = 1
            var k = i + c.count
            while k < s.count && depth > 0 {
                if s[k] == "{" { depth += 1 } else if s[k] == "}" { depth -= 1 }
                if depth > 0 { k += 1 }
            }
            guard k < s.count else { break }   // unclosed: leave as is
            s.remove(at: k)
            s.removeSubrange(i..<(i + c.count))
        }
        return String(String.UnicodeScalarView(s))
    }
}

/// An exact rational p/q (q > 0, lowest terms) with 64-bit parts; parsing never traps (overflow → nil).
package struct Rational: Equatable, CustomStringConvertible {
    package let p: Int64
    package let q: Int64

    package init?(_ p: Int64, _ q: Int64) {
        guard q != 0, p != .min, q != .min else { return nil }
        var a = p, b = q
        if b < 0 { a = -a; b = -b }
        let g = Rational.gcd(Swift.abs(a), b)
        self.p = a / g
        self.q = b / g
    }

    static func gcd(_ a: Int64, _ b: Int64) -> Int64 {
        var x = a, y = b
        while y != 0 { (x, y) = (y, x % y) }
        return x == 0 ? 1 : x
    }

    package var description: String { q == 1 ? String(p) : "\(p)/\(q)" }

    /// Parses a cleaned answer: [sign] number, [sign] number/number, [sign]\frac{number}{number}, [sign]\frac ab.
    package static func parse(_ text: String) -> Rational? {
        var s = Substring(text)
        var negative = false
        while let f = s.first, f == "+" || f == "-" {
            if f == "-" { negative.toggle() }
            s = s.dropFirst()
        }
        guard !s.isEmpty else { return nil }
        var value: Rational?
        if s.hasPrefix("\\frac") {
            var rest = s.dropFirst(5)
            guard let num = fracArgument(&rest), let den = fracArgument(&rest), rest.isEmpty,
                  let a = decimal(Substring(num)), let b = decimal(Substring(den)) else { return nil }
            value = a.divided(by: b)
        } else if let slash = s.firstIndex(of: "/") {
            guard let a = decimal(s[..<slash]), let b = decimal(s[s.index(after: slash)...]) else { return nil }
            value = a.divided(by: b)
        } else {
            value = decimal(s)
        }
        guard let v = value else { return nil }
        return negative ? Rational(-v.p, v.q) : v
    }

    /// One argument of \frac: "{…}" or a single character.
    static func fracArgument(_ s: inout Substring) -> String? {
        guard let f = s.first else { return nil }
        if f == "{" {
            guard let close = s.firstIndex(of: "}") else { return nil }
            let arg = String(s[s.index(after: s.startIndex)..<close])
            s = s[s.index(after: close)...]
            return arg
        }
        s = s.dropFirst()
        return String(f)
    }

    /// Unsigned or signed decimal: digits with optional 3-digit-group commas, optional fraction part.
    static func decimal(_ text: Substring) -> Rational? {
        var s = text
        var negative = false
        if let f = s.first, f == "-" || f == "+" { negative = f == "-"; s = s.dropFirst() }
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        var intPart = String(parts[0])
        let fracPart = parts.count == 2 ? String(parts[1]) : ""
        if intPart.contains(",") {
            let groups = intPart.split(separator: ",", omittingEmptySubsequences: false)
            guard let first = groups.first, (1...3).contains(first.count),
                  groups.dropFirst().allSatisfy({ $0.count == 3 }) else { return nil }
            intPart = groups.joined()
        }
        guard !(intPart.isEmpty && fracPart.isEmpty),
              intPart.allSatisfy({ $0.isASCII && $0.isNumber }), fracPart.allSatisfy({ $0.isASCII && $0.isNumber }),
              parts.count == 1 || !fracPart.isEmpty || !intPart.isEmpty else { return nil }
        let digits = (intPart + fracPart).drop { $0 == "0" }
        guard digits.count <= 18, fracPart.count <= 18 else { return nil }
        let numerator = Int64(digits.isEmpty ? "0" : String(digits)) ?? 0
        var denominator: Int64 = 1
        for _ in 0..<fracPart.count { denominator *= 10 }
        return Rational(negative ? -numerator : numerator, denominator)
    }

    func divided(by other: Rational) -> Rational? {
        guard other.p != 0 else { return nil }
        let (n, o1) = p.multipliedReportingOverflow(by: other.q)
        let (d, o2) = q.multipliedReportingOverflow(by: other.p)
        guard !o1, !o2 else { return nil }
        return Rational(n, d)
    }
}
