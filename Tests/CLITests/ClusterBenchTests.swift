import XCTest
@testable import LockstepBench
@testable import LockstepCLI

/// The arithmetic of `lockstep bench cluster`: link rates as tc writes them, and the
/// α-β fit from two all-reduce sizes when a token bucket lets the smaller one burst.
final class ClusterBenchTests: XCTestCase {
    func testRatesAsTcWritesThem() {
        XCTAssertEqual(ClusterBenchRuns.bitsPerSecond("10gbit"), 10e9)
        XCTAssertEqual(ClusterBenchRuns.bitsPerSecond("100mbit"), 100e6)
        XCTAssertEqual(ClusterBenchRuns.bitsPerSecond("512kbit"), 512e3)
        XCTAssertNil(ClusterBenchRuns.bitsPerSecond("fast"))
        XCTAssertNil(ClusterBenchRuns.bitsPerSecond("0gbit"))
    }

    private func result(_ bytes: Int, _ seconds: Double) -> AllReduceBenchmark.Result {
        AllReduceBenchmark.Result(operation: .allReduce, algorithm: "ring", bytes: bytes, worldSize: 2, seconds: seconds, iterations: 5)
    }

    func testAlphaBetaFromTwoSizes() throws {
        // 1 Gbit/s (β = 8 ns/byte) and α = 100 µs at two workers: t = 2α + n·β.
        let t = { (n: Int) in 2 * 100e-6 + Double(n) * 8e-9 }
        let fit = try ClusterBenchRuns.alphaBeta([result(1 << 20, t(1 << 20)), result(16 << 20, t(16 << 20))], workers: 2)
        XCTAssertEqual(fit.alpha, 100e-6, accuracy: 1e-6)
        XCTAssertEqual(fit.beta, 8e-9, accuracy: 1e-11)
    }

    func testBurstingSmallSizeGivesZeroAlphaAndTheLargeSizesBeta() throws {
        // 1 MiB faster than the line through 16 MiB predicts: least squares would give α < 0.
        let fit = try ClusterBenchRuns.alphaBeta([result(1 << 20, 0.0075), result(16 << 20, 0.14)], workers: 2)
        XCTAssertEqual(fit.alpha, 0)
        XCTAssertEqual(fit.beta, 0.14 / Double(16 << 20), accuracy: 1e-15)
    }
}
