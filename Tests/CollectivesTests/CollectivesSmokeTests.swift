import XCTest
@testable import LockstepCollectives

final class CollectivesSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
