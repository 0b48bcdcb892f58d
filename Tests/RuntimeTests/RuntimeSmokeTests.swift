import XCTest
@testable import LockstepRuntime

final class RuntimeSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
