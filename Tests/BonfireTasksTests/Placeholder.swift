import XCTest
final class BonfireTasksTestsPlaceholder: XCTestCase { func testBuilds() {} }
