import XCTest
@testable import LockstepCLI

/// A CPU without AVX2 is named, not met with SIGILL.
final class CPUFeaturesTests: XCTestCase {
    func testNamesTheFirstMissingFeature() {
        let haswell = "processor : 0\nflags : fpu sse2 avx avx2 fma f16c bmi1 bmi2 movbe popcnt\n"
        XCTAssertNil(CPUFeatures.missing(cpuinfo: haswell))
        let sandyBridge = "processor : 0\nflags : fpu sse2 avx popcnt\n"
        XCTAssertEqual(CPUFeatures.missing(cpuinfo: sandyBridge), "avx2")
        XCTAssertEqual(CPUFeatures.missing(cpuinfo: "flags : avx2 f16c bmi1 bmi2 movbe\n"), "fma")
    }

    func testThisMachineRunsTheKernels() {
        XCTAssertNil(CPUFeatures.missingForKernels(), "the test suite itself runs the kernels, so this CPU has what they need")
    }
}
