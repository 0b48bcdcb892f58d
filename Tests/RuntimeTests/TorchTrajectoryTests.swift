import Foundation
import LockstepRuntime
import XCTest

/// Lockstep against PyTorch on the Fashion-MNIST MLP: tools/torch_trajectory.py trains
/// the same model from the same initialization with `lockstep train` and torch.optim,
/// and compares every tensor of the state_dict and the optimizer state.
///
/// Needs python3 with torch and safetensors, the dataset and a built `lockstep`
/// (`swift build -c release`); skips otherwise. A subset of optimizers and 10 steps
/// keep it near half a minute; the script alone runs all eight for 20 steps.
final class TorchTrajectoryTests: XCTestCase {
    private static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let dataDirectory = "/usr/share/datasets/fashion-mnist"

    /// Runs `/usr/bin/env arguments…` in the package root; kills it after `seconds`.
    /// Returns (status or nil on timeout, output).
    private func run(_ arguments: [String], seconds: Double) throws -> (Int32?, String) {
        let child = try ChildProcess(path: "/usr/bin/env", arguments, directory: Self.packageRoot.path, name: arguments.first ?? "env")
        guard let status = child.waitForExit(seconds: seconds) else { child.terminate(); return (nil, child.text) }
        return (status, child.text)
    }

    /// The release build (fast); else the `lockstep` next to this test bundle.
    private func lockstepBinary() throws -> String {
        let candidates = [
            Self.packageRoot.appendingPathComponent(".build/release/lockstep").path,
            ChildProcess.binDirectory.appendingPathComponent("lockstep").path,
        ]
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("no lockstep executable (looked at \(candidates)); run `swift build -c release` first")
        }
        return found
    }

    func testTrajectoryMatchesTorch() throws {
        let (probe, probeText) = try run(["python3", "-c", "import torch, safetensors, numpy"], seconds: 60)
        guard probe == 0 else {
            throw XCTSkip("python3 with torch, safetensors and numpy is not available: \(probeText.suffix(300))")
        }
        guard FileManager.default.fileExists(atPath: Self.dataDirectory + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not installed in \(Self.dataDirectory) (Debian package dataset-fashion-mnist)")
        }
        let lockstep = try lockstepBinary()
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("torch-trajectory-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let (status, text) = try run([
            "python3", "tools/torch_trajectory.py", "--lockstep", lockstep, "--steps", "10",
            "--optimizers", "sgd,momentum,adagrad,adam", "--data-dir", Self.dataDirectory, "--workdir", work,
        ], seconds: 300)
        XCTAssertNotNil(status, "tools/torch_trajectory.py still running after 300 s; killed. Output:\n\(text)")
        XCTAssertEqual(status, 0, "Lockstep's trajectory differs from torch's:\n\(text)")
    }
}
