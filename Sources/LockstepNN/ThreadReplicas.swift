import LockstepKernels
import Synchronization

/// Data parallelism over the threads of one process (`thread_parallelism = "data"`).
///
/// Each pool thread runs forward and backward of one replica of the model on its
/// contiguous part of the batch, with single-threaded kernels; the replicas share
/// the parameter arena (model 0's) and have gradient arenas of their own. BatchNorm
/// statistics are synchronized between them over shared memory (`ReplicaReducer`),
/// then one optimizer step sums the gradients into model 0's in replica order as
/// it updates the parameters. This is the arithmetic of as many worker processes, with a few
/// barriers per step instead of one hand-off per kernel: for two threads the
/// parameters match two workers × one thread bit for bit.
public final class ThreadReplicas {
    public let pool: ThreadPool
    /// `models[0]` is the trainer's model.
    public let models: [Sequential]
    let rendezvous: ReplicaRendezvous
    let reducers: [ReplicaReducer]
    /// Per replica: (loss sum, correct) of its part of the batch.
    public let results: UnsafeMutablePointer<(lossSum: Double, correct: Int)>
    private let errors: UnsafeMutablePointer<Error?>
    /// Model 0's BatchNorm buffers may differ from the others' (a batch too small to
    /// split, a restored checkpoint, local statistics): copy them before the next use.
    public var buffersStale = true

    /// Linear layers whose forward and weight gradient the threads compute together
    /// for the whole batch, each taking chunks of the output features as it comes free
    /// (`sharesLayers`): no replica writes a weight gradient of its own for them, and
    /// each chunk of weight rows is updated as soon as its gradient is complete.
    /// Layers with at least `sharedWeightMinimum`
    /// weights (smaller ones are not worth the two barriers).
    public let sharedLayers: [(index: Int, linear: Linear)]
    /// `yᵀ` of a shared layer for the whole batch, `[out, rows]` (one layer at a time).
    let sharedTransposed: FloatBuffer

    /// Per shared layer: its input, packed once for all threads (`prepareSharedInputs`),
    /// and the next chunk of its output features to take, in the forward and for the weight gradient.
    private(set) var packedInputs: [Gemm.SharedPackedB?]
    let nextChunk: [ChunkCounter]
    let nextGradientChunk: [ChunkCounter]
    /// Per shared layer: every replica's input packed for the weight-gradient sum, each
    /// replica's by its own thread (nil where the fused `sgemmSum` does not apply).
    private(set) var packedGradientInputs: [Gemm.SumPackedB?]

    /// Linear layers with at least this many weights are shared (`sharedLayers`); the
    /// trainer passes the default, tests pass 1 to share every Linear of a small model.
    public static let defaultSharedWeightMinimum = 1 << 16

    /// Output features per chunk of a shared forward: 8 micro-tiles, so each packed
    /// micro-panel of xᵀ serves 8 tiles from L1; 512 features make 6 chunks, the last of 32.
    /// (Measured against 36, 60, 72 and 132 on the MLP: 96 was ~3% faster per step than
    /// a fixed half per thread; 36 no faster.)
    static let sharedChunkRows = 96

    /// Output features per chunk of a shared weight gradient (and its update): 4 micro-tiles.
    /// Threads take chunks as they come free, so a thread on a slower core (a shared host,
    /// where one vCPU often runs at half speed) computes fewer rows instead of holding the
    /// other at the next barrier.
    static let sharedGradientChunkRows = 48

    /// Fewer rows than this per replica run as one batch on the kernel threads instead.
    static let minimumRowsPerReplica = 8

    public var count: Int { models.count }

    public init(model: Sequential, specs: [LayerSpec], synchronizedBatchNorm: Bool, pool: ThreadPool,
                sharedWeightMinimum: Int = ThreadReplicas.defaultSharedWeightMinimum) {
        self.pool = pool
        let n = pool.threadCount
        var models = [model]
        for _ in 1..<n {
            // The owner was built from the same specs and shape, so these cannot fail.
            models.append(try! Sequential(input: model.inputShape, specs: specs,
                                          synchronizedBatchNorm: synchronizedBatchNorm, sharingParametersWith: model))
        }
        self.models = models
        // Largest exchange: BatchNorm's (count, mean, M2) block from every replica.
        let block = model.batchNormLayers.map { 1 + 2 * $0.layer.features }.max() ?? 1
        rendezvous = ReplicaRendezvous(replicas: n, capacity: block * n)
        reducers = rendezvous.makeReducers()
        sharedLayers = model.layers.enumerated().compactMap { i, layer in
            (layer as? Linear).flatMap { $0.weightCount >= sharedWeightMinimum ? (i, $0) : nil }
        }
        packedInputs = Array(repeating: nil, count: sharedLayers.count)
        nextChunk = sharedLayers.map { _ in ChunkCounter() }
        nextGradientChunk = sharedLayers.map { _ in ChunkCounter() }
        packedGradientInputs = Array(repeating: nil, count: sharedLayers.count)
        let widest = sharedLayers.map(\.linear.outputFeatures).max() ?? 0
        sharedTransposed = FloatBuffer(count: widest * n * Linear.transposedForwardMaxBatch)
        results = .allocate(capacity: n)
        results.initialize(repeating: (0, 0), count: n)
        errors = .allocate(capacity: n)
        errors.initialize(repeating: nil, count: n)
    }

    deinit {
        results.deallocate()
        errors.deinitialize(count: count)
        errors.deallocate()
    }

    /// Whether a batch of `rows` is split between the replicas.
    public func splits(rows: Int) -> Bool { rows >= count * Self.minimumRowsPerReplica }

    /// Rows of a batch of `rows` that replica `r` takes (the split `DataSharding` makes between workers).
    public func rows(_ rows: Int, replica r: Int) -> Range<Int> { (rows * r / count)..<(rows * (r + 1) / count) }

    /// Whether a batch of `rows` shares the work of `sharedLayers` between the threads.
    /// Up to 256 rows a replica (one GEMM depth block), the result is bitwise the one
    /// each replica would compute alone followed by the replica-order gradient sum.
    public func sharesLayers(rows: Int) -> Bool {
        !sharedLayers.isEmpty && (rows + count - 1) / count <= Linear.transposedForwardMaxBatch
    }

    /// Output features of a shared layer of width `out` that thread `r` computes:
    /// whole micro-tiles of 12 rows, boundaries rounded to the nearest tile (256 rows
    /// split 132 + 124, 11 tiles each, rather than 120 + 136, 10 and 12).
    func sharedFeatures(_ out: Int, thread r: Int) -> Range<Int> {
        func boundary(_ k: Int) -> Int { k == count ? out : min(out, (out * k / count + 6) / 12 * 12) }
        return boundary(r)..<max(boundary(r), boundary(r + 1))
    }

    /// Before a step of `rows` that shares layers: packing room for each shared layer's
    /// input, chunk counters at zero. (On the calling thread, before `run`.)
    func prepareSharedInputs(rows: Int) {
        for (l, (_, linear)) in sharedLayers.enumerated() {
            if packedInputs[l]?.n != rows || packedInputs[l]?.k != linear.inputFeatures {
                packedInputs[l] = Gemm.SharedPackedB(k: linear.inputFeatures, n: rows)
            }
            nextChunk[l].value.store(0, ordering: .relaxed)
            nextGradientChunk[l].value.store(0, ordering: .relaxed)
            let depth = (rows + count - 1) / count
            if packedGradientInputs[l]?.maxDepth != depth || packedGradientInputs[l]?.n != linear.inputFeatures {
                packedGradientInputs[l] = Gemm.SumPackedB.applies(parts: count, maxDepth: depth, n: linear.inputFeatures)
                    ? Gemm.SumPackedB(parts: count, maxDepth: depth, n: linear.inputFeatures) : nil
            }
        }
    }

    /// Gives every replica model 0's BatchNorm running statistics, if they may differ.
    public func syncBuffers() {
        guard buffersStale else { return }
        for m in models.dropFirst() { m.copyBuffers(from: models[0]) }
        buffersStale = false
    }

    /// Runs `body(r)` for every replica at once, replica r on pool thread r. A replica
    /// that throws breaks the barrier so the others stop too; the first error other
    /// than the resulting `ReplicaGroupError` is rethrown.
    public func run(_ body: (Int) throws -> Void) throws {
        rendezvous.reset()
        let errors = self.errors, barrier = rendezvous.barrier
        for r in 0..<count { errors[r] = nil }
        let ran = pool.runOnEachThread { r in
            do { try body(r) } catch {
                errors[r] = error
                barrier.breakBarrier()
            }
        }
        precondition(ran, "ThreadReplicas.run: the thread pool is busy")
        let thrown = (0..<count).compactMap { errors[$0] }
        if let first = thrown.first(where: { !($0 is ReplicaGroupError) }) ?? thrown.first { throw first }
    }

    /// Waits for every replica (inside `run`).
    func barrier(replica r: Int) throws {
        guard rendezvous.barrier.wait() else {
            throw ReplicaGroupError(description: "replica \(r): another replica thread failed or the barrier timed out")
        }
    }

    /// Gradient arenas of replicas 1…, for `Optimizer.apply(parameters:summing:with:…)`.
    public var otherGradients: [UnsafePointer<Float>] { models.dropFirst().map { UnsafePointer($0.gradients.pointer) } }
}

/// A shared counter threads take work items from.
final class ChunkCounter: Sendable {
    let value = Atomic<Int>(0)
    /// The next item (0, 1, 2, …).
    func take() -> Int { value.wrappingAdd(1, ordering: .relaxed).oldValue }
}
