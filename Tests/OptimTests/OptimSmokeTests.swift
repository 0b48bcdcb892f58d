import XCTest
@testable import LockstepOptim

final class OptimSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
