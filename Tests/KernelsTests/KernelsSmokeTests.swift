import XCTest
@testable import LockstepKernels

final class KernelsSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
