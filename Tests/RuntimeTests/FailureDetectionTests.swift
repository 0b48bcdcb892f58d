import Foundation
import XCTest

/// A worker killed with SIGKILL: its control connection closes at once, so the
/// coordinator names it (rank, host, address) and every survivor stops within
/// about two seconds, not at the job's deadline (here 600 s).
final class FailureDetectionTests: XCTestCase {
    func testKilledWorkerIsNamedByEverySurvivorWithinSeconds() throws {
        let config = try TestConfigs.write(trainSamples: 200_000, epochs: 5)
        let port = 20000 + Int((getpid() + 17) % 20000)
        let address = "tcp://127.0.0.1:\(port)"
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", address, "--workers", "3", "--timeout", "600"])
        let workers = try (0..<3).map {
            try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", address, "--rank", String($0)], name: "rank \($0)")
        }
        defer { workers.forEach { $0.terminate() }; coordinator.terminate() }
        XCTAssertTrue(coordinator.waitForOutput("epoch 1 step", seconds: 60), coordinator.text)
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
    /// The coordinator killed with SIGKILL: every worker says so within seconds.
    func testKilledCoordinatorIsNoticedByEveryWorkerWithinSeconds() throws {
        let config = try TestConfigs.write(trainSamples: 200_000, epochs: 5)
        let port = 20000 + Int((getpid() + 19) % 20000)
        let address = "tcp://127.0.0.1:\(port)"
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", address, "--workers", "2", "--timeout", "600"])
        let workers = try (0..<2).map {
            try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", address, "--rank", String($0)], name: "rank \($0)")
        }
        defer { workers.forEach { $0.terminate() }; coordinator.terminate() }
        XCTAssertTrue(coordinator.waitForOutput("epoch 1 step", seconds: 60), coordinator.text)
        kill(coordinator.pid, SIGKILL)
        let killedAt = Date()
        for w in workers {
            XCTAssertEqual(w.wait(seconds: 10), 1, w.text)
            XCTAssertTrue(w.text.contains("coordinator at \(address) closed its connection"), w.text)
        }
        let elapsed = Date().timeIntervalSince(killedAt)
        XCTAssertLessThan(elapsed, 4, "workers stopped \(elapsed) s after the kill")
    }
}
