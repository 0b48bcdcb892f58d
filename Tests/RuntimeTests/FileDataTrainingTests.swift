import Foundation
import XCTest
import LockstepData

/// Training on the user's own files, convolutional models end to end, and
/// `lockstep eval` / `lockstep predict` on the checkpoints runs write.
final class FileDataTrainingTests: XCTestCase {
    private var work = ""

    override func setUpWithError() throws {
        work = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-files-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: work) }

    /// `lockstep ARGS` in the work directory: (status, output).
    @discardableResult
    private func lockstep(_ args: [String], seconds: Double = 120) throws -> (Int32?, String) {
        let exe = ChildProcess.binDirectory.appendingPathComponent("lockstep").path
        guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("\(exe) is not built") }
        let p = try ChildProcess(path: exe, args, directory: work, name: "lockstep")
        return (p.wait(seconds: seconds), p.text)
    }

    private func write(_ text: String, _ name: String) throws -> String {
        let path = work + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func final(_ metrics: String) throws -> [String: Any] {
        try XCTUnwrap(try TestConfigs.metrics(work + "/" + metrics).last { $0["event"] as? String == "final" })
    }

    private func json(_ text: String) throws -> [String: Any] {
        let line = try XCTUnwrap(text.split(separator: "\n").last { $0.hasPrefix("{") })
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    /// scikit-learn's digits (8×8 pixels as 64 columns + `label`): CSV ≥ 95%, the same data as
    /// .npy trains to the same parameter hash; eval reproduces the final accuracy; predict agrees with eval.
    func testDigitsFromCSVAndNPY() throws {
        let python = try TestConfigs.python(with: ["sklearn": "scikit-learn", "numpy": "numpy"])
        let script = try write("""
            import csv, numpy as np
            from sklearn.datasets import load_digits
            d = load_digits(); order = np.random.default_rng(0).permutation(len(d.target)); n = int(0.8 * len(order))
            for name, rows in (("train", order[:n]), ("test", order[n:])):
                with open(name + ".csv", "w", newline="") as f:
                    w = csv.writer(f); w.writerow(["px%d" % i for i in range(64)] + ["label"])
                    for i in rows: w.writerow([int(v) for v in d.data[i]] + [int(d.target[i])])
                np.save(name + "_x.npy", d.data[rows].astype(np.float32)); np.save(name + "_y.npy", d.target[rows].astype(np.int64))
            """, "make.py")
        let p = try ChildProcess(path: python, [script], directory: work, name: "python")
        XCTAssertEqual(p.wait(seconds: 120), 0, p.text)
        let common = """
            [model]
            layers = ["linear 128", "batchnorm", "relu", "linear 10"]
            [train]
            epochs = 15
            batch_size = 32
            [optimizer]
            name = "adam"
            lr = 0.001
            """
        _ = try write(common + "\n[data]\nformat = \"csv\"\ntrain = \"train.csv\"\ntest = \"test.csv\"\nlabel = \"label\"\nstandardize = true\n", "csv.toml")
        _ = try write(common + "\n[data]\nformat = \"npy\"\ntrain_x = \"train_x.npy\"\ntrain_y = \"train_y.npy\"\ntest_x = \"test_x.npy\"\ntest_y = \"test_y.npy\"\nstandardize = true\n", "npy.toml")
        var (status, text) = try lockstep(["train", "--config", "csv.toml", "--metrics", "csv.jsonl", "--save", "csv.safetensors"])
        XCTAssertEqual(status, 0, text)
        (status, text) = try lockstep(["train", "--config", "npy.toml", "--metrics", "npy.jsonl"])
        XCTAssertEqual(status, 0, text)
        let csv = try final("csv.jsonl"), npy = try final("npy.jsonl")
        let accuracy = try XCTUnwrap(csv["test_accuracy"] as? Double)
        XCTAssertGreaterThanOrEqual(accuracy, 0.95)
        XCTAssertEqual(csv["parameter_hash"] as? String, npy["parameter_hash"] as? String, "CSV and .npy of the same data must train alike")

        (status, text) = try lockstep(["eval", "--checkpoint", "csv.safetensors", "--config", "csv.toml", "--json"])
        XCTAssertEqual(status, 0, text)
        let report = try json(text)
        XCTAssertEqual(report["accuracy"] as? Double, accuracy)
        XCTAssertEqual((report["per_class"] as? [Any])?.count, 10)
        (status, text) = try lockstep(["eval", "--checkpoint", "csv.safetensors", "--config", "csv.toml"])
        XCTAssertTrue(text.contains(String(format: "test accuracy %.2f%%", 100 * accuracy)), text)

        // Ten rows: predict's classes (argmax of its probabilities) give eval's confusion matrix on the same rows.
        // (Python's csv module ends lines with \r\n, one Character in Swift.)
        let ten = try String(contentsOfFile: work + "/test.csv", encoding: .utf8).split(whereSeparator: \.isNewline).prefix(11)
        _ = try write(ten.joined(separator: "\n") + "\n", "ten.csv")
        (status, text) = try lockstep(["predict", "--checkpoint", "csv.safetensors", "--input", "ten.csv", "--output", "p.csv"])
        XCTAssertEqual(status, 0, text)
        let lines = try String(contentsOfFile: work + "/p.csv", encoding: .utf8).split(whereSeparator: \.isNewline)
        XCTAssertEqual(lines.count, 11)
        XCTAssertEqual(lines[0], "class," + (0..<10).map { "p_\($0)" }.joined(separator: ","))
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: 10), count: 10)
        for (row, line) in zip(ten.dropFirst(), lines.dropFirst()) {
            let fields = line.split(separator: ",")
            let probabilities = fields.dropFirst().compactMap { Double($0) }
            XCTAssertEqual(probabilities.count, 10)
            XCTAssertEqual(probabilities.reduce(0, +), 1, accuracy: 1e-4)
            let argmax = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
            XCTAssertEqual(Int(fields[0]), argmax - probabilities.startIndex)
            confusion[Int(row.split(separator: ",").last!)!][argmax - probabilities.startIndex] += 1
        }
        (status, text) = try lockstep(["eval", "--checkpoint", "csv.safetensors", "--config", "csv.toml", "--data", "ten.csv", "--json"])
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(try json(text)["confusion"] as? [[Int]], confusion)
    }

    /// Every bad file stops the run with exit 1 and one line naming the file and the row.
    func testBadFilesExitOneNamingFileAndRow() throws {
        _ = try write("a,b,label\n1,2,0\n3,4,1\n5,6,1\n", "good.csv")
        let cases: [(file: String, body: String, expect: [String])] = [
            ("ragged.csv", "a,b,label\n1,2,0\n3,1\n", ["ragged.csv", "line 3 (row 2)"]),
            ("word.csv", "a,b,label\n1,2,0\n3,four,1\n", ["word.csv", "line 3 (row 2), column 2 \"b\"", "not a number"]),
            ("range.csv", "a,b,label\n1,2,0\n3,4,5\n", ["range.csv", "line 3 (row 2)", "outside the class range 0...1"]),
        ]
        for c in cases {
            _ = try write(c.body, c.file)
            _ = try write("[model]\nlayers = [\"linear 4\", \"relu\", \"linear 2\"]\n[data]\nformat = \"csv\"\ntrain = \"good.csv\"\ntest = \"\(c.file)\"\nclasses = 2\n[train]\nepochs = 1\n",
                          "bad.toml")
            let (status, text) = try lockstep(["train", "--config", "bad.toml"])
            XCTAssertEqual(status, 1, text)
            let errors = text.split(separator: "\n").filter { $0.hasPrefix("error:") }
            XCTAssertEqual(errors.count, 1, text)
            for needle in c.expect { XCTAssertTrue(text.contains(needle), "\(c.file): \(needle) not in \(text)") }
        }
    }

    /// 10×10 IDX images (not 28×28) through a small CNN: classes are learnable blobs.
    func testIDXOfAnotherSizeTrainsACNN() throws {
        func make(_ count: Int, seed: UInt64) -> (IDXArray, IDXArray) {
            var state = seed
            func next() -> UInt64 { state = state &* 6364136223846793005 &+ 1442695040888963407; return state >> 33 }
            var pixels = [UInt8](), labels = [UInt8]()
            for _ in 0..<count {
                let c = Int(next() % 4)
                labels.append(UInt8(c))
                for r in 0..<10 {
                    for k in 0..<10 {
                        let inside = (r < 5) == (c < 2) && (k < 5) == (c % 2 == 0)
                        pixels.append(UInt8(clamping: (inside ? 150 : 40) + Int(next() % 60)))
                    }
                }
            }
            return (IDXArray(dimensions: [count, 10, 10], bytes: pixels), IDXArray(dimensions: [count], bytes: labels))
        }
        let (trainX, trainY) = make(600, seed: 1), (testX, testY) = make(200, seed: 2)
        try IDX.write(trainX, to: work + "/train-images.idx", compressed: true)
        try IDX.write(trainY, to: work + "/train-labels.idx", compressed: true)
        try IDX.write(testX, to: work + "/test-images.idx", compressed: false)
        try IDX.write(testY, to: work + "/test-labels.idx", compressed: false)
        _ = try write("""
            [model]
            layers = ["conv 4 3 pad 1", "batchnorm", "relu", "maxpool 2", "flatten", "linear 4"]
            [data]
            format = "idx"
            train_images = "train-images.idx"
            train_labels = "train-labels.idx"
            test_images = "test-images.idx"
            test_labels = "test-labels.idx"
            [train]
            epochs = 2
            batch_size = 32
            """, "idx.toml")
        let (status, text) = try lockstep(["train", "--config", "idx.toml", "--metrics", "idx.jsonl"])
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("Conv2d(1, 4, 3, padding=1)"), text)
        XCTAssertGreaterThan(try XCTUnwrap(try final("idx.jsonl")["test_accuracy"] as? Double), 0.9)
    }

    /// A CNN checkpoint loads into torch's nn.Sequential with strict=True (rebuilt from the
    /// checkpoint's metadata), and its probabilities match `lockstep predict` within 1e-4
    /// (tools/torch_check_checkpoint.py). Needs a python with torch, safetensors and numpy.
    func testCNNCheckpointLoadsIntoTorchStrict() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let python = [root + "/.build/anchor-venv/bin/python", "/usr/bin/python3"].first { candidate in
            FileManager.default.isExecutableFile(atPath: candidate)
                && (try? ChildProcess(path: candidate, ["-c", "import torch, safetensors, numpy"], name: "python").wait(seconds: 60)) == 0
        }
        guard let python else { throw XCTSkip("no python with torch, safetensors and numpy (tools/anchor_venv.sh makes one)") }
        try testIDXOfAnotherSizeTrainsACNN()
        var (status, text) = try lockstep(["train", "--config", "idx.toml", "--max-steps", "10", "--save", "idx.safetensors"])
        XCTAssertEqual(status, 0, text)
        let rows = try ChildProcess(path: python, ["-c", "import numpy as np; np.save('rows.npy', (np.arange(12 * 100) % 251).astype(np.uint8).reshape(12, 10, 10))"],
                                    directory: work, name: "python")
        XCTAssertEqual(rows.wait(seconds: 60), 0, rows.text)
        let check = try ChildProcess(path: python, [root + "/tools/torch_check_checkpoint.py", "--checkpoint", work + "/idx.safetensors",
                                                   "--input", work + "/rows.npy", "--lockstep", ChildProcess.binDirectory.appendingPathComponent("lockstep").path],
                                     directory: work, name: "torch check")
        (status, text) = (check.wait(seconds: 120), check.text)
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("strict load: ok"), text)
    }

    /// configs/fashion-cnn.toml with two workers for a few steps: identical parameters on both,
    /// and `lockstep eval` on the saved checkpoint prints the accuracy the run's final line printed.
    func testFashionCNNTwoWorkersAndEval() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let config = root + "/configs/fashion-cnn.toml"
        var (status, text) = try lockstep(["train", "--config", config, "--workers", "2", "--max-steps", "25", "--threads", "1",
                                           "--metrics", "cnn.jsonl", "--save", "cnn.safetensors"], seconds: 300)
        XCTAssertEqual(status, 0, text)
        XCTAssertTrue(text.contains("parameters bitwise identical on all 2 workers"), text)
        let accuracy = try XCTUnwrap(try final("cnn.jsonl")["test_accuracy"] as? Double)
        XCTAssertGreaterThan(accuracy, 0.5)
        (status, text) = try lockstep(["eval", "--checkpoint", "cnn.safetensors", "--config", config, "--json"], seconds: 300)
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(try json(text)["accuracy"] as? Double, accuracy)
        XCTAssertEqual((try json(text)["confusion"] as? [[Int]])?.count, 10)
    }
}
