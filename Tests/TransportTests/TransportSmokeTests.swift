import XCTest
@testable import LockstepTransport

final class TransportSmokeTests: XCTestCase {
    func testModuleLinks() { XCTAssertTrue(true) }
}
