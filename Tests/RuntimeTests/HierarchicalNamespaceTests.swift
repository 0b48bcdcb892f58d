import Foundation
import XCTest

/// Two "hosts" (network namespaces on a bridge, `tools/netns.sh`) with two workers
/// each, started with `lockstep run` and torchrun's variables: `--all-reduce auto`
/// picks the hierarchical all-reduce (shared memory within a namespace, ZeroMQ
/// between them), every rank ends with the same parameters, and the run trains
/// like the flat ring on the same hosts (the same loss up to summation order).
/// Needs root (CI runs as root).
final class HierarchicalNamespaceTests: XCTestCase {
    func testTwoHostsTimesTwoWorkersChooseHierarchicalAndMatchTheFlatRing() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to create network namespaces (CI runs as root)") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("tools/netns.sh").path
        let name = "lh\(getpid() % 10_000)"
        let up = try ChildProcess(path: script, ["up", "2", name], name: "netns.sh up")
        guard up.wait(seconds: 30) == 0 else { throw XCTSkip("cannot create network namespaces here: \(up.text)") }
        defer { _ = try? ChildProcess(path: script, ["down", "2", name], name: "netns.sh down").wait(seconds: 30) }
        let config = try TestConfigs.write()
        let lockstep = ChildProcess.binDirectory.appendingPathComponent("lockstep").path
        let keys = try TestConfigs.keys()  // off loopback, a job needs keys

        func run(_ algorithm: String, port: Int) throws -> (final: [String: Any], logs: [String]) {
            var tasks: [ChildProcess] = []
            for rank in [3, 2, 1, 0] {
                let host = rank / 2  // ranks 0, 1 on the first namespace, 2, 3 on the second
                var args = ["netns", "exec", "\(name)\(host + 2)", "env", "RANK=\(rank)", "WORLD_SIZE=4", "LOCAL_RANK=\(rank % 2)",
                            "MASTER_ADDR=10.89.0.2", "MASTER_PORT=\(port)", lockstep, "run", "--config", config,
                            "--max-steps", "12", "--threads", "1", "--all-reduce", algorithm,
                            "--key", keys + "/job.key", "--allow", keys]
                if rank == 0 { args += ["--metrics", config + ".\(algorithm).jsonl"] }
                tasks.append(try ChildProcess(path: "/usr/sbin/ip", args, name: "\(algorithm) rank \(rank)"))
            }
            for t in tasks { XCTAssertEqual(t.wait(seconds: 120), 0, t.text) }
            let lines = try TestConfigs.metrics(config + ".\(algorithm).jsonl")
            let final = try XCTUnwrap(lines.last { $0["event"] as? String == "final" }, "no final line for \(algorithm)")
            return (final, tasks.map(\.text))
        }

        let hierarchical = try run("auto", port: 29531)
        let flat = try run("flat", port: 29532)
        XCTAssertEqual(hierarchical.final["parameters_identical"] as? Bool, true)
        XCTAssertEqual(flat.final["parameters_identical"] as? Bool, true)
        for log in hierarchical.logs {
            XCTAssertTrue(log.contains("all-reduce hierarchical: 2 hosts × 2 workers"), "auto should choose hierarchical:\n\(log)")
        }
        for log in flat.logs { XCTAssertFalse(log.contains("all-reduce hierarchical"), log) }
        let (h, f) = (try XCTUnwrap(hierarchical.final["loss"] as? Double), try XCTUnwrap(flat.final["loss"] as? Double))
        XCTAssertEqual(h, f, accuracy: 1e-4 * max(1, abs(f)), "hierarchical and flat should train alike: loss \(h) vs \(f)")
    }
}
