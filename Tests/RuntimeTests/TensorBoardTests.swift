import Foundation
import XCTest

/// `--tensorboard DIR`, in one process and with `--workers 2`, read back by the
/// `tensorboard` package's own event reader (installed into .build/tb-venv;
/// skipped when it cannot be installed).
final class TensorBoardTests: XCTestCase {
    func testTensorBoardReadsTheScalars() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let venv = root.appendingPathComponent(".build/tb-venv").path
        if !FileManager.default.fileExists(atPath: venv + "/bin/python") || (try? ChildProcess(path: venv + "/bin/python", ["-c", "import tensorboard"], name: "python").wait(seconds: 60)) != 0 {
            let install = try ChildProcess(path: "/bin/bash", ["-c", "python3 -m venv \(venv) && \(venv)/bin/pip install -q tensorboard"], name: "pip install tensorboard")
            guard install.wait(seconds: 300) == 0 else { throw XCTSkip("cannot install the tensorboard package here: \(install.text)") }
        }
        let config = try TestConfigs.write(epochs: 2)
        for extra in [[], ["--workers", "2"]] {
            let dir = config + ".tb\(extra.count)", metrics = config + ".m\(extra.count).jsonl"
            let run = try ChildProcess("lockstep", ["train", "--config", config, "--tensorboard", dir, "--metrics", metrics] + extra)
            XCTAssertEqual(run.wait(seconds: 120), 0, run.text)
            let read = try ChildProcess(path: venv + "/bin/python", ["-c", """
                import json, sys
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
                ea = EventAccumulator(sys.argv[1]); ea.Reload()
                print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
                """, dir], name: "tensorboard reader")
            XCTAssertEqual(read.wait(seconds: 120), 0, read.text)
            let line = try XCTUnwrap(read.text.split(separator: "\n").last { $0.hasPrefix("{") }, read.text)
            let scalars = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [[Double]]])
            for tag in ["train/loss", "train/learning_rate", "epoch/loss", "epoch/test_accuracy", "epoch/samples_per_second"] {
                XCTAssertNotNil(scalars[tag], "\(extra): no \(tag) in \(scalars.keys.sorted())")
            }
            let accuracy = try XCTUnwrap(scalars["epoch/test_accuracy"])
            XCTAssertEqual(accuracy.count, 2, "\(extra): one test accuracy per epoch")
            let final = try XCTUnwrap(try TestConfigs.metrics(metrics).last { $0["event"] as? String == "final" })
            XCTAssertEqual(accuracy.last?[1] ?? -1, try XCTUnwrap(final["test_accuracy"] as? Double), accuracy: 1e-6)
            XCTAssertEqual(scalars["train/learning_rate"]?.first?[1] ?? 0, 0.05, accuracy: 1e-7)
        }
    }
}
