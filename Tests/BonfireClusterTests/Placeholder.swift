import XCTest
final class BonfireClusterTestsPlaceholder: XCTestCase { func testBuilds() {} }
