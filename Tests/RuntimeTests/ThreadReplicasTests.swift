import Foundation
import XCTest
import TestSupport
import LockstepData
import LockstepKernels
import LockstepOptim
import LockstepNN
@testable import LockstepRuntime

/// One process, one model replica per thread (`thread_parallelism = "data"`): the
/// arithmetic of as many workers, over shared memory.
final class ThreadReplicasTests: XCTestCase {
    /// Trains one process on a pool of `threads`; returns parameters and BatchNorm buffers.
    static func trainSingleProcess(_ config: TrainingConfig, threads: Int,
                                   sharedWeightMinimum: Int = ThreadReplicas.defaultSharedWeightMinimum) throws -> (state: [Float], replicated: Bool) {
        let (trainSet, testSet) = try DatasetLoader.load(config)
        let trainer = try Trainer(config: config, train: trainSet, test: testSet, pool: ThreadPool(threads: threads),
                                  sharedWeightMinimum: sharedWeightMinimum)
        _ = try trainer.run()
        var state: [Float] = []
        for (_, slot, _) in trainer.model.stateTensors { state += Array(UnsafeBufferPointer(start: slot.pointer, count: slot.count)) }
        return (state, trainer.replicas != nil)
    }

    /// Two replicas × batch 2B take bit-for-bit the steps of two workers × batch B
    /// (synchronized BatchNorm, dropout streams by rank, gradient sum, optimizer), also
    /// when the threads compute Linear layers together for the whole batch (each its
    /// share of the output features, weights updated as soon as backward passes them).
    func testTwoReplicasMatchTwoWorkersBitwise() throws {
        let linearFirst = ["linear 16", "batchnorm", "relu", "dropout 0.2", "linear 12", "tanh", "batchnorm", "linear 4"]
        for (kind, layers) in [(OptimizerKind.momentum, nil), (.adam, nil), (.rmsprop, linearFirst), (.momentum, linearFirst)] {
            var workers = EquivalenceTests.smallConfig(kind, mode: .replicated, batch: 8)
            workers.layers.insert("dropout 0.2", at: 3)
            if let layers { workers.layers = layers }
            var single = workers
            single.batchSize = 16
            single.threadParallelism = .data
            let distributed = try EquivalenceTests.train(workers, world: 2)
            // With the Linear first, share every Linear (the last one included) between the threads.
            let (replicas, replicated) = try Self.trainSingleProcess(
                single, threads: 2, sharedWeightMinimum: layers != nil ? 1 : ThreadReplicas.defaultSharedWeightMinimum)
            XCTAssertTrue(replicated, "two threads with thread_parallelism = data must run replicas")
            XCTAssertEqual(bitPatterns(replicas), bitPatterns(distributed[0]), "\(kind): two replicas differ from two workers")
        }
    }

    /// Replica parts that start on a packed micro-panel (32 rows a replica): every shared
    /// Linear packs its input once between the threads and hands out chunks of output
    /// features; the epoch's last batch (16 rows a replica) takes the per-thread path.
    /// Both give the bits of two workers.
    func testSharedPackedForwardMatchesTwoWorkersBitwise() throws {
        var workers = EquivalenceTests.smallConfig(.momentum, mode: .replicated, batch: 32)
        workers.layers = ["linear 40", "batchnorm", "relu", "linear 30", "tanh", "batchnorm", "linear 4"]
        var single = workers
        single.batchSize = 64
        single.threadParallelism = .data
        let distributed = try EquivalenceTests.train(workers, world: 2)
        let (replicas, replicated) = try Self.trainSingleProcess(single, threads: 2, sharedWeightMinimum: 1)
        XCTAssertTrue(replicated)
        XCTAssertEqual(bitPatterns(replicas), bitPatterns(distributed[0]), "shared packed forward differs from two workers")
    }

    /// Three replicas against one model on the whole batch: the same steps up to rounding.
    func testThreeReplicasMatchOneModel() throws {
        var c = EquivalenceTests.smallConfig(.momentum, mode: .replicated, batch: 24)
        c.threadParallelism = .data
        // Every Linear computed jointly by the three threads.
        let (replicas, replicated) = try Self.trainSingleProcess(c, threads: 3, sharedWeightMinimum: 1)
        XCTAssertTrue(replicated)
        c.threadParallelism = .kernel
        let (kernel, kernelReplicated) = try Self.trainSingleProcess(c, threads: 3)
        XCTAssertFalse(kernelReplicated)
        let scale = Double(kernel.map { abs($0) }.max() ?? 1)
        let worst = zip(replicas, kernel).map { Double(abs($0 - $1)) / scale }.max() ?? 0
        XCTAssertLessThan(worst, 1e-5, "three replicas drift from one model: \(worst)")
        XCTAssertNotEqual(bitPatterns(replicas), bitPatterns(kernel), "replicas should round differently from one batch (else this test compares nothing)")
    }

    /// Same seed, same bits: replicas on threads are deterministic.
    func testReplicasAreDeterministic() throws {
        var c = EquivalenceTests.smallConfig(.adam, mode: .replicated, batch: 16)
        c.threadParallelism = .data
        let a = try Self.trainSingleProcess(c, threads: 2).state
        let b = try Self.trainSingleProcess(c, threads: 2).state
        XCTAssertEqual(bitPatterns(a), bitPatterns(b))
    }

    /// Batches too small to split (under 8 rows a replica) run on model 0 alone; the
    /// replicas pick up its BatchNorm statistics afterwards.
    func testSmallBatchesFallBackToOneModel() throws {
        var c = EquivalenceTests.smallConfig(.momentum, mode: .replicated, batch: 12)
        c.syntheticTrain = 12 * 5 + 4  // the last batch of each epoch has 4 rows
        c.epochs = 2
        c.maxSteps = nil
        c.threadParallelism = .data
        let (replicas, replicated) = try Self.trainSingleProcess(c, threads: 2)
        XCTAssertTrue(replicated)
        c.threadParallelism = .kernel
        let (kernel, _) = try Self.trainSingleProcess(c, threads: 2)
        let scale = Double(kernel.map { abs($0) }.max() ?? 1)
        let worst = zip(replicas, kernel).map { Double(abs($0 - $1)) / scale }.max() ?? 0
        XCTAssertLessThan(worst, 1e-5)
    }
}
