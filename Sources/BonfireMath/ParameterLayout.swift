// A named, ordered layout of parameters inside ONE contiguous [Float] buffer (llm.c style).
// Each entry is (name, offset, shape); entries are packed back to back in insertion order, so the buffer is
// broadcast, checkpointed and updated as one blob while layers address their slices by offset.

package struct ParameterLayout: Sendable, Equatable {
    package struct Entry: Sendable, Equatable {
        package let name: String
        package let offset: Int
        package let shape: [Int]
        package var count: Int { shape.reduce(1, *) }
        package var range: Range<Int> { offset..<(offset + count) }
    }

    package private(set) var entries: [Entry] = []
    package private(set) var totalCount = 0
    private var indexByName: [String: Int] = [:]

    package init() {}

    /// Appends a tensor and returns its offset. Names must be unique.
    @discardableResult
    package mutating func append(_ name: String, shape: [Int]) -> Int {
        precondition(indexByName[name] == nil, "ParameterLayout: duplicate name \(name)")
        precondition(shape.allSatisfy { $0 > 0 }, "ParameterLayout: \(name) has non-positive shape \(shape)")
        let e = Entry(name: name, offset: totalCount, shape: shape)
        indexByName[name] = entries.count
        entries.append(e)
        totalCount += e.count
        return e.offset
    }

    package func entry(named name: String) -> Entry? { indexByName[name].map { entries[$0] } }

    package subscript(_ name: String) -> Entry {
        guard let e = entry(named: name) else { preconditionFailure("ParameterLayout: no tensor named \(name)") }
        return e
    }

    /// 1 for parameters that get weight decay (tensors of rank ≥ 2: matrices and embeddings), 0 otherwise
    /// (biases, LayerNorm gains). Shape (totalCount).
    package var weightDecayMask: [Float] {
        var m = [Float](repeating: 0, count: totalCount)
        for e in entries where e.shape.count >= 2 { for i in e.range { m[i] = 1 } }
        return m
    }

    package static func == (a: ParameterLayout, b: ParameterLayout) -> Bool { a.entries == b.entries }
}
