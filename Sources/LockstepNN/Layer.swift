import LockstepKernels

/// Training or evaluation behaviour of BatchNorm and Dropout.
public enum Mode: Sendable {
    case training
    case evaluation
}

/// What a layer may need to know about the step being run.
public struct StepContext {
    public var mode: Mode
    /// Global optimizer step, for dropout's random stream.
    public var step: Int
    /// Worker rank, for dropout's random stream.
    public var rank: Int
    public var seed: UInt64
    /// Cross-worker reduction for synchronized BatchNorm; `nil` means local statistics.
    public var reducer: BatchStatisticsReducer?
    /// The threads the layer's kernels split their work across (`.serial`: the caller alone).
    public var pool: ThreadPool

    public init(mode: Mode, step: Int = 0, rank: Int = 0, seed: UInt64 = 0, reducer: BatchStatisticsReducer? = nil,
                pool: ThreadPool = .serial) {
        self.mode = mode
        self.step = step
        self.rank = rank
        self.seed = seed
        self.reducer = reducer
        self.pool = pool
    }
}

/// A named tensor of a layer, in PyTorch `state_dict` terms (`weight`, `bias`, `running_mean`…).
public struct TensorSlot {
    public let suffix: String
    public let shape: [Int]
    public let pointer: UnsafeMutablePointer<Float>
    public var count: Int { shape.reduce(1, *) }
}

/// A layer over a row-major batch matrix `[batch, features]`.
///
/// Trainable parameters live in the model's flat arena: the model hands each
/// layer its slice with `bind`. Forward keeps what backward needs; the model
/// owns the activation buffers and keeps them alive between the two passes.
public protocol Layer: AnyObject {
    var inputFeatures: Int { get }
    var outputFeatures: Int { get }
    /// Number of trainable floats this layer needs in the arena.
    var parameterCount: Int { get }
    /// Points the layer at its slices of the parameter and gradient arenas.
    func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>)
    /// Sets parameters to PyTorch's default initialization for this layer.
    func initializeParameters(random: inout CounterRandom)
    /// Trainable tensors, in `state_dict` order.
    var parameterSlots: [TensorSlot] { get }
    /// Non-trainable state (BatchNorm running statistics), in `state_dict` order.
    var bufferSlots: [TensorSlot] { get }
    /// Computes `y` for a batch; in training mode keeps what backward needs.
    func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws
    /// Writes this layer's parameter gradients (overwriting) and, if `dx` is non-nil, the input gradient.
    func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, context: StepContext) throws
    /// A short description such as `Linear(784, 512)`.
    var summary: String { get }
}

extension Layer {
    public var parameterCount: Int { 0 }
    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {}
    public func initializeParameters(random: inout CounterRandom) {}
    public var parameterSlots: [TensorSlot] { [] }
    public var bufferSlots: [TensorSlot] { [] }
}
