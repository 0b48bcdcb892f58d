import Foundation
import XCTest
@testable import LockstepRuntime
import LockstepBench

/// `--emulate-compute-ms` and the all-reduce probe over the real executables.
final class EmulatedComputeTests: XCTestCase {
    /// Synthetic gradients are the same on every rank, so the ranks stay bitwise identical.
    func testTwoWorkersWithEmulatedComputeStayIdentical() throws {
        let config = try TestConfigs.write(epochs: 50)
        let metrics = config + ".emulated.jsonl"
        let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--emulate-compute-ms", "1",
                                                "--max-steps", "10", "--metrics", metrics])
        XCTAssertEqual(run.wait(seconds: 60), 0, run.text)
        let final = try XCTUnwrap(try TestConfigs.metrics(metrics).last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["parameters_identical"] as? Bool, true, "\(final)")
        XCTAssertEqual(final["steps"] as? Int, 10)
        // Ten steps of at least 1 ms of emulated compute each.
        XCTAssertGreaterThanOrEqual(final["seconds"] as? Double ?? 0, 0.010)
    }

    func testAllReduceProbeTimesTwoRankProcesses() throws {
        let exe = ChildProcess.binDirectory.appendingPathComponent("lockstep").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("\(exe) is not built") }
        let samples = try AllReduceProbe.measure(executable: exe, workers: 2, sizes: [65_536, 262_144], chunkBytes: 1 << 20,
                                                 iterations: 3, timeoutSeconds: 30)
        XCTAssertEqual(samples.map(\.bytes), [65_536, 262_144])
        XCTAssertTrue(samples.allSatisfy { $0.workers == 2 && $0.seconds > 0 && $0.seconds < 1 }, "\(samples)")
    }
}
