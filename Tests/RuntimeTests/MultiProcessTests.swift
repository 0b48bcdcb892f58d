import Foundation
import XCTest
import LockstepRuntime
import LockstepTransport

/// The real executables as separate processes over loopback ZeroMQ.
final class MultiProcessTests: XCTestCase {
    private func finalMetrics(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let lines = try TestConfigs.metrics(path)
        return try XCTUnwrap(lines.last { $0["event"] as? String == "final" }, "no final event in \(path)", file: file, line: line)
    }

    func testTwoWorkersEndBitwiseIdenticalInBothStepModes() throws {
        for mode in ["replicated", "sharded"] {
            let config = try TestConfigs.write()
            let metrics = config + ".\(mode).jsonl"
            let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--step-mode", mode, "--metrics", metrics])
            XCTAssertEqual(run.wait(seconds: 90), 0, run.text)
            let final = try finalMetrics(metrics)
            let hashes = try XCTUnwrap(final["parameter_hashes"] as? [String])
            XCTAssertEqual(hashes.count, 2)
            XCTAssertEqual(Set(hashes).count, 1, "\(mode): parameters differ between workers: \(hashes)")
            XCTAssertEqual(final["parameters_identical"] as? Bool, true)
            XCTAssertGreaterThan(final["test_accuracy"] as? Double ?? 0, 0.5, "\(mode): the synthetic task should be learned")
            if mode == "sharded" {
                let state = try XCTUnwrap(final["optimizer_state_floats_per_worker"] as? [Int])
                let total = 20 * 32 + 32 + 64 + 32 * 4 + 4  // parameters; momentum keeps one float each
                XCTAssertEqual(state.reduce(0, +), total)
                XCTAssertLessThanOrEqual(state.max()!, (total + 1) / 2)
            }
        }
    }

    /// Every spelling ArgumentParser accepts reaches the launcher's children:
    /// `--config=FILE --workers=2 --threads=1` runs both workers on 1 thread, although
    /// the config file says 2 (the job spec, not argv, carries the settings).
    func testEqualsSignSpellingsReachTheWorkers() throws {
        let path = try TestConfigs.write()
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(of: "threads = 1", with: "threads = 2")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let metrics = path + ".equals.jsonl"
        let run = try ChildProcess("lockstep", ["train", "--config=\(path)", "--workers=2", "--threads=1", "--max-steps=4",
                                                "--metrics=\(metrics)"])
        XCTAssertEqual(run.wait(seconds: 90), 0, run.text)
        let threadLines = run.text.split(separator: "\n").filter { $0.contains(" data endpoint ") }
        XCTAssertEqual(threadLines.count, 2, run.text)
        XCTAssertTrue(threadLines.allSatisfy { $0.contains("; 1 thread(s);") }, run.text)
        XCTAssertFalse(run.text.contains("2 thread(s)"), "a worker ignored --threads=1:\n\(run.text)")
        XCTAssertEqual(try finalMetrics(metrics)["steps"] as? Int, 4)
    }

    /// `lockstep run` with torchrun's variables (one command per task, rank 0 also the
    /// coordinator, no address flags) ends with the hash of `lockstep train --workers 2`.
    func testRunTasksFromTheEnvironmentMatchTheLocalLauncher() throws {
        let config = try TestConfigs.write()
        let reference = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--max-steps", "12",
                                                      "--metrics", config + ".ref.jsonl"])
        XCTAssertEqual(reference.wait(seconds: 90), 0, reference.text)
        let port = String(try LocalLauncher.freePort())
        var tasks: [ChildProcess] = []
        for rank in [1, 0] {
            let env = ["RANK": String(rank), "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port]
            var args = ["run", "--config", config, "--max-steps", "12"]
            if rank == 0 { args += ["--metrics", config + ".run.jsonl"] }
            tasks.append(try ChildProcess("lockstep", args, environment: env, name: "rank \(rank)"))
        }
        for t in tasks { XCTAssertEqual(t.wait(seconds: 90), 0, t.text) }
        let ours = try finalMetrics(config + ".run.jsonl")
        XCTAssertEqual(ours["parameters_identical"] as? Bool, true)
        XCTAssertEqual(ours["parameter_hash"] as? String, try finalMetrics(config + ".ref.jsonl")["parameter_hash"] as? String)
        XCTAssertTrue(tasks[1].text.contains("rank 0 of 2 (from torchrun)"), tasks[1].text)
    }

    /// The shared-memory data plane and ZeroMQ over TCP and ipc give the same
    /// bits (3 workers, so messages also pass between non-neighbours), and the
    /// segments' files are gone afterwards.
    func testEveryDataPlaneGivesTheSameBits() throws {
        let config = try TestConfigs.write()
        var hashes: [String: String] = [:]
        for transport in ["tcp", "ipc", "shm"] {
            let metrics = config + ".\(transport).jsonl"
            let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "3", "--transport", transport,
                                                    "--max-steps", "12", "--metrics", metrics])
            XCTAssertEqual(run.wait(seconds: 90), 0, run.text)
            let final = try finalMetrics(metrics)
            XCTAssertEqual(final["parameters_identical"] as? Bool, true, transport)
            hashes[transport] = try XCTUnwrap(final["parameter_hash"] as? String)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/dev/shm").filter { $0.hasPrefix("lockstep-\(run.pid)-") }
            XCTAssertEqual(leftovers, [], "segment files left behind")
        }
        XCTAssertEqual(hashes["shm"], hashes["tcp"])
        XCTAssertEqual(hashes["ipc"], hashes["tcp"])
    }

    /// A worker on shared memory cannot pair with one on TCP: the job stops with
    /// an error that says why, instead of waiting.
    func testMixedDataPlanesAreRefused() throws {
        let config = try TestConfigs.write()
        let port = 20000 + Int((getpid() + 7) % 20000)
        let name = "lockstep-test-mixed-\(getpid())"
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://127.0.0.1:\(port)", "--workers", "2"])
        let w0 = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://127.0.0.1:\(port)", "--bind", "shm://\(name)"])
        let w1 = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://127.0.0.1:\(port)"])
        XCTAssertNotEqual(coordinator.wait(seconds: 60), 0, coordinator.text)
        XCTAssertNotEqual(w0.wait(seconds: 10), 0, w0.text)
        _ = w1.wait(seconds: 10)
        XCTAssertTrue(w0.text.contains("every worker on this machine") || w1.text.contains("every worker on this machine")
                      || coordinator.text.contains("every worker on this machine"),
                      coordinator.text + w0.text + w1.text)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/dev/shm/\(name)"))
    }

    /// Coordinator and workers started by hand, as on three hosts, give the launcher's result.
    func testSeparatelyStartedProcessesMatchTheLauncher() throws {
        let config = try TestConfigs.write()
        let launched = config + ".launched.jsonl", manual = config + ".manual.jsonl"
        let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--metrics", launched])
        XCTAssertEqual(run.wait(seconds: 90), 0, run.text)

        let port = 20000 + Int(getpid() % 20000)
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://127.0.0.1:\(port)", "--workers", "2", "--metrics", manual])
        let w0 = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://127.0.0.1:\(port)"])
        let w1 = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://127.0.0.1:\(port)"])
        XCTAssertEqual(coordinator.wait(seconds: 90), 0, coordinator.text)
        XCTAssertEqual(w0.wait(seconds: 10), 0, w0.text)
        XCTAssertEqual(w1.wait(seconds: 10), 0, w1.text)
        XCTAssertEqual(try finalMetrics(manual)["parameter_hash"] as? String, try finalMetrics(launched)["parameter_hash"] as? String,
                       "same seed and world size must give the same parameters")
    }

    /// Flags that change the model (`--activation`, `--local-bn`) given to the launcher reach
    /// every worker: the workers, started with the plain config file, train the overridden model.
    func testModelFlagsReachTheWorkers() throws {
        let config = try TestConfigs.write()
        var hashes: [[String]] = []
        for flags in [[], ["--activation", "tanh", "--local-bn"]] {
            let metrics = config + ".\(flags.count).jsonl"
            let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--max-steps", "5",
                                                    "--metrics", metrics] + flags)
            XCTAssertEqual(run.wait(seconds: 90), 0, run.text)
            let final = try finalMetrics(metrics)
            XCTAssertEqual(final["parameters_identical"] as? Bool, true, "\(flags)")
            hashes.append(try XCTUnwrap(final["parameter_hashes"] as? [String]))
        }
        XCTAssertNotEqual(hashes[0], hashes[1], "the overridden model trained like the plain one")
    }

    /// A worker that fails (a checkpoint written with another optimizer) stops the whole
    /// job at once, and resuming a run that has no steps left (its loss is NaN) ends
    /// cleanly with a final metrics line.
    func testWorkerFailureStopsTheJobAndFinishedResumeEnds() throws {
        let config = try TestConfigs.write(trainSamples: 256, epochs: 1)
        let ckpt = config + ".b.safetensors", metrics = config + ".jsonl"
        let save = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--max-steps", "5", "--save", ckpt])
        XCTAssertEqual(save.wait(seconds: 60), 0, save.text)

        let bad = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--resume", ckpt, "--optimizer", "adam"])
        XCTAssertEqual(bad.wait(seconds: 60), 1, bad.text)
        XCTAssertTrue(bad.text.contains("written with optimizer momentum"), bad.text)
        XCTAssertFalse(bad.text.contains("; ignored"), "the coordinator must stop the job, not ignore the failure: \(bad.text)")
        XCTAssertFalse(bad.text.contains("silent"), "nobody should wait for a peer timeout: \(bad.text)")

        let done = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--max-steps", "5",
                                                 "--resume", ckpt, "--metrics", metrics])
        XCTAssertEqual(done.wait(seconds: 60), 0, done.text)
        let final = try finalMetrics(metrics)
        XCTAssertEqual(final["steps"] as? Int, 5)
        XCTAssertTrue(final["loss"] is NSNull, "no epoch ran, so the loss is NaN, written as null: \(final)")
    }

    func testWorkerWithAnotherModelIsRefused() throws {
        let config = try TestConfigs.write()
        let other = try TestConfigs.write(layers: "\"linear 64\", \"relu\", \"linear 4\"")
        let port = 20000 + Int((getpid() + 7) % 20000)
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://127.0.0.1:\(port)", "--workers", "1", "--join-timeout", "5"])
        let worker = try ChildProcess("lockstep-worker", ["--config", other, "--coordinator", "tcp://127.0.0.1:\(port)"])
        let status = worker.wait(seconds: 20)
        XCTAssertNotNil(status)
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(worker.text.contains("refused by the coordinator"), worker.text)
        XCTAssertTrue(worker.text.contains("hash"), worker.text)
        XCTAssertNotEqual(coordinator.wait(seconds: 20), 0)
        XCTAssertTrue(coordinator.text.contains("refused a worker"), coordinator.text)
    }

    /// A worker killed with SIGKILL mid-epoch: every survivor and the coordinator exit
    /// non-zero with an error naming the rank, within the deadline (4 s here) plus slack.
    func testKilledWorkerStopsTheWholeJob() throws {
        // Over ZeroMQ and over shared memory (where nothing but the deadlines and
        // the coordinator can tell that a peer is gone).
        for plane in ["tcp", "shm"] {
            let config = try TestConfigs.write(trainSamples: 200_000, epochs: 5)
            let port = 20000 + Int((getpid() + 13 + (plane == "shm" ? 1 : 0)) % 20000)
            let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://127.0.0.1:\(port)", "--workers", "3"])
            let segment = "lockstep-test-kill-\(getpid())-"
            let workers = try (0..<3).map {
                try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://127.0.0.1:\(port)", "--rank", String($0)]
                                 + (plane == "shm" ? ["--bind", "shm://\(segment)\($0)"] : []), name: "rank \($0)")
            }
            defer { workers.forEach { $0.terminate() }; coordinator.terminate() }
            XCTAssertTrue(coordinator.waitForOutput("epoch 1 step", seconds: 60), coordinator.text)
            let killedAt = Date()
            kill(workers[1].pid, SIGKILL)
            for survivor in [workers[0], workers[2], coordinator] {
                let status = survivor.wait(seconds: 20)
                XCTAssertNotNil(status)
                XCTAssertNotEqual(status, 0, "\(plane): \(survivor.name) must fail: \(survivor.text)")
                XCTAssertTrue(survivor.text.contains("error"), survivor.text)
            }
            XCTAssertLessThan(Date().timeIntervalSince(killedAt), 15, "\(plane): survivors took too long to stop")
            XCTAssertTrue(coordinator.text.contains("rank 1"), "the coordinator must name the dead rank: \(coordinator.text)")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/dev/shm").filter { $0.hasPrefix(segment) }
            XCTAssertEqual(leftovers, [], "segment files left behind")
        }
    }

    /// Garbage sent to a worker's data endpoint is rejected, logged, and training completes.
    func testMalformedFrameIsRejectedAndLogged() throws {
        let config = try TestConfigs.write(trainSamples: 8192)
        let port = 20000 + Int((getpid() + 21) % 20000)
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://127.0.0.1:\(port)", "--workers", "2"])
        let w0 = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://127.0.0.1:\(port)", "--rank", "0"])
        let w1 = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://127.0.0.1:\(port)", "--rank", "1"])
        defer { [w0, w1, coordinator].forEach { $0.terminate() } }
        XCTAssertTrue(w0.waitForOutput("data endpoint ", seconds: 30), w0.text)
        let line = try XCTUnwrap(w0.text.split(separator: "\n").first { $0.contains("data endpoint ") })
        let endpoint = String(line.split(separator: " ").first { $0.hasPrefix("tcp://") }!).trimmingCharacters(in: CharacterSet(charactersIn: ";"))
        let context = try ZMQContext()
        let push = try ZMQSocket(context: context, kind: .push)
        try push.connect(endpoint)
        _ = try push.send(Array("this is not a Lockstep frame".utf8))
        var corrupt = WireFrame(kind: .data, jobID: 1, senderRank: 1, payload: [1, 2, 3, 4]).encoded()
        corrupt[corrupt.count - 1] ^= 0xFF
        _ = try push.send(corrupt)
        XCTAssertEqual(coordinator.wait(seconds: 90), 0, coordinator.text)
        XCTAssertEqual(w0.wait(seconds: 10), 0, w0.text)
        XCTAssertTrue(w0.text.lowercased().contains("reject"), "the worker must log the bad frame: \(w0.text)")
        push.close()
    }
}
