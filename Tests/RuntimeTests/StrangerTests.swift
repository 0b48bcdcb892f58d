import Foundation
import XCTest
import LockstepTransport

/// A running 2-worker job (coordinator and workers started by hand) while strangers
/// come: a third worker, a worker of another model, a forged `error` frame of
/// another job, an error from a process that never joined, and a frame that
/// announces 60 GB. Each is refused or dropped; the job ends with the hash of an
/// undisturbed run, and the coordinator's memory stays small.
final class StrangerTests: XCTestCase {
    func testStrangersAreRefusedWithoutStoppingTheJob() throws {
        let config = try TestConfigs.write(trainSamples: 4096, epochs: 6)
        let undisturbed = config + ".undisturbed.jsonl", disturbed = config + ".disturbed.jsonl"
        let reference = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--metrics", undisturbed])
        XCTAssertEqual(reference.wait(seconds: 120), 0, reference.text)

        let port = 20000 + Int((getpid() + 11) % 20000)
        let address = "tcp://127.0.0.1:\(port)"
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", address, "--workers", "2", "--metrics", disturbed])
        let workers = try (0..<2).map { _ in try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", address]) }
        XCTAssertTrue(coordinator.waitForOutput("peers:", seconds: 60), coordinator.text)

        // A third worker, and one of another model: refused, the job goes on.
        let third = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", address])
        let other = try ChildProcess("lockstep-worker", ["--config", try TestConfigs.write(layers: "\"linear 8\", \"relu\", \"linear 4\""),
                                                          "--coordinator", address])
        XCTAssertEqual(third.wait(seconds: 30), 1, third.text)
        XCTAssertEqual(other.wait(seconds: 30), 1, other.text)
        XCTAssertTrue(third.text.contains("already has its 2 workers"), third.text)
        XCTAssertTrue(other.text.contains("differs from the coordinator's"), other.text)

        // Forged control frames: an error of a random job, and an error with job id 0.
        let context = try ZMQContext()
        let stranger = try ZMQSocket(context: context, kind: .dealer)
        try stranger.connect(address)
        let payload = Array(#"{"error":{"message":"forged by a stranger"}}"#.utf8)
        for job: UInt64 in [0x5eed_f00d_dead_beef, 0] {
            _ = try stranger.send(WireFrame(kind: .error, jobID: job, senderRank: 0, payload: payload).encoded())
        }
        // A ZMTP peer that announces a 60 GB message, then streams what it has.
        let rssBefore = try XCTUnwrap(memory("VmRSS", pid: coordinator.pid))
        let flood = try ChildProcess(path: "/usr/bin/python3", ["-c", """
            import socket, struct, time
            s = socket.create_connection(("127.0.0.1", \(port)))
            s.sendall(b"\\xff" + b"\\0" * 8 + b"\\x7f" + bytes([3, 0]) + b"NULL" + b"\\0" * 16 + b"\\0" + b"\\0" * 31)
            ready = b"\\x05READY" + bytes([11]) + b"Socket-Type" + struct.pack(">I", 6) + b"DEALER"
            s.sendall(bytes([0x04, len(ready)]) + ready)
            s.sendall(bytes([0x02]) + struct.pack(">Q", 60 * 10**9))
            try:
                for _ in range(2000): s.sendall(b"\\0" * 65536)
            except OSError:
                print("disconnected by the coordinator")
            """], name: "60 GB frame")
        _ = flood.waitForExit(seconds: 60)
        flood.terminate()
        if let peak = memory("VmHWM", pid: coordinator.pid) {
            XCTAssertLessThan(peak - rssBefore, 50 << 10, "the coordinator grew from \(rssBefore) KiB to a peak of \(peak) KiB")
        }

        XCTAssertEqual(coordinator.wait(seconds: 120), 0, coordinator.text)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.text) }
        let final = try XCTUnwrap(try TestConfigs.metrics(disturbed).last { $0["event"] as? String == "final" }, coordinator.text)
        let expected = try XCTUnwrap(try TestConfigs.metrics(undisturbed).last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["parameter_hash"] as? String, expected["parameter_hash"] as? String, coordinator.text)
        XCTAssertTrue(coordinator.text.contains("forged by a stranger"), "the forged error should be logged:\n\(coordinator.text)")
        XCTAssertTrue(flood.text.contains("disconnected"), "the 60 GB frame should be cut off:\n\(flood.text)")
    }

    /// A `/proc/PID/status` figure in KiB (VmRSS, VmHWM), nil once the process is gone.
    private func memory(_ field: String, pid: pid_t) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
}
