import Foundation
import LockstepCollectives
import LockstepData
import LockstepKernels
import LockstepNN
import LockstepOptim

/// Runs the training loop of one process: single-process, or one rank of a
/// data-parallel job when given a communicator.
///
/// Per step: take this rank's slice of the global batch, forward (BatchNorm
/// synchronizes its statistics), backward, then either all-reduce the gradients
/// and update everything (replicated) or reduce-scatter, update this rank's
/// shard and all-gather the parameters (sharded, ZeRO-1). Every rank ends each
/// step with bitwise-identical parameters.
public final class Trainer {
    public let config: TrainingConfig
    public let model: Sequential
    public let train: Dataset
    public let test: Dataset
    public let communicator: Communicator?
    public let rank: Int
    public let worldSize: Int
    public let sharding: DataSharding
    /// Range of the parameter arena this rank's optimizer updates.
    public let optimizerRange: Range<Int>
    public let optimizer: Optimizer
    public internal(set) var globalStep = 0
    public weak var observer: TrainingObserver?
    /// Set to record a per-step timeline (`--trace`).
    public var tracer: Tracer?

    /// Runs collectives on the communication thread (world size > 1).
    let queue: CollectiveQueue?
    /// Gradient buckets in the order backward completes them (last layer first).
    let buckets: [GradientBucket]

    /// Data parallelism over this process's threads (single process, `thread_parallelism = "data"`).
    let replicas: ThreadReplicas?

    private let reducer: BatchStatisticsReducer?
    let batchImages: FloatBuffer
    var batchLabels: [Int32]
    let lrPolicy: LearningRatePolicy

    public init(config: TrainingConfig, train: Dataset, test: Dataset, communicator: Communicator? = nil) throws {
        try config.validate()
        self.config = config
        self.train = train
        self.test = test
        self.communicator = communicator
        rank = communicator?.rank ?? 0
        worldSize = communicator?.worldSize ?? 1
        guard train.count >= worldSize else {
            throw LockstepError("training set has \(train.count) samples, fewer than the \(worldSize) workers")
        }
        model = Sequential(inputFeatures: train.features, specs: try config.layerSpecs(), synchronizedBatchNorm: config.syncBatchNorm)
        guard model.outputFeatures == train.classes else {
            throw LockstepError("the model ends with \(model.outputFeatures) outputs but the data has \(train.classes) classes; make the last layer \"linear \(train.classes)\"")
        }
        model.initializeParameters(seed: config.seed)
        if worldSize == 1, config.threadParallelism == .data, ThreadPool.shared.threadCount > 1, config.emulateComputeMs == nil {
            replicas = ThreadReplicas(model: model, specs: try config.layerSpecs(), synchronizedBatchNorm: config.syncBatchNorm,
                                      pool: .shared)
        } else {
            replicas = nil
        }
        sharding = DataSharding(sampleCount: train.count, batchSize: config.batchSize, workers: worldSize)

        if let communicator, config.stepMode == .sharded {
            optimizerRange = communicator.shardRange(count: model.parameterCount, rank: rank)
        } else {
            optimizerRange = 0..<model.parameterCount
        }
        optimizer = try Optimizer(config: config.optimizer, count: optimizerRange.count)

        var policy = config.lrPolicy
        if case .cosine(let total, let minLR) = policy.schedule, total == 0 {
            policy.schedule = .cosine(totalSteps: max(1, Trainer.plannedSteps(config: config, stepsPerEpoch: sharding.stepsPerEpoch)), minLR: minLR)
        }
        lrPolicy = policy

        let localCapacity = (sharding.globalBatch + worldSize - 1) / worldSize
        batchImages = FloatBuffer(count: localCapacity * train.features)
        batchLabels = [Int32](repeating: 0, count: localCapacity)
        let q = communicator.flatMap { $0.worldSize > 1 ? CollectiveQueue(communicator: $0) : nil }
        queue = q
        reducer = q.map { CommunicatorReducer($0) }
        buckets = GradientBucket.plan(layerRanges: model.parameterRanges, bucketBytes: config.bucketBytes)
        q?.onCompleted = { [weak self] name, start, end in
            self?.tracer?.record(name, category: "communication", thread: 1, start: start, end: end)
        }
    }

    deinit { queue?.stop() }

    /// Runs `op` on the communication thread and waits for it (no-op for a single process).
    public func collective(_ name: String, _ op: @escaping (Communicator) throws -> Void) throws {
        guard let queue else { return }
        try queue.run(name, op)
    }

    /// Total steps the run will take.
    public var plannedSteps: Int { Trainer.plannedSteps(config: config, stepsPerEpoch: sharding.stepsPerEpoch) }

    static func plannedSteps(config: TrainingConfig, stepsPerEpoch: Int) -> Int {
        let full = config.epochs * stepsPerEpoch
        return min(full, config.maxSteps ?? full)
    }

    /// Runs from `globalStep` (0, or where a resumed checkpoint left off) to the end.
    public func run() throws -> FinalReport {
        let total = plannedSteps
        var trainingSeconds = 0.0
        var samplesTrained = 0
        var lastEpoch: EpochReport?
        var epoch = globalStep / sharding.stepsPerEpoch
        replicas?.buffersStale = true  // a checkpoint may have been loaded into the model
        while globalStep < total {
            let permutation = config.shuffle ? EpochPermutation.make(count: train.count, seed: config.seed, epoch: epoch) : (0..<Int32(train.count)).map { $0 }
            var lossSum = 0.0, correct = 0.0, seen = 0.0
            let start = Date()
            var stepInEpoch = globalStep - epoch * sharding.stepsPerEpoch
            var stepsThisEpoch = 0
            while stepInEpoch < sharding.stepsPerEpoch, globalStep < total {
                let r = try step(permutation: permutation, epoch: epoch, stepInEpoch: stepInEpoch)
                lossSum += r.lossSum
                correct += Double(r.correct)
                seen += Double(r.count)
                samplesTrained += r.globalCount
                stepInEpoch += 1
                stepsThisEpoch += 1
            }
            let seconds = Date().timeIntervalSince(start)
            trainingSeconds += seconds
            // Global epoch figures: one small all-reduce of (loss sum, correct, count).
            var totals: [Float] = [Float(lossSum), Float(correct), Float(seen)]
            try allReduceSmall(&totals)
            let testAccuracy = try evaluate()
            let epochSamples = Double(totals[2])
            let report = EpochReport(
                epoch: epoch + 1, loss: Double(totals[0]) / max(epochSamples, 1),
                trainAccuracy: Double(totals[1]) / max(epochSamples, 1), testAccuracy: testAccuracy,
                samplesPerSecond: epochSamples / max(seconds, 1e-9), seconds: seconds, steps: stepsThisEpoch)
            lastEpoch = report
            observer?.epochCompleted(report)
            epoch += 1
        }
        let testAccuracy = try lastEpoch?.testAccuracy ?? evaluate()
        return FinalReport(
            testAccuracy: testAccuracy, samplesPerSecond: Double(samplesTrained) / max(trainingSeconds, 1e-9),
            steps: globalStep, epochs: epoch, trainingSeconds: trainingSeconds, loss: lastEpoch?.loss ?? .nan,
            parameterHash: parameterHash())
    }

    struct StepResult { var lossSum: Double; var correct: Int; var count: Int; var globalCount: Int }

    /// One synchronized optimizer step.
    func step(permutation: [Int32], epoch: Int, stepInEpoch: Int) throws -> StepResult {
        let global = sharding.globalRange(step: stepInEpoch)
        let local = sharding.localRange(step: stepInEpoch, rank: rank)
        if let replicas {
            if replicas.splits(rows: local.count) {
                return try replicaStep(replicas, permutation: permutation, epoch: epoch, stepInEpoch: stepInEpoch)
            }
            replicas.buffersStale = true  // model 0 trains this batch alone
        }
        let n = local.count, features = train.features
        train.images.withUnsafeBufferPointer { images in
            for (row, position) in local.enumerated() {
                let sample = Int(permutation[position])
                (batchImages.pointer + row * features).update(from: images.baseAddress! + sample * features, count: features)
                batchLabels[row] = train.labels[sample]
            }
        }
        let context = StepContext(mode: .training, step: globalStep, rank: rank, seed: config.seed, reducer: reducer)
        tracer?.currentStep = globalStep
        let emulation = beginEmulatedCompute()  // --emulate-compute-ms: see Trainer+EmulatedCompute
        var (lossSum, correct) = (0.0, 0)
        if let emulation {
            span("forward (emulated)") { emulation.forward() }
        } else {
            let logits = try span("forward") { try model.forward(batchImages.pointer, batch: n, context: context) }
            (lossSum, correct) = batchLabels.withUnsafeBufferPointer { labels in
                SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels.baseAddress!, batch: n, classes: train.classes,
                                             globalCount: global.count, dLogits: model.outputGradient)
            }
        }

        guard lossSum.isFinite else {
            throw LockstepError("training diverged: the loss is \(lossSum) at step \(globalStep + 1) (rank \(rank)); lower the learning rate (--lr, now \(config.optimizer.learningRate))")
        }
        let lr = lrPolicy.learningRate(base: config.optimizer.learningRate, step: globalStep)
        let wire = config.wire
        let params = model.parameters.pointer, grads = model.gradients.pointer, count = model.parameterCount
        if let queue, config.stepMode == .replicated {
            // Each bucket's all-reduce starts as soon as backward has finished its layers.
            var next = 0
            try span("backward") {
                try backward(batch: n, context: context, emulation: emulation) { [self] layer in
                    while next < buckets.count, buckets[next].firstLayer == layer {
                        let range = buckets[next].range
                        queue.submit("all-reduce bucket \(next) (\(range.count * 4 / 1024) KiB)") { comm in
                            try comm.allReduceSum(grads + range.lowerBound, count: range.count, wire: wire)
                        }
                        next += 1
                    }
                }
            }
            try queue.waitAll()
            span("optimizer") { optimizer.apply(parameters: params, gradients: grads, learningRate: lr, pool: .shared) }
        } else if let queue {
            // Sharded (ZeRO-1): reduce-scatter, update this rank's shard, all-gather the parameters.
            try span("backward") { try backward(batch: n, context: context, emulation: emulation) }
            try queue.run("reduce-scatter") { try $0.reduceScatterSum(grads, count: count, wire: wire) }
            let lo = optimizerRange.lowerBound
            span("optimizer") { optimizer.apply(parameters: params + lo, gradients: grads + lo, learningRate: lr, pool: .shared) }
            try queue.run("all-gather parameters") { try $0.allGather(params, count: count) }
        } else {
            try span("backward") { try backward(batch: n, context: context, emulation: emulation) }
            span("optimizer") { optimizer.apply(parameters: params, gradients: grads, learningRate: lr, pool: .shared) }
        }
        if !config.syncBatchNorm { try broadcastBatchNormBuffers() }
        globalStep += 1
        observer?.stepCompleted(StepReport(
            epoch: epoch + 1, stepInEpoch: stepInEpoch + 1, stepsPerEpoch: sharding.stepsPerEpoch, globalStep: globalStep,
            loss: n > 0 ? lossSum / Double(n) : 0, samples: global.count, learningRate: lr))
        return StepResult(lossSum: lossSum, correct: correct, count: n, globalCount: global.count)
    }

    /// Test accuracy with BatchNorm's running statistics; each rank evaluates a slice.
    public func evaluate() throws -> Double {
        if let replicas { return try replicaEvaluate(replicas) }
        let lo = test.count * rank / worldSize, hi = test.count * (rank + 1) / worldSize
        var correct = 0
        let context = StepContext(mode: .evaluation, step: globalStep, rank: rank, seed: config.seed)
        var start = lo
        try test.images.withUnsafeBufferPointer { images in
            try test.labels.withUnsafeBufferPointer { labels in
                while start < hi {
                    let n = min(config.evalBatchSize, hi - start)
                    let logits = try model.forward(images.baseAddress! + start * test.features, batch: n, context: context)
                    correct += SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels.baseAddress! + start, batch: n,
                                                            classes: test.classes, globalCount: n, dLogits: nil).correct
                    start += n
                }
            }
        }
        var totals: [Float] = [Float(correct)]
        try allReduceSmall(&totals)
        return Double(totals[0]) / Double(max(test.count, 1))
    }

    /// With local BatchNorm the running statistics drift apart between ranks; like
    /// PyTorch DDP's `broadcast_buffers`, rank 0's copy is sent to everyone each step.
    private func broadcastBatchNormBuffers() throws {
        guard worldSize > 1 else { return }
        let slots = model.batchNormLayers.flatMap { $0.layer.bufferSlots }
        guard !slots.isEmpty else { return }
        var packed = [Float]()
        for s in slots { packed += UnsafeBufferPointer(start: s.pointer, count: s.count) }
        let box = FloatBuffer(packed)
        try collective("broadcast BatchNorm buffers") {
            try $0.broadcast(UnsafeMutableRawBufferPointer(start: box.pointer, count: box.count * 4), root: 0)
        }
        var offset = 0
        for s in slots {
            s.pointer.update(from: box.pointer + offset, count: s.count)
            offset += s.count
        }
    }

    private func allReduceSmall(_ values: inout [Float]) throws {
        guard worldSize > 1 else { return }
        let n = values.count
        let box = FloatBuffer(values)
        try collective("all-reduce totals") { try $0.allReduceSum(box.pointer, count: n) }
        values = box.array
    }

    func span<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard let tracer else { return try body() }
        return try tracer.span(name, body)
    }

    /// FNV-1a over the parameter and buffer bytes: equal on every rank after every step.
    public func parameterHash() -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (_, slot, _) in model.stateTensors {
            for i in 0..<slot.count {
                var bits = slot.pointer[i].bitPattern
                for _ in 0..<4 { h = (h ^ UInt64(bits & 0xFF)) &* 0x0000_0100_0000_01B3; bits >>= 8 }
            }
        }
        return String(format: "%016llx", h)
    }

    /// Restores the step counter after loading a checkpoint.
    public func restore(globalStep: Int) {
        self.globalStep = globalStep
        replicas?.buffersStale = true
    }
}
