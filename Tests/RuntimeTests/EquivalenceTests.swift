import Foundation
import XCTest
import LockstepKernels
import TestSupport
import LockstepCollectives
import LockstepData
import LockstepOptim
@testable import LockstepRuntime

/// Data-parallel equivalence: N workers × batch B with synchronized BatchNorm take the
/// same steps as 1 worker × batch N·B (docs/MATH.md, "Synchronized BatchNorm"), for every
/// optimizer, in both step modes. Ranks run as threads over the in-process transport;
/// the multi-process tests in `MultiProcessTests` run the same code over ZeroMQ.
final class EquivalenceTests: XCTestCase {
    static func smallConfig(_ kind: OptimizerKind, mode: TrainingConfig.StepMode, batch: Int) -> TrainingConfig {
        var c = TrainingConfig()
        // BatchNorm in front of each Linear: a Linear bias right before a BatchNorm has an exactly
        // zero gradient, and adaptive optimizers turn its rounding noise into ±lr steps.
        c.layers = ["batchnorm", "linear 16", "relu", "batchnorm", "linear 12", "tanh", "batchnorm", "linear 4"]
        c.dataset = "synthetic"
        c.syntheticTrain = 480
        c.syntheticTest = 64
        c.syntheticFeatures = 10
        c.syntheticClasses = 4
        c.batchSize = batch
        c.epochs = 1
        c.maxSteps = 20
        c.threads = 1
        c.optimizer = OptimizerConfig.defaults(for: kind)
        if kind == .sgd || kind == .momentum || kind == .nesterov { c.optimizer.learningRate = 0.05 }
        c.stepMode = mode
        c.chunkBytes = 64   // several chunks per shard even for this small model
        c.bucketBytes = 256 // several gradient buckets overlapping backward
        return c
    }

    /// Trains `world` ranks on threads; returns each rank's parameters and BatchNorm running statistics.
    static func train(_ config: TrainingConfig, world: Int) throws -> [[Float]] {
        let (trainSet, testSet) = try DatasetLoader.load(config)
        let transports = InProcessTransport.makeGroup(worldSize: world)
        // One thread per rank, with a deadline (concurrentPerform would run only as many ranks as cores).
        let states = runRanks(world, timeout: 120) { r -> [Float] in
            let comm = world > 1 ? Communicator(transport: transports[r], chunkBytes: config.chunkBytes) : nil
            let trainer = try Trainer(config: config, train: trainSet, test: testSet, communicator: comm, pool: .serial)
            _ = try trainer.run()
            var state: [Float] = []
            for (_, slot, _) in trainer.model.stateTensors { state += Array(UnsafeBufferPointer(start: slot.pointer, count: slot.count)) }
            return state
        }
        // runRanks has already reported the failing rank.
        guard let states else { throw LockstepError("ranks did not all finish training") }
        return states
    }

    func checkEquivalence(_ kind: OptimizerKind, mode: TrainingConfig.StepMode, world: Int = 3,
                          file: StaticString = #filePath, line: UInt = #line) throws {
        let b = 8
        let distributed = try Self.train(Self.smallConfig(kind, mode: mode, batch: b), world: world)
        let single = try Self.train(Self.smallConfig(kind, mode: mode, batch: b * world), world: 1)[0]
        for r in 1..<world {
            XCTAssertEqual(distributed[r], distributed[0], "rank \(r) parameters are not bitwise identical to rank 0's", file: file, line: line)
        }
        // Relative to the largest magnitude in the model: ‖a − b‖∞ / ‖b‖∞.
        let scale = Double(single.map { abs($0) }.max() ?? 1)
        var worst = 0.0, at = 0
        for i in single.indices {
            let d = Double(abs(distributed[0][i] - single[i])) / scale
            if d > worst { worst = d; at = i }
        }
        XCTAssertLessThan(worst, 1e-5, "\(kind) \(mode): max relative difference \(worst) at \(at): \(distributed[0][at]) vs \(single[at])", file: file, line: line)
    }

    func testReplicatedEveryOptimizer() throws {
        for kind in OptimizerKind.allCases { try checkEquivalence(kind, mode: .replicated) }
    }

    func testShardedEveryOptimizer() throws {
        for kind in OptimizerKind.allCases { try checkEquivalence(kind, mode: .sharded) }
    }

    func testTwoAndFourWorkers() throws {
        try checkEquivalence(.adam, mode: .sharded, world: 2)
        try checkEquivalence(.momentum, mode: .replicated, world: 4)
    }

    func testLocalBatchNormDiffersFromSynchronized() throws {
        var c = Self.smallConfig(.momentum, mode: .replicated, batch: 8)
        let synced = try Self.train(c, world: 2)
        c.syncBatchNorm = false
        let local = try Self.train(c, world: 2)
        XCTAssertEqual(local[0], local[1], "local BatchNorm still keeps replicated parameters identical")
        XCTAssertNotEqual(local[0], synced[0], "local statistics must change the trajectory")
    }

    func testShardedModeHoldsOneNthOfOptimizerState() throws {
        let c = Self.smallConfig(.adam, mode: .sharded, batch: 8)
        let (trainSet, testSet) = try DatasetLoader.load(c)
        let transports = InProcessTransport.makeGroup(worldSize: 2)
        let t0 = try Trainer(config: c, train: trainSet, test: testSet, communicator: Communicator(transport: transports[0]), pool: .serial)
        let t1 = try Trainer(config: c, train: trainSet, test: testSet, communicator: Communicator(transport: transports[1]), pool: .serial)
        let p = t0.model.parameterCount
        XCTAssertEqual(t0.optimizerRange.count + t1.optimizerRange.count, p)
        XCTAssertEqual(t0.optimizer.stateFloatCount, 2 * t0.optimizerRange.count)  // Adam: exp_avg, exp_avg_sq
        XCTAssertLessThanOrEqual(t0.optimizerRange.count, (p + 1) / 2)
    }
}
