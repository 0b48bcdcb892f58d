import Foundation
import XCTest
import LockstepData
import LockstepOptim

/// The equivalence of `EquivalenceTests`, across real processes over ZeroMQ:
/// `lockstep train --workers 2` with batch B against `lockstep train` with batch 2B,
/// 20 steps, every optimizer, both step modes; compared through the saved checkpoints.
final class MultiProcessEquivalenceTests: XCTestCase {
    private func run(_ config: String, _ extra: [String]) throws -> SafeTensorsFile {
        let save = config + ".\(UUID().uuidString).safetensors"
        let p = try ChildProcess("lockstep", ["train", "--config", config, "--max-steps", "20", "--save", save] + extra)
        XCTAssertEqual(p.wait(seconds: 60), 0, p.text)
        return try SafeTensors.read(path: save)
    }

    func testTwoProcessesMatchOneProcessWithTheGlobalBatch() throws {
        let config = try TestConfigs.write(
            layers: "\"batchnorm\", \"linear 16\", \"relu\", \"batchnorm\", \"linear 12\", \"tanh\", \"batchnorm\", \"linear 4\"",
            trainSamples: 640, epochs: 1)
        for kind in OptimizerKind.allCases {
            let lr = [OptimizerKind.sgd, .momentum, .nesterov].contains(kind) ? ["--lr", "0.05"] : []
            let single = try run(config, ["--optimizer", kind.rawValue, "--batch-size", "32"] + lr)
            for mode in ["replicated", "sharded"] {
                let pair = try run(config, ["--optimizer", kind.rawValue, "--batch-size", "16", "--workers", "2", "--step-mode", mode] + lr)
                var worst = 0.0, scale = 0.0
                for (name, t) in single.tensors where !name.hasPrefix("optimizer.") {
                    let other = try XCTUnwrap(pair.tensors[name], "\(name) missing")
                    for (a, b) in zip(t.values, other.values) {
                        worst = max(worst, Double(abs(a - b)))
                        scale = max(scale, Double(abs(a)))
                    }
                }
                XCTAssertLessThan(worst / scale, 1e-5, "\(kind) \(mode): ‖Δ‖∞/‖θ‖∞ = \(worst / scale)")
                XCTAssertEqual(pair.metadata["lockstep.global_step"], "20")
            }
        }
    }
}
