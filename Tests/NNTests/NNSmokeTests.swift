import XCTest
@testable import LockstepNN

final class NNSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
