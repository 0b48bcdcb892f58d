import Foundation
import XCTest
import LockstepData

/// `--save` then `--resume` continues exactly: 10 + 10 steps give the bits of 20 steps,
/// for a single process (one thread, and two model replicas on threads) and for two
/// workers in sharded mode (optimizer state gathered).
final class CheckpointResumeTests: XCTestCase {
    private func hash(_ metrics: String) throws -> String {
        let final = try XCTUnwrap(try TestConfigs.metrics(metrics).last { $0["event"] as? String == "final" })
        return try XCTUnwrap(final["parameter_hash"] as? String)
    }

    private func train(_ args: [String]) throws {
        let p = try ChildProcess("lockstep", ["train"] + args)
        XCTAssertEqual(p.wait(seconds: 60), 0, p.text)
    }

    func testResumeContinuesExactly() throws {
        for extra in [["--optimizer", "adam", "--dropout", "0.2"], ["--workers", "2", "--step-mode", "sharded", "--optimizer", "adamw"],
                      ["--threads", "2", "--thread-parallelism", "data", "--optimizer", "adam"]] {
            let config = try TestConfigs.write(trainSamples: 256, epochs: 3)
            let straight = config + ".a.jsonl", resumed = config + ".c.jsonl", ckpt = config + ".b.safetensors"
            try train(["--config", config, "--max-steps", "20", "--metrics", straight] + extra)
            try train(["--config", config, "--max-steps", "10", "--save", ckpt] + extra)
            let file = try SafeTensors.read(path: ckpt)
            XCTAssertEqual(file.metadata["lockstep.global_step"], "10")
            XCTAssertNotNil(file.tensors["optimizer.exp_avg"], "optimizer state must be in the checkpoint")
            XCTAssertEqual(file.tensors["1.num_batches_tracked"]?.dtype, .I64)
            try train(["--config", config, "--max-steps", "20", "--resume", ckpt, "--metrics", resumed] + extra)
            XCTAssertEqual(try hash(resumed), try hash(straight), "resumed run differs (\(extra))")
        }
    }

    func testResumeRefusesAnotherOptimizer() throws {
        let config = try TestConfigs.write(trainSamples: 256, epochs: 1)
        let ckpt = config + ".b.safetensors"
        try train(["--config", config, "--max-steps", "5", "--save", ckpt])
        let p = try ChildProcess("lockstep", ["train", "--config", config, "--resume", ckpt, "--optimizer", "adam"])
        XCTAssertEqual(p.wait(seconds: 30), 1)
        XCTAssertTrue(p.text.contains("written with optimizer momentum"), p.text)
    }
}

extension CheckpointResumeTests {
    /// `--checkpoint-dir` during a run killed with SIGKILL at a random step, then
    /// `--resume auto`: the newest complete checkpoint, and the uninterrupted run's bits.
    /// A torn save (data file without manifest) is skipped; only the newest K stay.
    func testResumeAutoAfterSigkillContinuesExactly() throws {
        for extra in [["--optimizer", "adam", "--dropout", "0.2"], ["--workers", "2", "--step-mode", "sharded"]] {
            let config = try TestConfigs.write(trainSamples: 60_000, epochs: 2)
            let dir = config + ".ck", straight = config + ".a.jsonl", resumed = config + ".b.jsonl"
            let flags = ["--config", config, "--checkpoint-dir", dir, "--checkpoint-every", "100", "--keep-checkpoints", "2"] + extra
            try train(["--config", config, "--metrics", straight] + extra)
            let run = try ChildProcess("lockstep", ["train"] + flags)
            XCTAssertTrue(run.waitForOutput("epoch 1 step", seconds: 60), run.text)
            Thread.sleep(forTimeInterval: Double.random(in: 1.0...3.0))
            kill(run.pid, SIGKILL)
            _ = run.wait(seconds: 10)
            Thread.sleep(forTimeInterval: 1)  // the launcher's children stop when it is gone
            let manifests = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".json") }.sorted()
            XCTAssertLessThanOrEqual(manifests.count, 2, "only the newest 2 stay: \(manifests)")
            let newest = try XCTUnwrap(manifests.last, "no checkpoint before the kill")
            // A save torn after the newest: its data file without a manifest.
            let torn = String(format: "%@/step-%08d.safetensors", dir, Int(newest.dropFirst(5).prefix(8))! + 1)
            try Data(repeating: 7, count: 1000).write(to: URL(fileURLWithPath: torn))
            let again = try ChildProcess("lockstep", ["train"] + flags + ["--resume", "auto", "--metrics", resumed])
            XCTAssertEqual(again.wait(seconds: 120), 0, again.text)
            XCTAssertTrue(again.text.contains("resuming from \(dir)/\(newest.dropLast(5)).safetensors"), again.text)
            XCTAssertTrue(again.text.contains("has no manifest"), again.text)
            XCTAssertEqual(try hash(resumed), try hash(straight), "resumed run differs (\(extra))")
        }
    }

    /// The step position survives a change of world size: 2 workers resume a checkpoint of 3.
    func testResumeWithFewerWorkersGoesOnFromTheSameSample() throws {
        let config = try TestConfigs.write(trainSamples: 4800, epochs: 3)
        let dir = config + ".ck"
        try train(["--config", config, "--workers", "3", "--max-steps", "150", "--checkpoint-dir", dir, "--step-mode", "sharded"])
        let file = try SafeTensors.read(path: dir + "/step-00000150.safetensors")
        XCTAssertEqual(file.metadata["lockstep.world_size"], "3")
        XCTAssertEqual(file.metadata["lockstep.epoch_index"], "1")  // 100 steps of 48 samples per epoch
        XCTAssertEqual(file.metadata["lockstep.epoch_samples"], "2400")
        let resumed = config + ".r.jsonl"
        try train(["--config", config, "--workers", "2", "--checkpoint-dir", dir, "--resume", "auto", "--step-mode", "sharded",
                   "--metrics", resumed])
        // 2 workers: 150 steps of 32 per epoch; sample 2400 of epoch 1 is its step 75: 150 + 75.
        let lines = try TestConfigs.metrics(resumed)
        let final = try XCTUnwrap(lines.last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["steps"] as? Int, 450)
        XCTAssertEqual(lines.filter { $0["event"] as? String == "epoch" }.first?["steps"] as? Int, 75)
        XCTAssertEqual(final["parameters_identical"] as? Bool, true)
    }
}
