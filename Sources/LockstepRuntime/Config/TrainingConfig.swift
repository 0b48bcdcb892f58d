import LockstepBase
import Foundation
import LockstepCollectives
import LockstepData
import LockstepNN
import LockstepOptim

/// The job's effective settings: config file merged with command-line overrides.
///
/// The coordinator sends this (as JSON) to every worker, so all ranks run with
/// the coordinator's settings; `modelHash` guards that workers build the same model.
public struct TrainingConfig: Codable, Equatable, Sendable {
    // [model]
    public var layers: [String] = ["linear 512", "batchnorm", "relu", "linear 256", "batchnorm", "relu", "linear 10"]
    public var activation: String? = nil
    public var maxoutPieces: Int = 2
    public var dropout: Float? = nil
    public var syncBatchNorm: Bool = true

    // [data]
    public var dataset: String = "fashion-mnist"
    public var dataDir: String = "/usr/share/datasets/fashion-mnist"
    public var shuffle: Bool = true
    public var syntheticTrain: Int = 60_000
    public var syntheticTest: Int = 10_000
    public var syntheticFeatures: Int = 784
    public var syntheticClasses: Int = 10
    /// The user's own files (`dataset` = "csv", "npy" or "idx").
    public var source: DataSource? = nil

    // [train]
    public var epochs: Int = 5
    /// Samples per step per worker; 0 means the whole (per-worker) training set: BGD.
    public var batchSize: Int = 128
    public var seed: UInt64 = 0
    public var threads: Int = 2
    /// How a single process uses its threads: one model replica per thread, or
    /// every kernel split across the threads (results independent of the thread count).
    public var threadParallelism: ThreadParallelism = .data
    public var maxSteps: Int? = nil
    /// Micro-batches whose gradients are summed before one all-reduce and one optimizer
    /// step (DDP's `no_sync`); each micro-batch is `batchSize` samples per worker.
    public var accumulateSteps: Int = 1
    public var evalBatchSize: Int = 1000
    /// Benchmarks only: replace forward and backward with a wait of this many
    /// milliseconds and synthetic gradients (`Trainer+EmulatedCompute`); nil runs the model.
    public var emulateComputeMs: Double? = nil

    // [optimizer]
    public var optimizer: OptimizerConfig = OptimizerConfig.defaults(for: .momentum)

    // [schedule]
    public var lrPolicy = LearningRatePolicy(schedule: .constant, warmupSteps: 0)

    // [distributed]
    public var stepMode: StepMode = .replicated
    public var timeoutSeconds: Double = 30
    public var chunkBytes: Int = 1 << 20
    /// Gradient bucket size for the all-reduce that overlaps backward.
    public var bucketBytes: Int = 256 << 10
    /// Gradient payload format on the wire; sums are always fp32.
    public var wire: WireFormat = .fp32
    /// How gradients are all-reduced when several workers share a host.
    public var allReduce: AllReduceAlgorithm = .auto
    public var heartbeatSeconds: Double = 1
    /// Lost workers the job survives (restarting from its last checkpoint); nil: none,
    /// or workers − `minWorkers` when that is set.
    public var maxRestarts: Int? = nil
    /// With fewer workers than this after a loss (and no replacement), the job stops; nil: all of them.
    public var minWorkers: Int? = nil
    /// Seconds a restart waits for a replacement (or the survivors) to join.
    public var rejoinTimeoutSeconds: Double = 60
    /// A rank whose compute or communication time per step exceeds the median's by this factor is named.
    public var stragglerFactor: Double = 1.5

    // [security]: this process's keys; not part of the model, never sent to workers.
    public var security = SecurityConfig()

    public init() {}

    /// Most parameters a model may have: 1 GiB of weights, and as much again per
    /// gradient and optimizer state.
    public static let maximumParameters = 1 << 28

    public enum ThreadParallelism: String, Codable, Sendable, CaseIterable {
        /// One replica of the model per thread, each on its part of the batch
        /// (single process; workers of a distributed run split kernels instead).
        case data
        /// One model; every kernel is split across the threads.
        case kernel
    }

    public enum StepMode: String, Codable, Sendable, CaseIterable {
        case replicated
        case sharded
    }

    public enum AllReduceAlgorithm: String, Codable, Sendable, CaseIterable {
        /// One ring (or recursive doubling) over all ranks.
        case flat
        /// Within each host over shared memory, then across hosts over ZeroMQ
        /// (`Communicator.hierarchicalAllReduceSum`).
        case hierarchical
        /// Hierarchical when the peer table shows several hosts with the same number
        /// (more than one) of workers each, and the step mode is replicated; else flat.
        case auto
    }

    /// The layer sequence after `activation` / `dropout` overrides.
    public func layerSpecs() throws -> [LayerSpec] {
        var specs = try layers.map { try LayerSpec(parsing: $0) }
        if let activation { specs = try LayerSpec.substituting(activation: activation, maxoutPieces: maxoutPieces, in: specs) }
        if let p = dropout {
            guard p >= 0, p < 1 else { throw LockstepError("--dropout \(p): the probability must be in [0, 1)") }
            specs = specs.filter { if case .dropout = $0 { return false } else { return true } }
            if p > 0 {
                // Dropout after every hidden activation.
                var out: [LayerSpec] = []
                for s in specs {
                    out.append(s)
                    switch s { case .activation, .maxout: out.append(.dropout(p)); default: break }
                }
                specs = out
            }
        }
        return specs
    }

    /// Checks every value a user can get wrong; throws a one-line message saying what to fix.
    public func validate() throws {
        guard epochs >= 1, epochs <= 1_000_000 else { throw LockstepError("epochs = \(epochs): must be between 1 and 1000000") }
        guard batchSize >= 0 else { throw LockstepError("batch size \(batchSize): use a positive number, or \"full\" for one step per epoch") }
        guard threads >= 1, threads <= 256 else { throw LockstepError("threads = \(threads): must be between 1 and 256") }
        if let m = maxSteps, m < 1 || m > 1 << 40 { throw LockstepError("max steps = \(m): must be between 1 and 2^40") }
        guard accumulateSteps >= 1, accumulateSteps <= 65_536 else {
            throw LockstepError("accumulate_steps = \(accumulateSteps): must be between 1 and 65536")
        }
        if let ms = emulateComputeMs, !(ms >= 0 && ms <= 60_000) {
            throw LockstepError("emulate_compute_ms = \(ms): must be between 0 and 60000 milliseconds")
        }
        guard ["fashion-mnist", "synthetic"].contains(dataset) || (source != nil && source?.format.rawValue == dataset) else {
            throw LockstepError("dataset \"\(dataset)\": use \"fashion-mnist\" or \"synthetic\", or [data] format = \"csv\", \"npy\" or \"idx\" with its files")
        }
        guard timeoutSeconds > 0, timeoutSeconds <= 86_400 else {
            throw LockstepError("timeout_seconds = \(timeoutSeconds): must be between 0 and 86400 seconds")
        }
        guard heartbeatSeconds >= 0.01, heartbeatSeconds <= 60, heartbeatSeconds < timeoutSeconds else {
            throw LockstepError("heartbeat_seconds = \(heartbeatSeconds): must be between 0.01 and 60 seconds and below timeout_seconds")
        }
        if let r = maxRestarts, r < 0 || r > 1_000_000 { throw LockstepError("max_restarts = \(r): must be between 0 and 1000000") }
        if let m = minWorkers, m < 1 { throw LockstepError("min_workers = \(m): must be at least 1") }
        guard rejoinTimeoutSeconds > 0, rejoinTimeoutSeconds <= 86_400 else {
            throw LockstepError("rejoin_timeout_seconds = \(rejoinTimeoutSeconds): must be between 0 and 86400 seconds")
        }
        guard stragglerFactor > 1, stragglerFactor <= 1000 else {
            throw LockstepError("straggler_factor = \(stragglerFactor): must be above 1 (1.5: 50% slower than the median)")
        }
        guard evalBatchSize >= 1 else { throw LockstepError("eval_batch_size = \(evalBatchSize): must be at least 1") }
        if allReduce == .hierarchical, stepMode == .sharded {
            throw LockstepError("all_reduce = \"hierarchical\" needs step_mode = \"replicated\" (the sharded step reduce-scatters over the flat ring)")
        }
        guard bucketBytes >= 4 else { throw LockstepError("bucket_bytes = \(bucketBytes): must be at least 4") }
        guard chunkBytes >= 64 else { throw LockstepError("chunk_bytes = \(chunkBytes): must be at least 64") }
        guard maxoutPieces >= 2 else { throw LockstepError("maxout_pieces = \(maxoutPieces): must be at least 2") }
        do { try optimizer.validate() } catch { throw LockstepError("\(error)") }
        let specs: [LayerSpec]
        do { specs = try layerSpecs() } catch let e as LockstepError { throw e } catch { throw LockstepError("\(error)") }
        guard case .linear = specs.last else { throw LockstepError("model.layers must end with \"linear <classes>\"") }
        // The shapes and parameters, checked before anything is allocated (files: once they are read).
        if let shape = inputShape {
            do {
                _ = try ModelPlan(input: shape, specs: specs, maximumParameters: TrainingConfig.maximumParameters)
            } catch {
                throw LockstepError("\(error)")
            }
        }
    }

    /// Identifies the model a worker builds: layers, input size, classes. Workers with another hash are refused.
    public func modelHash(inputFeatures: Int) throws -> String {
        let text = try layerSpecs().map(\.description).joined(separator: "|") + "|in=\(inputFeatures)|bn=\(syncBatchNorm)"
        var h = FNV1a()
        h.add(text)
        return String(h.value, radix: 16)
    }

}

extension TrainingConfig {
    /// Lost workers a job of `workers` survives.
    public func restartsAllowed(workers: Int) -> Int {
        maxRestarts ?? max(0, workers - (minWorkers ?? workers))
    }

    /// Input features of the configured dataset (Fashion-MNIST: 28×28); 0 for files, whose
    /// size is known once they are read (the model hash then records the format).
    public var inputFeatures: Int { inputShape?.features ?? 0 }

    /// A sample's shape where the config alone tells it: Fashion-MNIST 1×28×28, synthetic flat; nil for files.
    public var inputShape: FeatureShape? {
        switch dataset {
        case "synthetic": return FeatureShape(features: syntheticFeatures)
        case "fashion-mnist": return FeatureShape(channels: 1, height: 28, width: 28)
        default: return nil
        }
    }

    /// Training samples of the configured dataset (for the coordinator's ETA; workers count the real data).
    public var trainSamples: Int {
        switch dataset {
        case "synthetic": return syntheticTrain
        case "fashion-mnist": return FashionMNIST.trainCount
        default: return 0
        }
    }
}
