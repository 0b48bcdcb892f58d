import Foundation
import XCTest
import LockstepOptim
@testable import LockstepRuntime

/// Gradient accumulation (`accumulate_steps` K): K micro-batches' gradients summed
/// before one all-reduce and one optimizer step. Without BatchNorm that is one step on
/// the K-times-larger batch; with synchronized BatchNorm (statistics per micro-batch, as
/// in PyTorch) N workers accumulating K match one worker accumulating the same K global
/// micro-batches.
final class GradientAccumulationTests: XCTestCase {
    static func config(_ kind: OptimizerKind, batch: Int, accumulate: Int, batchNorm: Bool,
                       mode: TrainingConfig.StepMode = .replicated) -> TrainingConfig {
        var c = EquivalenceTests.smallConfig(kind, mode: mode, batch: batch)
        if !batchNorm { c.layers = ["linear 16", "relu", "linear 12", "tanh", "linear 4"] }
        c.accumulateSteps = accumulate
        c.epochs = 2
        c.maxSteps = nil
        return c
    }

    /// ‖a − b‖∞ / ‖b‖∞ below 1e-5.
    func assertClose(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        let scale = Double(b.map { abs($0) }.max() ?? 1)
        var worst = 0.0, at = 0
        for i in b.indices where Double(abs(a[i] - b[i])) / scale > worst { worst = Double(abs(a[i] - b[i])) / scale; at = i }
        XCTAssertLessThan(worst, 1e-5, "\(what): max relative difference \(worst) at \(at): \(a[at]) vs \(b[at])", file: file, line: line)
    }

    func testWithoutBatchNormKMicroBatchesAreOneStepOnTheLargerBatch() throws {
        // 480 samples, micro-batches of 8, K = 7: 9 steps an epoch, the last of 4 micro-batches
        // (32 samples), as the batch of 56's last step.
        for kind in OptimizerKind.allCases {
            let accumulated = try EquivalenceTests.train(Self.config(kind, batch: 8, accumulate: 7, batchNorm: false), world: 1)[0]
            let large = try EquivalenceTests.train(Self.config(kind, batch: 56, accumulate: 1, batchNorm: false), world: 1)[0]
            assertClose(accumulated, large, "\(kind): K = 7 × 8 against one step of 56")
        }
    }

    func testWorkersAccumulatingMatchOneWorkerAccumulatingTheGlobalMicroBatches() throws {
        for mode in TrainingConfig.StepMode.allCases {
            for kind in [OptimizerKind.momentum, .adam] {
                let distributed = try EquivalenceTests.train(Self.config(kind, batch: 8, accumulate: 3, batchNorm: true, mode: mode), world: 3)
                let single = try EquivalenceTests.train(Self.config(kind, batch: 24, accumulate: 3, batchNorm: true, mode: mode), world: 1)[0]
                for r in 1..<3 { XCTAssertEqual(distributed[r], distributed[0], "\(kind) \(mode): rank \(r) differs from rank 0") }
                assertClose(distributed[0], single, "\(kind) \(mode): 3 workers × 8, K = 3 against 1 worker × 24, K = 3")
            }
        }
    }

    func testAccumulationIsNotTheSameAsSmallSteps() throws {
        let accumulated = try EquivalenceTests.train(Self.config(.momentum, batch: 8, accumulate: 4, batchNorm: false), world: 1)[0]
        let small = try EquivalenceTests.train(Self.config(.momentum, batch: 8, accumulate: 1, batchNorm: false), world: 1)[0]
        XCTAssertNotEqual(accumulated, small, "K = 4 took the same steps as K = 1")
    }

    func testConfigKeyAndValidation() throws {
        var c = TrainingConfig()
        c.accumulateSteps = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("accumulate_steps = 0")) }
        let path = try TestConfigs.write(extra: "")
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "threads = 1", with: "threads = 1\naccumulate_steps = 4")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try ConfigLoader.load(path: path).accumulateSteps, 4)
    }
}
