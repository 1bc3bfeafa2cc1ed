import XCTest
final class BonfireAlgorithmsTestsPlaceholder: XCTestCase { func testBuilds() {} }
