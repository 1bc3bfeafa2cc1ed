import XCTest
final class BonfireWireTestsPlaceholder: XCTestCase { func testBuilds() {} }
