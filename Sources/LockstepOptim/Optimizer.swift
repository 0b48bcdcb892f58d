import LockstepKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One optimizer over one contiguous slice of the flat parameter arena.
///
/// The instance owns the state for that slice only, so a ZeRO-1 shard is an
/// `Optimizer` built with the shard's `count` and applied to the shard's
/// pointers. State is allocated once in `init` (zeros, or Adagrad's
/// `initialAccumulatorValue`), and `apply` allocates nothing.
///
/// The rules are torch.optim's single-tensor code paths, op for op in
/// float32, see `Optimizer+Rules.swift`; docs/MATH.md lists them.
public final class Optimizer {
    public let config: OptimizerConfig
    public let count: Int
    /// Number of steps taken (torch's `t` after the step; 0 before the first).
    public private(set) var step: Int = 0
    /// Names of the per-element state buffers, in checkpoint order.
    public let stateNames: [String]

    private let storage: UnsafeMutablePointer<Float>
    let scalars: Scalars

    /// Hyper-parameters as torch sees them: the Python double a user would
    /// have written (recovered from the Float's shortest decimal form), and
    /// the float32 each tensor op receives.
    struct Scalars {
        var momentum: Float, oneMinusDampening: Float, weightDecay: Float
        var beta1: Double, beta2: Double, beta2f: Float, oneMinusBeta1: Float, oneMinusBeta2: Float
        var eps: Float, rho: Float, oneMinusRho: Float, alpha: Float, oneMinusAlpha: Float
        var lrDecay: Double, weightDecayDouble: Double
    }

    public init(config: OptimizerConfig, count: Int) throws {
        try config.validate()
        precondition(count >= 0, "Optimizer: negative count \(count)")
        self.config = config
        self.count = count
        stateNames = Optimizer.stateNames(for: config)
        let total = max(count * stateNames.count, 1)
        storage = UnsafeMutablePointer<Float>.allocate(capacity: total)
        storage.initialize(repeating: 0, count: total)
        if config.kind == .adagrad {
            storage.update(repeating: config.initialAccumulatorValue, count: count)
        }
        func d(_ x: Float) -> Double { Double(x.description) ?? Double(x) }
        scalars = Scalars(
            momentum: config.momentum, oneMinusDampening: Float(1 - d(config.dampening)),
            weightDecay: config.weightDecay,
            beta1: d(config.beta1), beta2: d(config.beta2), beta2f: config.beta2,
            oneMinusBeta1: Float(1 - d(config.beta1)), oneMinusBeta2: Float(1 - d(config.beta2)),
            eps: config.eps, rho: config.rho, oneMinusRho: Float(1 - d(config.rho)),
            alpha: config.alpha, oneMinusAlpha: Float(1 - d(config.alpha)),
            lrDecay: d(config.lrDecay), weightDecayDouble: d(config.weightDecay))
    }

    deinit { storage.deallocate() }

    /// Floats summed and then updated at a time by `apply(parameters:summing:with:…)`
    /// (a multiple of the rules' 8 lanes, so the split does not change any result).
    static let summingPiece = 4096

    static func stateNames(for config: OptimizerConfig) -> [String] {
        switch config.kind {
        case .sgd, .momentum, .nesterov: return config.momentum != 0 ? ["momentum_buffer"] : []
        case .adagrad: return ["sum"]
        case .adadelta: return ["square_avg", "acc_delta"]
        case .rmsprop:
            return ["square_avg"] + (config.momentum > 0 ? ["momentum_buffer"] : []) + (config.centered ? ["grad_avg"] : [])
        case .adam, .adamw: return ["exp_avg", "exp_avg_sq"]
        }
    }

    /// Total floats of state this instance holds (a ZeRO-1 shard holds 1/N of the replicated amount).
    public var stateFloatCount: Int { count * stateNames.count }

    /// The state buffer called `name` (one of `stateNames`), `count` floats, for checkpoint save and restore.
    public func state(named name: String) -> UnsafeMutableBufferPointer<Float> {
        guard let index = stateNames.firstIndex(of: name) else {
            preconditionFailure("Optimizer \(config.kind.rawValue) has no state '\(name)'; it has \(stateNames)")
        }
        return UnsafeMutableBufferPointer(start: storage + index * count, count: count)
    }

    /// Sets the step counter after the state buffers were restored from a checkpoint.
    public func restore(step: Int) {
        precondition(step >= 0, "Optimizer.restore: negative step \(step)")
        self.step = step
    }

    /// One step: `parameters[0..<count]` updated from `gradients[0..<count]`.
    ///
    /// `learningRate` is this step's rate (after the schedule); the config's
    /// own `learningRate` is the schedule's base and is not read here.
    public func apply(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float,
                      pool: ThreadPool? = nil) {
        apply(parameters: parameters, gradients: UnsafeMutablePointer(mutating: gradients), adding: [],
              learningRate: learningRate, pool: pool)
    }

    /// One step on the sum of several gradient arenas (model replicas on threads):
    /// `gradients[i] += others[0][i] + …` in that order, piece by piece just before each
    /// piece is used, so the sum is still in L1 when the rule reads it. Afterwards
    /// `gradients` holds the summed gradient.
    public func apply(parameters: UnsafeMutablePointer<Float>, summing gradients: UnsafeMutablePointer<Float>,
                      with others: [UnsafePointer<Float>], learningRate: Float, pool: ThreadPool? = nil) {
        apply(parameters: parameters, gradients: gradients, adding: others, learningRate: learningRate, pool: pool)
    }

    private func apply(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>,
                       adding others: [UnsafePointer<Float>], learningRate: Float,
                       pool: ThreadPool?) {
        let update = beginStep(learningRate: learningRate)
        let n = count
        guard n > 0 else { return }
        let threads = pool?.threadCount ?? 1
        guard let pool, threads > 1, n >= 1 << 14 else {
            update.update(parameters: parameters, summing: gradients, with: others, range: 0..<n)
            return
        }
        let chunk = ((n + threads - 1) / threads + 15) & ~15
        pool.parallelFor(threads) { i in
            let lo = i * chunk
            if lo < n { update.update(parameters: parameters, summing: gradients, with: others, range: lo..<min(n, lo + chunk)) }
        }
    }

    /// Starts one step whose elements the caller updates (`StepUpdate.update`), in any
    /// disjoint ranges and from any threads; `step` advances here, once.
    public func beginStep(learningRate: Float) -> StepUpdate {
        let first = step == 0
        step += 1
        let s = scalars
        let t = Double(step), lrD = Double(learningRate)
        return StepUpdate(
            kind: config.kind, s: s, momentum: config.momentum, centered: config.centered, storage: storage, count: count,
            first: first, learningRate: learningRate, learningRateDouble: lrD,
            clr: config.kind == .adagrad ? Float(lrD / (1 + Double(step - 1) * s.lrDecay)) : 0,
            stepSize: lrD / (1 - pow(s.beta1, t)), biasCorrection2Sqrt: Float(pow(1 - pow(s.beta2, t), 0.5)))
    }
}
