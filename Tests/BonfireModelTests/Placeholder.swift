import XCTest
final class BonfireModelTestsPlaceholder: XCTestCase { func testBuilds() {} }
