import ArgumentParser
import LockstepCollectives
import LockstepOptim
import LockstepRuntime

/// The training flags shared by `lockstep train` and `lockstep-coordinator`; each overrides a config key.
public struct TrainingOptions: ParsableArguments {
    public init() {}

    @Option(name: .long, help: "Config file (TOML), e.g. configs/fashion-mlp.toml.")
    public var config: String?

    @Option(parsing: .unconditional, help: "Number of epochs.") public var epochs: Int?
    @Option(name: .customLong("batch-size"), help: "Samples per step per worker, or \"full\" for one step per epoch (BGD).")
    public var batchSize: String?
    @Option(help: "sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam or adamw.") public var optimizer: String?
    @Option(parsing: .unconditional, help: "Learning rate.") public var lr: Float?
    @Option(help: "Replace every activation: relu, leaky_relu, sigmoid, tanh or maxout.") public var activation: String?
    @Option(parsing: .unconditional, help: "Dropout probability after every hidden activation (0 disables).") public var dropout: Float?
    @Option(parsing: .unconditional, help: "Threads of the kernel core per process.") public var threads: Int?
    @Option(name: .customLong("thread-parallelism"),
            help: "Single process: data (one model replica per thread, each on its part of the batch) or kernel (every kernel split across the threads; results independent of the thread count).")
    public var threadParallelism: String?
    @Option(parsing: .unconditional, help: "Random seed (initialization, shuffling, dropout).") public var seed: UInt64?
    @Option(name: .customLong("max-steps"), parsing: .unconditional, help: "Stop after this many optimizer steps.") public var maxSteps: Int?
    @Option(name: .customLong("accumulate-steps"), parsing: .unconditional,
            help: "Sum the gradients of this many micro-batches (each --batch-size per worker) before one all-reduce and one optimizer step.")
    public var accumulateSteps: Int?
    @Option(name: .customLong("emulate-compute-ms"), parsing: .unconditional,
            help: "Benchmarks: replace forward+backward by a wait of this many ms and synthetic gradients; all-reduce and optimizer run for real.")
    public var emulateComputeMs: Double?
    @Flag(name: .customLong("no-shuffle"), help: "Keep the training set in file order.") public var noShuffle = false
    @Option(name: .customLong("data-dir"), help: "Directory with the Fashion-MNIST IDX files.") public var dataDir: String?
    @Option(name: .customLong("init-from"), help: "Initialize the model from a safetensors file (PyTorch state_dict names).")
    public var initFrom: String?
    @Option(help: "Write a safetensors checkpoint here at every epoch end and at the end.") public var save: String?
    @Option(help: "Continue exactly from a checkpoint written by --save or --checkpoint-dir, or \"auto\": the newest complete one in --checkpoint-dir (none yet: start at step 0).")
    public var resume: String?
    @Option(name: .customLong("checkpoint-dir"), help: "Write numbered checkpoints here (atomic, with a checksummed manifest) at every epoch end, every --checkpoint-every steps and at the end.")
    public var checkpointDir: String?
    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Also write a checkpoint every N steps.")
    public var checkpointEvery: Int?
    @Option(name: .customLong("keep-checkpoints"), parsing: .unconditional, help: "Keep the newest K complete checkpoints (default 3).")
    public var keepCheckpoints: Int?
    @Option(name: .customLong("on-checkpoint-error"), help: "When a checkpoint cannot be written (a full disk): continue (a warning; default) or stop.")
    public var onCheckpointError: String?
    @Option(help: "Write JSON lines of epoch and final metrics here.") public var metrics: String?
    @Option(help: "Write a Chrome trace (chrome://tracing, Perfetto) of steps 5-14 (of the last 10 in a shorter run) here: one track per worker.")
    public var trace: String?
    @Option(help: "Write TensorBoard event files here (loss, learning rate, accuracy, samples/s), e.g. runs/tb; view with `tensorboard --logdir`.")
    public var tensorboard: String?
    @Option(name: .customLong("metrics-port"), parsing: .unconditional,
            help: "Serve the coordinator's figures in Prometheus' text format on this TCP port (all interfaces; 0: any free port).")
    public var metricsPort: Int?
    @Option(help: "constant, step or cosine learning-rate schedule.") public var schedule: String?
    @Option(name: .customLong("warmup-steps"), parsing: .unconditional, help: "Linear learning-rate warm-up steps.") public var warmupSteps: Int?
    @Option(name: .customLong("step-mode"), help: "Distributed step: replicated (all-reduce) or sharded (ZeRO-1).")
    public var stepMode: String?
    @Flag(name: .customLong("local-bn"), help: "Keep BatchNorm statistics local to each worker (no synchronization).")
    public var localBatchNorm = false
    @Option(parsing: .unconditional, help: "Seconds without a sign of life before a peer is declared dead.") public var timeout: Double?
    @Option(help: "Gradient payload on the wire: fp32, fp16 or bf16 (sums are always fp32).") public var wire: String?
    @Option(name: .customLong("all-reduce"),
            help: "flat, hierarchical (within each host over shared memory, then across hosts) or auto (hierarchical when hosts run several workers each).")
    public var allReduce: String?
    @Option(name: .customLong("max-restarts"), parsing: .unconditional,
            help: "Lost workers the job survives: it waits --rejoin-timeout for a replacement, else goes on with the survivors (--min-workers), from the last checkpoint (default 0, or workers - min-workers).")
    public var maxRestarts: Int?
    @Option(name: .customLong("min-workers"), parsing: .unconditional, help: "Fewest workers the job goes on with after losing some (default: all).")
    public var minWorkers: Int?
    @Option(name: .customLong("rejoin-timeout"), parsing: .unconditional, help: "Seconds a restart waits for a replacement worker to join (default 60).")
    public var rejoinTimeout: Double?
    @Option(name: .customLong("straggler-factor"), parsing: .unconditional,
            help: "Name a rank whose compute or communication per step exceeds the median's by this factor (default 1.5).")
    public var stragglerFactor: Double?
    @OptionGroup public var security: SecurityOptions

    /// The job: the config file (read once) with these flags applied, validated once.
    public func jobSpec() throws -> JobSpec {
        guard let config else { throw LockstepError("--config is required, e.g. --config configs/fashion-mlp.toml") }
        return try JobSpec.load(configPath: config, files: try runFiles) { c in try apply(to: &c) }
    }

    /// Applies every flag given to `c`.
    func apply(to c: inout TrainingConfig) throws {
        if let epochs { c.epochs = epochs }
        if let batchSize { c.batchSize = try BatchSizeOption.parse(batchSize) }
        if let optimizer {
            guard let kind = OptimizerKind(rawValue: optimizer) else {
                throw LockstepError("--optimizer \(optimizer): unknown; use one of \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if kind != c.optimizer.kind { c.optimizer = OptimizerConfig.defaults(for: kind) }
        }
        if let lr {
            guard lr > 0, lr.isFinite else { throw LockstepError("--lr \(lr): the learning rate must be a positive number") }
            c.optimizer.learningRate = lr
        }
        if let activation {
            guard ["relu", "leaky_relu", "sigmoid", "tanh", "maxout"].contains(activation) else {
                throw LockstepError("--activation \(activation): unknown; use relu, leaky_relu, sigmoid, tanh or maxout")
            }
            c.activation = activation
        }
        if let dropout { c.dropout = dropout }
        if let threads { c.threads = threads }
        if let threadParallelism {
            guard let p = TrainingConfig.ThreadParallelism(rawValue: threadParallelism) else {
                throw LockstepError("--thread-parallelism \(threadParallelism): use data or kernel")
            }
            c.threadParallelism = p
        }
        if let seed { c.seed = seed }
        if let maxSteps { c.maxSteps = maxSteps }
        if let accumulateSteps { c.accumulateSteps = accumulateSteps }
        if let emulateComputeMs { c.emulateComputeMs = emulateComputeMs }
        if noShuffle { c.shuffle = false }
        if let dataDir {
            guard c.dataset == "fashion-mnist" else {
                throw LockstepError("--data-dir \(dataDir): the config's dataset is \(c.dataset), which reads no files; drop --data-dir")
            }
            c.dataDir = dataDir
        }
        if let schedule {
            switch schedule {
            case "constant": c.lrPolicy.schedule = .constant
            case "step":
                // Keep the config's step_size and gamma when it already decays in steps.
                if case .step = c.lrPolicy.schedule {} else { c.lrPolicy.schedule = .step(stepSize: 1000, gamma: 0.1) }
            case "cosine": c.lrPolicy.schedule = .cosine(totalSteps: 0, minLR: 0)
            default: throw LockstepError("--schedule \(schedule): use constant, step or cosine")
            }
        }
        if let warmupSteps {
            guard warmupSteps >= 0 else { throw LockstepError("--warmup-steps \(warmupSteps): must be non-negative") }
            c.lrPolicy.warmupSteps = warmupSteps
        }
        if let stepMode {
            guard let m = TrainingConfig.StepMode(rawValue: stepMode) else {
                throw LockstepError("--step-mode \(stepMode): use replicated or sharded")
            }
            c.stepMode = m
        }
        if localBatchNorm { c.syncBatchNorm = false }
        if let timeout {
            guard timeout > 0, timeout <= 86_400 else { throw LockstepError("--timeout \(timeout): must be between 0 and 86400 seconds") }
            c.timeoutSeconds = timeout
        }
        if let wire {
            guard let w = WireFormat(rawValue: wire) else { throw LockstepError("--wire \(wire): use fp32, fp16 or bf16") }
            c.wire = w
        }
        security.apply(to: &c.security)
        if let maxRestarts { c.maxRestarts = maxRestarts }
        if let minWorkers { c.minWorkers = minWorkers }
        if let rejoinTimeout { c.rejoinTimeoutSeconds = rejoinTimeout }
        if let stragglerFactor { c.stragglerFactor = stragglerFactor }
        if let allReduce {
            guard let a = TrainingConfig.AllReduceAlgorithm(rawValue: allReduce) else {
                throw LockstepError("--all-reduce \(allReduce): use flat, hierarchical or auto")
            }
            c.allReduce = a
        }
    }

    public var runFiles: RunFiles {
        get throws {
            var files = RunFiles(initFrom: initFrom, save: save, resume: resume, metrics: metrics, trace: trace, tensorboard: tensorboard,
                                 metricsPort: metricsPort)
            files.checkpointDir = checkpointDir
            files.checkpointEvery = checkpointEvery
            if let keepCheckpoints { files.keepCheckpoints = keepCheckpoints }
            if let onCheckpointError {
                guard let p = CheckpointSchedule.FailurePolicy(rawValue: onCheckpointError) else {
                    throw LockstepError("--on-checkpoint-error \(onCheckpointError): use continue or stop")
                }
                files.onCheckpointError = p
            }
            return files
        }
    }
}
