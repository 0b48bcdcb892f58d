import Foundation
import XCTest

/// `deploy/slurm/lockstep.sbatch` on a real Slurm cluster of three network-namespace
/// nodes (`../shared/cluster/slurm-netns.sh up 3`, started here when it is not up):
/// the job ends with the parameter hash of `lockstep train --workers 3` on one host.
/// Needs root (CI runs as root).
final class SlurmTests: XCTestCase {
    func testSbatchOnThreeNodesMatchesThreeLocalWorkers() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to start the namespace Slurm cluster (CI runs as root)") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cluster = root.deletingLastPathComponent().appendingPathComponent("shared/cluster/slurm-netns.sh").path
        guard FileManager.default.isExecutableFile(atPath: cluster) || FileManager.default.fileExists(atPath: cluster) else {
            throw XCTSkip("\(cluster) not found: the Slurm test needs the shared cluster script beside the repository")
        }
        // Up already only when the script's controller runs: otherwise sinfo may spend a long
        // while on a stale slurm.conf, a stopped munged, or a configless DNS lookup.
        let wasUp = FileManager.default.fileExists(atPath: "/run/ls-slurmctld.pid")
            && clusterAnswers()
        if !wasUp {
            let up = try ChildProcess(path: "/bin/bash", [cluster, "up", "3"], name: "slurm-netns.sh up")
            guard up.wait(seconds: 600) == 0 else { throw XCTSkip("could not start the namespace Slurm cluster:\n\(up.text)") }
        }
        defer { if !wasUp { _ = try? ChildProcess(path: "/bin/bash", [cluster, "down"], name: "slurm-netns.sh down").wait(seconds: 60) } }

        let config = root.appendingPathComponent("configs/fashion-mlp.toml").path
        let flags = ["--epochs", "1", "--max-steps", "40"]
        let reference = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "3"] + flags
                                                     + ["--metrics", NSTemporaryDirectory() + "slurm-ref-\(getpid()).jsonl"])
        XCTAssertEqual(reference.wait(seconds: 300), 0, reference.text)
        let out = NSTemporaryDirectory() + "lockstep-slurm-\(getpid())"
        let lockstep = ChildProcess.binDirectory.appendingPathComponent("lockstep").path
        let job = try ChildProcess(path: "/usr/bin/sbatch", ["-N", "3", "-W", "--chdir", root.path,
                                                             root.appendingPathComponent("deploy/slurm/lockstep.sbatch").path, config] + flags,
                                   environment: ["LOCKSTEP_BIN": lockstep, "LOCKSTEP_OUT": out], name: "sbatch")
        XCTAssertEqual(job.wait(seconds: 300), 0, job.text)
        let lines = try TestConfigs.metrics(out + "/metrics.jsonl")
        let final = try XCTUnwrap(lines.last { $0["event"] as? String == "final" }, "no final line in \(out)/metrics.jsonl")
        let expected = try XCTUnwrap(try TestConfigs.metrics(NSTemporaryDirectory() + "slurm-ref-\(getpid()).jsonl").last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["parameters_identical"] as? Bool, true)
        XCTAssertEqual(final["parameter_hash"] as? String, expected["parameter_hash"] as? String)
        for r in 0..<3 {
            let log = (try? String(contentsOfFile: "\(out)/rank-\(r).log", encoding: .utf8)) ?? ""
            XCTAssertTrue(log.contains("rank \(r) of 3 (from slurm)"), "rank \(r)'s log:\n\(log)")
        }
    }

    /// An elastic job under Slurm (`--max-restarts 1`: the script runs srun with
    /// `--no-kill`): one task is killed with SIGKILL, a replacement task is started in
    /// the job's allocation with the same command and its rank, and the job ends with the
    /// hash of an undisturbed `lockstep train --workers 3`.
    func testElasticJobTakesAReplacementTask() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to start the namespace Slurm cluster (CI runs as root)") }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cluster = root.deletingLastPathComponent().appendingPathComponent("shared/cluster/slurm-netns.sh").path
        guard FileManager.default.fileExists(atPath: cluster) else { throw XCTSkip("\(cluster) not found") }
        let wasUp = FileManager.default.fileExists(atPath: "/run/ls-slurmctld.pid") && clusterAnswers()
        if !wasUp {
            let up = try ChildProcess(path: "/bin/bash", [cluster, "up", "3"], name: "slurm-netns.sh up")
            guard up.wait(seconds: 600) == 0 else { throw XCTSkip("could not start the namespace Slurm cluster:\n\(up.text)") }
        }
        defer { if !wasUp { _ = try? ChildProcess(path: "/bin/bash", [cluster, "down"], name: "slurm-netns.sh down").wait(seconds: 60) } }

        let config = root.appendingPathComponent("configs/fashion-mlp.toml").path
        let out = NSTemporaryDirectory() + "lockstep-slurm-elastic-\(getpid())"
        let flags = ["--epochs", "2", "--max-steps", "600"]
        let reference = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "3"] + flags + ["--metrics", out + "-ref.jsonl"])
        XCTAssertEqual(reference.wait(seconds: 300), 0, reference.text)
        let lockstep = ChildProcess.binDirectory.appendingPathComponent("lockstep").path
        let submit = try ChildProcess(path: "/usr/bin/sbatch", ["--parsable", "-N", "3", "--chdir", root.path,
                                                                root.appendingPathComponent("deploy/slurm/lockstep.sbatch").path, config] + flags
                                      + ["--checkpoint-dir", out + "/ck", "--checkpoint-every", "20", "--max-restarts", "1"],
                                      environment: ["LOCKSTEP_BIN": lockstep, "LOCKSTEP_OUT": out], name: "sbatch")
        XCTAssertEqual(submit.wait(seconds: 60), 0, submit.text)
        let job = submit.text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ";").first.map(String.init) ?? ""
        defer { _ = try? ChildProcess(path: "/usr/bin/scancel", [job], name: "scancel").wait(seconds: 30) }
        // Rank 1's process, once training runs.
        var victim: pid_t?
        let deadline = Date().addingTimeInterval(120)
        while victim == nil, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.5)
            let log = (try? String(contentsOfFile: out + "/rank-0.log", encoding: .utf8)) ?? ""
            guard log.contains("epoch 1 step") else { continue }
            victim = ElasticTests.processes(environment: "SLURM_PROCID=1", command: lockstep + " run").first
        }
        let pid = try XCTUnwrap(victim, "rank 1 did not start training within 120 s")
        Thread.sleep(forTimeInterval: 4)  // past the first checkpoints
        kill(pid, SIGKILL)
        // The coordinator's address, as rank 1 was told it (the port comes from the job id).
        let first = (try? String(contentsOfFile: out + "/rank-1.log", encoding: .utf8)) ?? ""
        let coordinator = try XCTUnwrap(first.split(separator: "\n").first { $0.contains("coordinator tcp://") }
            .map { String($0[$0.range(of: "coordinator tcp://")!.upperBound...]) }, first)
        let keys = out + "/keys"
        let replacement = try ChildProcess(path: "/usr/bin/srun", ["--jobid=\(job)", "--overlap", "-N1", "-n1", "--output=\(out)/rank-1-replacement.log",
                                                                   lockstep, "run", "--rank", "1", "--world-size", "3", "--coordinator", coordinator,
                                                                   "--config", config, "--key", keys + "/job.key", "--allow", keys],
                                           name: "srun replacement")
        XCTAssertEqual(replacement.wait(seconds: 300), 0, replacement.text + ((try? String(contentsOfFile: out + "/rank-1-replacement.log", encoding: .utf8)) ?? ""))
        let done = Date().addingTimeInterval(120)
        while Date() < done {
            let q = try ChildProcess(path: "/usr/bin/squeue", ["-h", "-j", job], name: "squeue")
            _ = q.wait(seconds: 20)
            if q.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { break }
            Thread.sleep(forTimeInterval: 1)
        }
        let lines = try TestConfigs.metrics(out + "/metrics.jsonl")
        let final = try XCTUnwrap(lines.last { $0["event"] as? String == "final" }, "no final line in \(out)/metrics.jsonl")
        let expected = try XCTUnwrap(try TestConfigs.metrics(out + "-ref.jsonl").last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["restarts"] as? Int, 1)
        XCTAssertEqual(final["parameters_identical"] as? Bool, true)
        XCTAssertEqual(final["parameter_hash"] as? String, expected["parameter_hash"] as? String)
    }

    /// Whether sinfo lists n2, n3 and n4 within 20 s (a probe: a slow answer is "no", not a failure).
    private func clusterAnswers() -> Bool {
        guard let probe = try? ChildProcess(path: "/bin/sh", ["-c", "sinfo -h -N -o %N 2>/dev/null | grep -c '^n[234]$'"], name: "sinfo") else {
            return false
        }
        guard probe.waitForExit(seconds: 20) == 0 else { probe.terminate(); return false }
        return probe.text.trimmingCharacters(in: .whitespacesAndNewlines) == "3"
    }
}
