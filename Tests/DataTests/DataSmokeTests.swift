import XCTest
@testable import LockstepData

final class DataSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
