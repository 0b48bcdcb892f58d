import Foundation
import XCTest

/// A worker killed with SIGKILL: its control connection closes at once, so the
/// coordinator names it (rank, host, address) and every survivor stops within
/// about two seconds, not at the job's deadline (here 600 s).
final class FailureDetectionTests: XCTestCase {
    /// A coordinator and `workers` workers started by hand, with a 600 s deadline, once training runs.
    private func startJob(workers count: Int, portOffset: Int32) throws -> (coordinator: ChildProcess, workers: [ChildProcess], address: String) {
        let config = try TestConfigs.write(trainSamples: 200_000, epochs: 5)
        let address = "tcp://127.0.0.1:\(20000 + Int((getpid() + portOffset) % 20000))"
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", address, "--workers", String(count), "--timeout", "600"])
        let workers = try (0..<count).map {
            try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", address, "--rank", String($0)], name: "rank \($0)")
        }
        XCTAssertTrue(coordinator.waitForOutput("epoch 1 step", seconds: 60), coordinator.text)
        return (coordinator, workers, address)
    }

    func testKilledWorkerIsNamedByEverySurvivorWithinSeconds() throws {
        let (coordinator, workers, _) = try startJob(workers: 3, portOffset: 17)
        defer { workers.forEach { $0.terminate() }; coordinator.terminate() }
        kill(workers[1].pid, SIGKILL)
        let killedAt = Date()
        for survivor in [coordinator, workers[0], workers[2]] {
            XCTAssertEqual(survivor.wait(seconds: 10), 1, survivor.text)
            XCTAssertTrue(survivor.text.contains("rank 1 (") && survivor.text.contains("closed its connection"),
                          "\(survivor.name) should name rank 1 and what happened:\n\(survivor.text)")
        }
        let elapsed = Date().timeIntervalSince(killedAt)
        XCTAssertLessThan(elapsed, 4, "survivors stopped \(elapsed) s after the kill")
    }
}

extension FailureDetectionTests {
    /// The coordinator killed with SIGKILL: every worker says so within seconds, goes on
    /// training, and rank 0 keeps the final metrics and checkpoint itself.
    func testKilledCoordinatorLeavesTheWorkersResultsOnDisk() throws {
        let config = try TestConfigs.write(trainSamples: 200_000, epochs: 1)
        let dir = (config as NSString).deletingLastPathComponent
        let address = "tcp://127.0.0.1:\(20000 + Int((getpid() + 19) % 20000))"
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", address, "--workers", "2", "--timeout", "600",
                                                                    "--max-steps", "3000", "--checkpoint-dir", dir + "/ck",
                                                                    "--metrics", dir + "/m.jsonl"])
        let workers = try (0..<2).map {
            try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", address, "--rank", String($0)], name: "rank \($0)")
        }
        defer { workers.forEach { $0.terminate() }; coordinator.terminate() }
        XCTAssertTrue(coordinator.waitForOutput("epoch 1 step", seconds: 60), coordinator.text)
        kill(coordinator.pid, SIGKILL)
        for w in workers {
            XCTAssertTrue(w.waitForOutput("coordinator at \(address) closed its connection", seconds: 2), w.text)
        }
        for w in workers { XCTAssertEqual(w.wait(seconds: 120), 0, w.text) }
        XCTAssertTrue(workers[0].text.contains("kept metrics in \(dir)/m.jsonl and the final checkpoint \(dir)/ck/step-00003000.safetensors"),
                      workers[0].text)
        let final = try XCTUnwrap(try TestConfigs.metrics(dir + "/m.jsonl").last)
        XCTAssertEqual(final["event"] as? String, "final")
        XCTAssertEqual(final["steps"] as? Int, 3000)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/ck/step-00003000.json"))
    }
}
