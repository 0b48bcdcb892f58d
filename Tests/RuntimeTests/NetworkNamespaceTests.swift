import Foundation
import XCTest

/// Workers on separate "hosts" (network namespaces on a bridge, `tools/netns.sh`),
/// started with `lockstep run` and torchrun's variables and no address flags: each
/// advertises its address on the route to the coordinator, and the job ends with the
/// hash of `lockstep train --workers 2` on one host. Needs root (CI runs as root).
final class NetworkNamespaceTests: XCTestCase {
    func testWorkersInNamespacesWithoutAdvertiseTrainToTheLocalHash() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to create network namespaces (CI runs as root)") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("tools/netns.sh").path
        let name = "lt\(getpid() % 10_000)"
        let up = try ChildProcess(path: script, ["up", "2", name], name: "netns.sh up")
        guard up.wait(seconds: 30) == 0 else { throw XCTSkip("cannot create network namespaces here: \(up.text)") }
        defer { _ = try? ChildProcess(path: script, ["down", "2", name], name: "netns.sh down").wait(seconds: 30) }

        let config = try TestConfigs.write()
        let reference = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--max-steps", "12",
                                                      "--metrics", config + ".ref.jsonl"])
        XCTAssertEqual(reference.wait(seconds: 90), 0, reference.text)
        let lockstep = ChildProcess.binDirectory.appendingPathComponent("lockstep").path
        let keys = try TestConfigs.keys()  // off loopback, a job needs keys
        var tasks: [ChildProcess] = []
        for rank in [1, 0] {
            var args = ["netns", "exec", "\(name)\(rank + 2)", "env", "RANK=\(rank)", "WORLD_SIZE=2", "MASTER_ADDR=10.89.0.2",
                        "MASTER_PORT=29517", lockstep, "run", "--config", config, "--max-steps", "12",
                        "--key", keys + "/job.key", "--allow", keys]
            if rank == 0 { args += ["--metrics", config + ".netns.jsonl"] }
            tasks.append(try ChildProcess(path: "/usr/sbin/ip", args, name: "rank \(rank)"))
        }
        for t in tasks { XCTAssertEqual(t.wait(seconds: 90), 0, t.text) }
        let lines = try TestConfigs.metrics(config + ".netns.jsonl")
        let final = try XCTUnwrap(lines.last { $0["event"] as? String == "final" })
        let expected = try XCTUnwrap(try TestConfigs.metrics(config + ".ref.jsonl").last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["parameters_identical"] as? Bool, true)
        XCTAssertEqual(final["parameter_hash"] as? String, expected["parameter_hash"] as? String)
        XCTAssertTrue(tasks[1].text.contains("rank 1 (") && tasks[1].text.contains("10.89.0.3:"),
                      "rank 1 should advertise its namespace's address:\n\(tasks[1].text)")
    }
}
