import XCTest
import LockstepBench
import LockstepKernels

/// `lockstep bench gemm`'s measurement and report: checked before timed.
final class GemmBenchmarkTests: XCTestCase {
    func testPeakLineNamesFLOPPerCycle() {
        for kernel in Gemm.cpuSupportsAVX512 ? [GemmKernel.avx2, .avx512] : [.avx2] {
            let peak = FMAThroughput.peakPerCoreGflops(for: kernel)
            XCTAssertTrue(GemmBenchmark.peakLine(peak, measured: true, kernel: kernel).contains("FLOP/cycle"))
        }
    }

    func testBenchmarkChecksThenTimes() throws {
        let results = try GemmBenchmark.run(shapes: [(m: 33, k: 70, n: 17, transA: true, transB: false), (m: 64, k: 64, n: 64, transA: false, transB: true)],
                                            threads: 2, peakPerCoreGflops: 100)
        XCTAssertEqual(results.count, 2)
        for r in results {
            XCTAssertGreaterThan(r.gflops, 0)
            XCTAssertLessThanOrEqual(r.minGflops, r.gflops)
            XCTAssertLessThanOrEqual(r.gflops, r.maxGflops)
            XCTAssertLessThan(r.maxAbsError, 1e-4)
        }
        XCTAssertTrue(GemmBenchmark.markdownTable(results).contains("| 33 | 70 | 17 |"))
        XCTAssertTrue(try GemmBenchmark.json(results).contains("\"gflops\""))
        XCTAssertEqual(GemmBenchmark.defaultShapes.count, 29)
    }
}
