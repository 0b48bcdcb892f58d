import LockstepBase
import Foundation
import LockstepCollectives
import LockstepData
import LockstepKernels
import LockstepNN
import LockstepOptim

/// Runs the training loop of one process: single-process, or one rank of a
/// data-parallel job when given a communicator.
///
/// Each step reads: take this rank's slice of the global batch → forward
/// (BatchNorm synchronizes its statistics) → backward, telling the gradient
/// synchronization as each layer finishes → synchronize and step the optimizer
/// (`GradientSync`) → report. Every rank ends each step with bitwise-identical
/// parameters.
public final class Trainer {
    public let config: TrainingConfig
    public let model: Sequential
    public let train: Dataset
    public let test: Dataset
    public let communicator: Communicator?
    public let rank: Int
    public let worldSize: Int
    /// The micro-batches: `sharding.stepsPerEpoch` of them per epoch.
    public let sharding: DataSharding
    /// Micro-batches per optimizer step (`accumulate_steps`).
    public let accumulateSteps: Int
    /// Optimizer steps per epoch: the epoch's micro-batches in groups of `accumulateSteps`,
    /// the last group possibly shorter.
    public let stepsPerEpoch: Int
    /// Range of the parameter arena this rank's optimizer updates.
    public let optimizerRange: Range<Int>
    public let optimizer: Optimizer
    /// The kernel core's threads.
    public let pool: ThreadPool
    public internal(set) var globalStep = 0
    public weak var observer: TrainingObserver?
    /// Runs after every step on every rank (checkpoints); an error stops the run.
    public var afterStep: ((Trainer) throws -> Void)?
    /// Records a per-step timeline (`--trace`), or nil.
    public let tracer: Tracer?

    /// Runs collectives on the communication thread (world size > 1).
    let queue: CollectiveQueue?
    /// How gradients become global and the parameters get updated.
    let sync: GradientSync
    /// `sync` itself when accumulating over several micro-batches, else nil.
    let accumulation: GradientAccumulation?
    /// Data parallelism over this process's threads (single process, `thread_parallelism = "data"`).
    let replicas: ThreadReplicas?

    private let reducer: BatchStatisticsReducer?
    /// This rank's rows of the current batch.
    let batchImages: FloatBuffer
    let batchLabels: UnsafeMutablePointer<Int32>
    let lrPolicy: LearningRatePolicy

    /// `trace`: record steps for `--trace`. `sharedWeightMinimum`: see `ThreadReplicas` (tests share small layers).
    public init(config: TrainingConfig, train: Dataset, test: Dataset, communicator: Communicator? = nil,
                pool: ThreadPool, trace: Bool = false,
                sharedWeightMinimum: Int = ThreadReplicas.defaultSharedWeightMinimum) throws {
        try config.validate()
        self.config = config
        self.train = train
        self.test = test
        self.communicator = communicator
        self.pool = pool
        rank = communicator?.rank ?? 0
        worldSize = communicator?.worldSize ?? 1
        guard train.count >= worldSize else {
            throw LockstepError("training set has \(train.count) samples, fewer than the \(worldSize) workers")
        }
        do {
            model = try Sequential(input: FeatureShape(dimensions: train.sampleShape), specs: try config.layerSpecs(),
                                   synchronizedBatchNorm: config.syncBatchNorm)
        } catch let e as ModelPlan.Error {
            throw LockstepError("\(e.description) (the data's samples are \(FeatureShape(dimensions: train.sampleShape)))")
        }
        guard model.outputFeatures == train.classes else {
            throw LockstepError("the model ends with \(model.outputFeatures) outputs but the data has \(train.classes) classes; make the last layer \"linear \(train.classes)\"")
        }
        model.initializeParameters(seed: config.seed)
        accumulateSteps = config.accumulateSteps
        if worldSize == 1, config.threadParallelism == .data, pool.threadCount > 1, config.emulateComputeMs == nil,
           config.accumulateSteps == 1 {
            replicas = ThreadReplicas(model: model, specs: try config.layerSpecs(), synchronizedBatchNorm: config.syncBatchNorm,
                                      pool: pool, sharedWeightMinimum: sharedWeightMinimum)
        } else {
            replicas = nil
        }
        sharding = DataSharding(sampleCount: train.count, batchSize: config.batchSize, workers: worldSize)
        stepsPerEpoch = (sharding.stepsPerEpoch + accumulateSteps - 1) / accumulateSteps

        if let communicator, config.stepMode == .sharded {
            optimizerRange = communicator.shardRange(count: model.parameterCount, rank: rank)
        } else {
            optimizerRange = 0..<model.parameterCount
        }
        optimizer = try Optimizer(config: config.optimizer, count: optimizerRange.count)

        var policy = config.lrPolicy
        if case .cosine(let total, let minLR) = policy.schedule, total == 0 {
            policy.schedule = .cosine(totalSteps: max(1, Trainer.plannedSteps(config: config, stepsPerEpoch: stepsPerEpoch)), minLR: minLR)
        }
        lrPolicy = policy
        let planned = Trainer.plannedSteps(config: config, stepsPerEpoch: stepsPerEpoch)
        let tracer = trace ? Tracer(rank: rank, firstStep: Tracer.firstStep(plannedSteps: planned)) : nil
        self.tracer = tracer

        let localCapacity = (sharding.globalBatch + worldSize - 1) / worldSize
        batchImages = FloatBuffer(count: localCapacity * train.features)
        batchLabels = .allocate(capacity: max(1, localCapacity))
        batchLabels.initialize(repeating: 0, count: max(1, localCapacity))
        var onCompleted: (@Sendable (String, Date, Date) -> Void)?
        if let tracer {
            onCompleted = { name, start, end in tracer.record(name, category: "communication", thread: 1, start: start, end: end) }
        }
        var queue: CollectiveQueue?
        if let communicator, communicator.worldSize > 1 {
            queue = CollectiveQueue(communicator: communicator, onCompleted: onCompleted)
        }
        self.queue = queue
        reducer = queue.map { CommunicatorReducer($0) }

        let perStep: GradientSync
        if let replicas {
            perStep = ReplicaSync(replicas: replicas, optimizer: optimizer)
        } else if let queue {
            let base: GradientSync = config.stepMode == .sharded
                ? ShardedSync(model: model, optimizer: optimizer, pool: pool, queue: queue, shard: optimizerRange, wire: config.wire)
                : RingAllReduceSync(model: model, optimizer: optimizer, pool: pool, queue: queue, bucketBytes: config.bucketBytes, wire: config.wire)
            perStep = config.syncBatchNorm ? base : LocalBatchNormSync(wrapping: base, model: model, queue: queue)
        } else {
            perStep = LocalUpdate(model: model, optimizer: optimizer, pool: pool)
        }
        accumulation = accumulateSteps > 1 ? GradientAccumulation(wrapping: perStep, model: model) : nil
        sync = accumulation ?? perStep
    }

    /// Ends the communication thread once its work is done (also on deinit).
    public func stopCommunication() {
        queue?.stop()
    }

    deinit {
        queue?.stop()
        batchLabels.deallocate()
    }

    /// Runs `op` on the communication thread and waits for it (no-op for a single process).
    func collective(_ name: String, _ op: @escaping CollectiveQueue.Operation) throws {
        try queue?.run(name, op)
    }

    /// Total steps the run will take.
    public var plannedSteps: Int { Trainer.plannedSteps(config: config, stepsPerEpoch: stepsPerEpoch) }

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
        var epoch = globalStep / stepsPerEpoch
        replicas?.buffersStale = true  // a checkpoint may have been loaded into the model
        while globalStep < total {
            let permutation = config.shuffle ? EpochPermutation.make(count: train.count, seed: config.seed, epoch: epoch) : (0..<Int32(train.count)).map { $0 }
            var lossSum = 0.0, correct = 0.0, seen = 0.0
            let start = Date()
            var stepInEpoch = globalStep - epoch * stepsPerEpoch
            var stepsThisEpoch = 0
            while stepInEpoch < stepsPerEpoch, globalStep < total {
                let r = try step(permutation: permutation, epoch: epoch, stepInEpoch: stepInEpoch)
                try afterStep?(self)
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

    /// One synchronized optimizer step: batch → forward → backward → synchronize and update → report.
    /// With `accumulate_steps` K, forward and backward run on each of the step's K
    /// micro-batches, and the last one's backward synchronizes the summed gradients.
    func step(permutation: [Int32], epoch: Int, stepInEpoch: Int) throws -> StepResult {
        let first = stepInEpoch * accumulateSteps
        let micro = first..<min(first + accumulateSteps, sharding.stepsPerEpoch)
        let global = micro.reduce(0) { $0 + sharding.globalRange(step: $1).count }
        tracer?.currentStep = globalStep
        let lr = lrPolicy.learningRate(base: config.optimizer.learningRate, step: globalStep)
        var (lossSum, correct, n) = (0.0, 0, 0)
        var onReplicas = false  // thread replicas run only without accumulation: one micro-batch
        let began = Date(), busyBefore = queue?.busySeconds ?? 0
        for m in micro {
            let local = sharding.localRange(step: m, rank: rank)
            onReplicas = replicas.map { $0.splits(rows: local.count) } ?? false
            if let replicas, !onReplicas { replicas.buffersStale = true }  // model 0 trains this batch alone
            (sync as? ReplicaSync)?.replicaBatch = onReplicas ? local.count : nil
            if let accumulation {
                accumulation.beginMicroBatch(m - first, of: micro.count, learningRate: lr)
            } else {
                sync.beginStep(learningRate: lr)
            }
            let (l, c) = onReplicas
                ? try replicaForwardBackward(permutation: permutation, rows: local)
                : try forwardBackward(permutation: permutation, rows: local, globalCount: global,
                                      microStep: globalStep * accumulateSteps + (m - first))
            (lossSum, correct, n) = (lossSum + l, correct + c, n + local.count)
        }
        let computed = Date()
        try span("optimizer") { try sync.finishStep() }
        let ended = Date()

        // Local BatchNorm statistics differ between replicas; model 0's are the ones kept.
        if onReplicas, !config.syncBatchNorm { replicas?.buffersStale = true }
        globalStep += 1
        observer?.stepCompleted(StepReport(
            epoch: epoch + 1, stepInEpoch: stepInEpoch + 1, stepsPerEpoch: stepsPerEpoch, globalStep: globalStep,
            loss: n > 0 ? lossSum / Double(n) : 0, samples: global, learningRate: lr, seconds: ended.timeIntervalSince(began),
            computeSeconds: computed.timeIntervalSince(began), waitSeconds: ended.timeIntervalSince(computed),
            communicationSeconds: (queue?.busySeconds ?? 0) - busyBefore))
        return StepResult(lossSum: lossSum, correct: correct, count: n, globalCount: global)
    }

    /// This rank's rows of the batch into `batchImages`/`batchLabels`, forward, loss
    /// (a mean over `globalCount` samples), backward with each finished layer handed to
    /// `sync`. `microStep` numbers micro-batches (dropout's masks); it is the step without accumulation.
    private func forwardBackward(permutation: [Int32], rows local: Range<Int>, globalCount: Int, microStep: Int) throws -> (Double, Int) {
        let n = local.count
        train.copySamples(permutation, positions: local, into: batchImages.pointer, labels: batchLabels)
        let context = StepContext(mode: .training, step: microStep, rank: rank, seed: config.seed, reducer: reducer, pool: pool)
        let emulation = beginEmulatedCompute()  // --emulate-compute-ms: see Trainer+EmulatedCompute
        var (lossSum, correct) = (0.0, 0)
        if let emulation {
            span("forward (emulated)") { emulation.forward() }
        } else {
            let logits = try span("forward") { try model.forward(batchImages.pointer, batch: n, context: context) }
            (lossSum, correct) = SoftmaxCrossEntropy.evaluate(logits: logits, labels: batchLabels, batch: n, classes: train.classes,
                                                              globalCount: globalCount, dLogits: model.outputGradient)
        }
        try checkFinite(lossSum)
        let sync = self.sync
        try span("backward") { try backward(batch: n, context: context, emulation: emulation) { sync.layerFinished($0) } }
        return (lossSum, correct)
    }

    /// The batch split between the thread replicas: each gathers, forwards and back-propagates its part.
    private func replicaForwardBackward(permutation: [Int32], rows local: Range<Int>) throws -> (Double, Int) {
        let replicas = replicas!, sync = self.sync as! ReplicaSync
        let train = self.train, images = batchImages.pointer, labels = batchLabels, first = local.lowerBound
        let result = try span("forward + backward (\(replicas.count) replicas)") {
            try replicas.forwardBackward(
                batch: local.count, images: images, labels: labels, classes: train.classes, step: globalStep, seed: config.seed,
                gather: { rows in
                    train.copySamples(permutation, positions: (first + rows.lowerBound)..<(first + rows.upperBound),
                                      into: images, labels: labels, firstRow: rows.lowerBound)
                },
                weightRowsFinished: { sync.weightRowsFinished($0) })
        }
        try checkFinite(result.lossSum)
        return result
    }

    private func checkFinite(_ lossSum: Double) throws {
        guard lossSum.isFinite else {
            throw LockstepError("training diverged: the loss is \(lossSum) at step \(globalStep + 1) (rank \(rank)); lower the learning rate (--lr, now \(config.optimizer.learningRate))")
        }
    }

    /// Test accuracy with BatchNorm's running statistics; each rank evaluates a slice.
    public func evaluate() throws -> Double {
        if let replicas {
            let correct = try test.images.withUnsafeBufferPointer { images in
                try test.labels.withUnsafeBufferPointer { labels in
                    try replicas.evaluate(images: images.baseAddress!, labels: labels.baseAddress!, total: test.count,
                                          classes: test.classes, evalBatch: config.evalBatchSize, step: globalStep, seed: config.seed)
                }
            }
            return Double(correct) / Double(max(test.count, 1))
        }
        let lo = test.count * rank / worldSize, hi = test.count * (rank + 1) / worldSize
        var correct = 0
        let context = StepContext(mode: .evaluation, step: globalStep, rank: rank, seed: config.seed, pool: pool)
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

    private func allReduceSmall(_ values: inout [Float]) throws {
        guard worldSize > 1 else { return }
        let n = values.count
        let box = FloatBuffer(values)
        try queue?.run("all-reduce totals") { try $0.allReduceSum(box.pointer, count: n) }
        values = box.array
    }

    func span<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard let tracer else { return try body() }
        return try tracer.span(name, body)
    }

    /// FNV-1a over the parameter and buffer bytes: equal on every rank after every step.
    public func parameterHash() -> String {
        var h = FNV1a()
        for (_, slot, _) in model.stateTensors {
            for i in 0..<slot.count { h.add(slot.pointer[i].bitPattern) }
        }
        return h.hex
    }

    /// Where the next step starts: the epoch (0-based) and the samples of its
    /// permutation already trained.
    public var epochPosition: (epoch: Int, samples: Int) {
        Self.position(step: globalStep, sharding: sharding, accumulateSteps: accumulateSteps)
    }

    /// The epoch and samples trained at step `step` of this run with `worldSize` workers,
    /// or nil for a step beyond such a run's end.
    public func position(step: Int, worldSize: Int) -> (epoch: Int, samples: Int)? {
        let other = DataSharding(sampleCount: sharding.sampleCount, batchSize: config.batchSize, workers: worldSize)
        let perEpoch = (other.stepsPerEpoch + accumulateSteps - 1) / accumulateSteps
        guard step >= 0, step <= config.epochs * perEpoch else { return nil }
        return Self.position(step: step, sharding: other, accumulateSteps: accumulateSteps)
    }

    static func position(step: Int, sharding: DataSharding, accumulateSteps: Int) -> (epoch: Int, samples: Int) {
        let perEpoch = (sharding.stepsPerEpoch + accumulateSteps - 1) / accumulateSteps
        let epoch = step / perEpoch
        let micro = (step - epoch * perEpoch) * accumulateSteps
        return (epoch, min(micro * sharding.globalBatch, sharding.sampleCount))
    }

    /// The step at which this run (its world size) reaches `samples` of epoch `epoch`:
    /// the first whole batch at or after that position.
    public func step(epoch: Int, samples: Int) -> Int {
        let perStep = accumulateSteps * sharding.globalBatch
        return epoch * stepsPerEpoch + min((samples + perStep - 1) / perStep, stepsPerEpoch)
    }

    /// Restores the step counter after loading a checkpoint.
    public func restore(globalStep: Int) {
        self.globalStep = globalStep
        replicas?.buffersStale = true
    }
}
