import XCTest

/// Asserts |a − e| ≤ atol + rtol·|e| elementwise; reports the max abs/rel difference (llm.c "maxdiff").
package func expectClose(_ actual: [Double], _ expected: [Double], rtol: Double = 1e-6, atol: Double = 1e-9,
                         _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "\(what): count \(actual.count) vs \(expected.count)", file: file, line: line)
    var maxAbs = 0.0, maxRel = 0.0, worst = -1
    for i in 0..<min(actual.count, expected.count) {
        let d = abs(actual[i] - expected[i])
        if !(d <= atol + rtol * abs(expected[i])) && worst < 0 { worst = i }
        maxAbs = max(maxAbs, d)
        maxRel = max(maxRel, d / max(abs(expected[i]), 1e-12))
    }
    if worst >= 0 {
        XCTFail("\(what): not close at [\(worst)]: \(actual[worst]) vs \(expected[worst]) (maxAbs \(maxAbs), maxRel \(maxRel))",
                file: file, line: line)
    }
}

package func expectClose(_ actual: [Float], _ expected: [Float], rtol: Double = 1e-4, atol: Double = 1e-6,
                         _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
    expectClose(actual.map(Double.init), expected.map(Double.init), rtol: rtol, atol: atol, what, file: file, line: line)
}

package func expectClose(_ actual: Double, _ expected: Double, rtol: Double = 1e-6, atol: Double = 1e-9,
                         _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
    expectClose([actual], [expected], rtol: rtol, atol: atol, what, file: file, line: line)
}
