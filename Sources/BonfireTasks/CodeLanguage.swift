// A tiny expression language for the `code` task, with a sandboxed parser and evaluator (no loops, no I/O, no host
// calls: a program is a pure integer function of x and, in two-variable tasks, y).
//
// Grammar (whitespace ignored):
//   expr  := cmp ( "?" expr ":" expr )?                 conditional; the condition is true iff ≠ 0; lazy branches
//   cmp   := sum ( ("<" | ">" | "<=" | ">=" | "=" | "==" | "!=") sum )?    comparison → 1 or 0
//   sum   := term ( ("+" | "-") term )*
//   term  := unary ( ("*" | "/" | "%") unary )*
//   unary := "-" unary | atom
//   atom  := integer | "x" | "y" | "(" expr ")" | ("min" | "max") "(" expr "," expr ")" | "abs" "(" expr ")"
// Semantics: 64-bit integers with checked arithmetic (overflow is an error, never wraps); "/" truncates toward zero
// and "%" takes the sign of the dividend (Swift/C semantics); division or modulo by zero is an error.
// Sandbox limits (all errors, never crashes): program length ≤ `maxProgramLength` characters, integer literals ≤ 9
// digits, nesting depth ≤ `maxDepth` (parenthesised/conditional/function-argument expressions and unary minus each
// count one level; the parser recurses per level, so this bounds its stack; the evaluator's recursion is bounded by
// the tree depth, at most about maxProgramLength/2 for a left-deep chain like x+x+…+x), and at
// most `maxSteps` evaluated nodes per run. The language has no loops, so the step limit is a second line of defence
// that only a very large program can reach; it is configurable so tests can exercise it.

package struct CodeLimits: Sendable, Equatable {
    package var maxProgramLength = 256
    package var maxDepth = 64
    package var maxSteps = 10_000
    package init(maxProgramLength: Int = 256, maxDepth: Int = 64, maxSteps: Int = 10_000) {
        self.maxProgramLength = maxProgramLength; self.maxDepth = maxDepth; self.maxSteps = maxSteps
    }
}

package enum CodeError: Error, Equatable, CustomStringConvertible, Sendable {
    case syntax(String)
    case tooLong(Int)
    case tooDeep
    case divisionByZero
    case overflow
    case stepLimit(Int)
    case undefinedVariable(String)

    package var description: String {
        switch self {
        case .syntax(let m): return "syntax error: \(m)"
        case .tooLong(let n): return "program too long (\(n) characters)"
        case .tooDeep: return "nesting too deep"
        case .divisionByZero: return "division by zero"
        case .overflow: return "integer overflow"
        case .stepLimit(let n): return "step limit \(n) exceeded"
        case .undefinedVariable(let v): return "variable \(v) is not defined in this task"
        }
    }
}

package indirect enum CodeExpr: Equatable, Sendable {
    case num(Int64)
    case variable(Character)          // "x" or "y"
    case neg(CodeExpr)
    case bin(String, CodeExpr, CodeExpr)   // + - * / % < > <= >= = !=
    case cond(CodeExpr, CodeExpr, CodeExpr)
    case call(String, [CodeExpr])     // min, max (2 args), abs (1 arg)
}

package struct CodeProgram: Sendable {
    package let source: String
    package let expr: CodeExpr
    package let limits: CodeLimits
    /// Tree depth of the parsed program.
    package let depth: Int

    /// Parses `source`; throws CodeError for syntax errors and sandbox limits.
    package init(_ source: String, limits: CodeLimits = CodeLimits()) throws {
        guard source.count <= limits.maxProgramLength else { throw CodeError.tooLong(source.count) }
        var parser = CodeParser(source, maxDepth: limits.maxDepth)
        let e = try parser.parseProgram()
        self.source = source
        self.expr = e
        self.limits = limits
        self.depth = CodeProgram.depth(e)
    }

    private static func depth(_ e: CodeExpr) -> Int {
        switch e {
        case .num, .variable: return 1
        case .neg(let a): return 1 + depth(a)
        case .bin(_, let a, let b): return 1 + max(depth(a), depth(b))
        case .cond(let c, let a, let b): return 1 + max(depth(c), depth(a), depth(b))
        case .call(_, let args): return 1 + (args.map(depth).max() ?? 0)
        }
    }

    /// Runs the program on (x, y). y == nil means the task has one variable, and using y is an error.
    package func run(x: Int64, y: Int64? = nil) throws -> Int64 {
        var steps = 0
        return try eval(expr, x: x, y: y, steps: &steps)
    }

    private func eval(_ e: CodeExpr, x: Int64, y: Int64?, steps: inout Int) throws -> Int64 {
        steps += 1
        if steps > limits.maxSteps { throw CodeError.stepLimit(limits.maxSteps) }
        switch e {
        case .num(let v): return v
        case .variable(let name):
            if name == "x" { return x }
            guard let y else { throw CodeError.undefinedVariable(String(name)) }
            return y
        case .neg(let a):
            let v = try eval(a, x: x, y: y, steps: &steps)
            let (r, o) = Int64(0).subtractingReportingOverflow(v)
            if o { throw CodeError.overflow }
            return r
        case .cond(let c, let a, let b):
            return try eval(c, x: x, y: y, steps: &steps) != 0
                ? eval(a, x: x, y: y, steps: &steps) : eval(b, x: x, y: y, steps: &steps)
        case .call(let fn, let args):
            let vs = try args.map { try eval($0, x: x, y: y, steps: &steps) }
            switch fn {
            case "min": return min(vs[0], vs[1])
            case "max": return max(vs[0], vs[1])
            default:
                if vs[0] == Int64.min { throw CodeError.overflow }
                return abs(vs[0])
            }
        case .bin(let op, let l, let r):
            let a = try eval(l, x: x, y: y, steps: &steps)
            let b = try eval(r, x: x, y: y, steps: &steps)
            let result: (Int64, Bool)
            switch op {
            case "+": result = a.addingReportingOverflow(b)
            case "-": result = a.subtractingReportingOverflow(b)
            case "*": result = a.multipliedReportingOverflow(by: b)
            case "/":
                if b == 0 { throw CodeError.divisionByZero }
                result = a.dividedReportingOverflow(by: b)
            case "%":
                if b == 0 { throw CodeError.divisionByZero }
                result = a.remainderReportingOverflow(dividingBy: b)
            case "<": result = (a < b ? 1 : 0, false)
            case ">": result = (a > b ? 1 : 0, false)
            case "<=": result = (a <= b ? 1 : 0, false)
            case ">=": result = (a >= b ? 1 : 0, false)
            case "=": result = (a == b ? 1 : 0, false)
            case "!=": result = (a != b ? 1 : 0, false)
            default: throw CodeError.syntax("unknown operator \(op)")
            }
            if result.1 { throw CodeError.overflow }
            return result.0
        }
    }
}

/// Recursive-descent parser over the characters of the program, with a nesting-depth limit.
struct CodeParser {
    private let chars: [Character]
    private var pos = 0
    private var depth = 0
    private let maxDepth: Int

    init(_ source: String, maxDepth: Int) {
        chars = Array(source)
        self.maxDepth = maxDepth
    }

    mutating func parseProgram() throws -> CodeExpr {
        skipSpaces()
        if pos >= chars.count { throw CodeError.syntax("empty program") }
        let e = try parseExpr()
        skipSpaces()
        if pos < chars.count { throw CodeError.syntax("unexpected '\(chars[pos])' at \(pos)") }
        return e
    }

    private mutating func skipSpaces() {
        while pos < chars.count, chars[pos] == " " || chars[pos] == "\n" { pos += 1 }
    }

    private mutating func peek() -> Character? {
        skipSpaces()
        return pos < chars.count ? chars[pos] : nil
    }

    private mutating func accept(_ s: String) -> Bool {
        skipSpaces()
        let a = Array(s)
        guard pos + a.count <= chars.count, Array(chars[pos..<pos + a.count]) == a else { return false }
        pos += a.count
        return true
    }

    private mutating func expect(_ s: String) throws {
        guard accept(s) else {
            let found = pos < chars.count ? "'\(chars[pos])'" : "end of program"
            throw CodeError.syntax("expected '\(s)' at \(pos), found \(found)")
        }
    }

    private mutating func enter() throws {
        depth += 1
        if depth > maxDepth { throw CodeError.tooDeep }
    }

    private mutating func parseExpr() throws -> CodeExpr {
        try enter(); defer { depth -= 1 }
        let c = try parseCmp()
        if accept("?") {
            let a = try parseExpr()
            try expect(":")
            let b = try parseExpr()
            return .cond(c, a, b)
        }
        return c
    }

    private mutating func parseCmp() throws -> CodeExpr {
        let l = try parseSum()
        for op in ["<=", ">=", "!=", "==", "<", ">", "="] where accept(op) {
            let r = try parseSum()
            return .bin(op == "==" ? "=" : op, l, r)
        }
        return l
    }

    private mutating func parseSum() throws -> CodeExpr {
        var l = try parseTerm()
        while let c = peek(), c == "+" || c == "-" {
            pos += 1
            l = .bin(String(c), l, try parseTerm())
        }
        return l
    }

    private mutating func parseTerm() throws -> CodeExpr {
        var l = try parseUnary()
        while let c = peek(), c == "*" || c == "/" || c == "%" {
            pos += 1
            l = .bin(String(c), l, try parseUnary())
        }
        return l
    }

    private mutating func parseUnary() throws -> CodeExpr {
        if accept("-") {
            try enter(); defer { depth -= 1 }
            return .neg(try parseUnary())
        }
        return try parseAtom()
    }

    private mutating func parseAtom() throws -> CodeExpr {
        guard let c = peek() else { throw CodeError.syntax("unexpected end of program") }
        if c.isASCII, c.isNumber {
            var digits = ""
            while pos < chars.count, chars[pos].isASCII, chars[pos].isNumber {
                digits.append(chars[pos]); pos += 1
            }
            guard digits.count <= 9, let v = Int64(digits) else {
                throw CodeError.syntax("integer literal longer than 9 digits")
            }
            return .num(v)
        }
        if c == "(" {
            pos += 1
            let e = try parseExpr()
            try expect(")")
            return e
        }
        for fn in ["min", "max", "abs"] where accept(fn) {
            try expect("(")
            var args = [try parseExpr()]
            if fn != "abs" {
                try expect(",")
                args.append(try parseExpr())
            }
            try expect(")")
            return .call(fn, args)
        }
        if c == "x" || c == "y" {
            pos += 1
            if let n = peek(), n.isLetter { throw CodeError.syntax("unknown name starting '\(c)\(n)' at \(pos - 1)") }
            return .variable(c)
        }
        throw CodeError.syntax("unexpected '\(c)' at \(pos)")
    }
}
