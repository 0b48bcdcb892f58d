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
