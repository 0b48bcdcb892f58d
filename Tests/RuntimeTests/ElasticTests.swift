import Foundation
import XCTest

/// Long runs that survive failures: the fault-injection suite (`tools/faults.py`, one
/// trial of each fault), a job that shrinks to `--min-workers`, a straggler named by
/// the coordinator, the soak benchmark and `lockstep plot`.
final class ElasticTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every fault of `tools/faults.py` once (the full table, 60 faults, is in docs/OPERATIONS.md):
    /// detected within its bound, recovered, no hang, no lost checkpoint, the undisturbed hash.
    func testFaultInjectionRecoversFromEveryFault() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("faults-\(getpid()).json").path
        let run = try ChildProcess(path: "/usr/bin/env", ["python3", Self.root.appendingPathComponent("tools/faults.py").path,
                                                          "--rounds", "1", "--seed", "3", "--json", out], name: "faults.py")
        let status = run.wait(seconds: 600)
        print(run.text)
        XCTAssertEqual(status, 0, run.text)
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let faults = try XCTUnwrap(report["faults"] as? [[String: Any]])
        let injected = faults.filter { !(($0["note"] as? String) ?? "").hasPrefix("skipped") }
        XCTAssertGreaterThanOrEqual(injected.count, getuid() == 0 ? 9 : 6, "\(faults)")
        for f in injected {
            XCTAssertEqual(f["detected"] as? Bool, true, "\(f)")
            XCTAssertEqual(f["recovered"] as? Bool, true, "\(f)")
            XCTAssertEqual(f["hang"] as? Bool, false, "\(f)")
            XCTAssertEqual(f["lost_checkpoint"] as? Bool, false, "\(f)")
            XCTAssertNotEqual(f["hash_equal"] as? Bool, false, "\(f)")
        }
    }

    /// A worker of 3 is lost and none replaces it: with `--min-workers 2` the job goes on
    /// with 2 from the last checkpoint and reaches the 5-epoch recipe's accuracy.
    func testJobShrinksToMinWorkersAndReachesAccuracy() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("shrink-\(getpid())").path
        let run = try ChildProcess("lockstep", ["train", "--config", Self.root.appendingPathComponent("configs/fashion-mlp.toml").path,
                                                "--workers", "3", "--epochs", "5", "--checkpoint-dir", dir, "--checkpoint-every", "40",
                                                "--min-workers", "2", "--rejoin-timeout", "5", "--metrics", dir + ".jsonl"])
        defer { run.terminate() }
        XCTAssertTrue(run.waitForOutput("epoch 1 step", seconds: 120), run.text)
        Thread.sleep(forTimeInterval: 2)
        let worker = try XCTUnwrap(Self.children(of: run.pid).first { $0.1.contains("lockstep-worker") && $0.1.contains("--rank 1 ") }, run.text)
        kill(worker.0, SIGKILL)
        XCTAssertEqual(run.wait(seconds: 600), 0, run.text)
        XCTAssertTrue(run.text.contains("rank 1 (") && run.text.contains("closed its connection"), run.text)
        let lines = try TestConfigs.metrics(dir + ".jsonl")
        let restart = try XCTUnwrap(lines.first { $0["event"] as? String == "restart" }, "\(lines)")
        XCTAssertEqual(restart["workers"] as? Int, 2)
        XCTAssertEqual(restart["rank"] as? Int, 1)
        let final = try XCTUnwrap(lines.last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["workers"] as? Int, 2)
        XCTAssertEqual(final["restarts"] as? Int, 1)
        XCTAssertEqual(final["parameters_identical"] as? Bool, true)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(final["test_accuracy"] as? Double), 0.88)
    }

    /// A worker throttled like a host whose CPU is taken (stopped 60 ms of every 100 ms)
    /// is named by the coordinator with rank, host and phase. Compute is emulated (5 ms a
    /// step), so it dominates the step as in a real model and the throttle lands in it.
    func testStragglerIsNamed() throws {
        let config = try TestConfigs.write(layers: "\"linear 256\", \"relu\", \"linear 4\"", trainSamples: 400_000, epochs: 1)
        let metrics = config + ".jsonl"
        let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "3", "--max-steps", "6000", "--metrics", metrics,
                                                "--emulate-compute-ms", "5"])
        defer { run.terminate() }
        XCTAssertTrue(run.waitForOutput("epoch 1 step", seconds: 60), run.text)
        let slow = try XCTUnwrap(Self.children(of: run.pid).first { $0.1.contains("lockstep-worker") && $0.1.contains("--rank 2 ") }, run.text)
        let deadline = Date().addingTimeInterval(30)
        let named = { run.text.split(separator: "\n").contains { $0.contains("rank 2 (") && $0.contains("is a straggler: compute") } }
        while Date() < deadline, !named() {
            kill(slow.0, SIGSTOP)
            Thread.sleep(forTimeInterval: 0.06)
            kill(slow.0, SIGCONT)
            Thread.sleep(forTimeInterval: 0.04)
        }
        kill(slow.0, SIGCONT)
        XCTAssertTrue(named(), run.text)
        run.terminate()
    }

    func testSoakStaysFlat() throws {
        let run = try ChildProcess("lockstep", ["bench", "soak", "--steps", "4000", "--interval", "0.25"])
        XCTAssertEqual(run.wait(seconds: 300), 0, run.text)
        XCTAssertTrue(run.text.contains(": flat"), run.text)
    }

    func testPlotDrawsTheCurvesAndRefusesOtherFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("plot-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let lines = (1...3).map { "{\"event\":\"epoch\",\"epoch\":\($0),\"loss\":\(1.0 / Double($0)),\"train_accuracy\":0.\($0 + 6),\"test_accuracy\":0.\($0 + 5)}" }
        try (lines[0] + "\n{\"event\":\"restart\",\"restart\":1}\n" + lines[1...].joined(separator: "\n") + "\n")
            .write(toFile: dir + "/m.jsonl", atomically: true, encoding: .utf8)
        let plot = try ChildProcess("lockstep", ["plot", dir + "/m.jsonl", "--out", dir + "/curves.svg"])
        XCTAssertEqual(plot.wait(seconds: 30), 0, plot.text)
        let svg = try String(contentsOfFile: dir + "/curves.svg", encoding: .utf8)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 3, "loss, train and test accuracy")
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 9, "three points per curve")
        XCTAssertTrue(svg.contains(">restart<"))
        try "not json\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
        let bad = try ChildProcess("lockstep", ["plot", dir + "/bad.jsonl", "--out", dir + "/x.svg"])
        XCTAssertEqual(bad.wait(seconds: 30), 1, bad.text)
        XCTAssertTrue(bad.text.contains("no epoch lines"), bad.text)
    }

    /// Processes whose environment holds `environment` (NAME=VALUE) and whose command line starts with `command`.
    static func processes(environment: String, command: String) -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> pid_t? in
            guard let p = pid_t(name), let cmd = FileManager.default.contents(atPath: "/proc/\(p)/cmdline"),
                  String(decoding: cmd.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).hasPrefix(command),
                  let env = FileManager.default.contents(atPath: "/proc/\(p)/environ") else { return nil }
            return env.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == environment } ? p : nil
        }
    }

    /// (pid, command line) of the direct children of `pid`.
    static func children(of pid: pid_t) -> [(pid_t, String)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { name -> (pid_t, String)? in
            guard let p = pid_t(name), let stat = try? String(contentsOfFile: "/proc/\(p)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 1, pid_t(fields[1]) == pid,
                  let cmd = FileManager.default.contents(atPath: "/proc/\(p)/cmdline") else { return nil }
            return (p, String(decoding: cmd.map { $0 == 0 ? 32 : $0 }, as: UTF8.self))
        }
    }
}
