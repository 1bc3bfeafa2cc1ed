// A small JSON value type for reading tokenizer.json, with accessors that throw errors naming the field path.

import Foundation

package struct TokenizerFileError: Error, CustomStringConvertible, Equatable {
    package let message: String
    package init(_ message: String) { self.message = message }
    package var description: String { "tokenizer.json: " + message }
}

package indirect enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    package init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .int, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    var isNull: Bool { if case .null = self { return true } else { return false } }
}

/// A JSON value with its path in the file, for error messages ("model.merges[12]").
package struct JSONField {
    let value: JSONValue
    let path: String

    init(_ value: JSONValue, path: String) { self.value = value; self.path = path }

    func fail(_ what: String) -> TokenizerFileError {
        TokenizerFileError("\(path): expected \(what), found \(value.kind)")
    }

    /// A member, `.null` when absent.
    subscript(key: String) -> JSONField {
        if case .object(let d) = value { return JSONField(d[key] ?? .null, path: path.isEmpty ? key : path + "." + key) }
        return JSONField(.null, path: path + "." + key)
    }

    var isNull: Bool { value.isNull }

    func object() throws -> [String: JSONValue] {
        guard case .object(let d) = value else { throw fail("an object") }
        return d
    }

    func array() throws -> [JSONField] {
        guard case .array(let a) = value else { throw fail("an array") }
        return a.enumerated().map { JSONField($0.element, path: "\(path)[\($0.offset)]") }
    }

    func string() throws -> String {
        guard case .string(let s) = value else { throw fail("a string") }
        return s
    }

    func optionalString() throws -> String? { isNull ? nil : try string() }

    func bool(default def: Bool) throws -> Bool {
        if isNull { return def }
        guard case .bool(let b) = value else { throw fail("true or false") }
        return b
    }

    /// An integer in `range`; the error names the path and the range.
    func int(in range: ClosedRange<Int>) throws -> Int {
        guard case .int(let i) = value else { throw fail("an integer") }
        guard let v = Int(exactly: i), range.contains(v) else {
            throw TokenizerFileError("\(path): \(i) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return v
    }

    /// The "type" member of a component object.
    func type() throws -> String { try self["type"].string() }
}
