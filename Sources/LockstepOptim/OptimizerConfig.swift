/// Hyper-parameters of one optimizer, with PyTorch's defaults per kind.
///
/// Fields a kind does not use are carried but ignored. Decoding fills every
/// missing key from `defaults(for: kind)`, so a config file only has to name
/// the kind and what it changes.
public struct OptimizerConfig: Sendable, Equatable, Codable {
    public var kind: OptimizerKind
    public var learningRate: Float
    /// SGD momentum μ (momentum/nesterov 0.9) or RMSprop momentum (0).
    public var momentum: Float
    public var dampening: Float
    /// L2 penalty added to the gradient (`g += wd*p`), or decoupled decay for AdamW.
    public var weightDecay: Float
    public var beta1: Float
    public var beta2: Float
    public var eps: Float
    /// Adadelta's decay of the running averages.
    public var rho: Float
    /// RMSprop's smoothing constant.
    public var alpha: Float
    public var centered: Bool
    /// Adagrad: `clr = lr / (1 + (t-1)*lrDecay)`.
    public var lrDecay: Float
    public var initialAccumulatorValue: Float

    public init(
        kind: OptimizerKind, learningRate: Float, momentum: Float = 0, dampening: Float = 0,
        weightDecay: Float = 0, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
        rho: Float = 0.9, alpha: Float = 0.99, centered: Bool = false,
        lrDecay: Float = 0, initialAccumulatorValue: Float = 0
    ) {
        self.kind = kind
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.rho = rho
        self.alpha = alpha
        self.centered = centered
        self.lrDecay = lrDecay
        self.initialAccumulatorValue = initialAccumulatorValue
    }

    /// PyTorch's defaults for `kind` (docs/MATH.md, "Optimizers").
    ///
    /// torch.optim.SGD has no default learning rate; Lockstep uses 0.01 for
    /// the three SGD kinds.
    public static func defaults(for kind: OptimizerKind) -> OptimizerConfig {
        switch kind {
        case .sgd:
            return OptimizerConfig(kind: kind, learningRate: 0.01)
        case .momentum, .nesterov:
            return OptimizerConfig(kind: kind, learningRate: 0.01, momentum: 0.9)
        case .adagrad:
            return OptimizerConfig(kind: kind, learningRate: 0.01, eps: 1e-10)
        case .adadelta:
            return OptimizerConfig(kind: kind, learningRate: 1.0, eps: 1e-6, rho: 0.9)
        case .rmsprop:
            return OptimizerConfig(kind: kind, learningRate: 0.01, eps: 1e-8, alpha: 0.99)
        case .adam:
            return OptimizerConfig(kind: kind, learningRate: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        case .adamw:
            return OptimizerConfig(kind: kind, learningRate: 1e-3, weightDecay: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8)
        }
    }

    private enum CodingKeys: String, CodingKey {
        case kind, learningRate, momentum, dampening, weightDecay, beta1, beta2, eps, rho, alpha, centered, lrDecay,
            initialAccumulatorValue
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var config = OptimizerConfig.defaults(for: try c.decode(OptimizerKind.self, forKey: .kind))
        func take(_ key: CodingKeys, _ field: WritableKeyPath<OptimizerConfig, Float>) throws {
            if let v = try c.decodeIfPresent(Float.self, forKey: key) { config[keyPath: field] = v }
        }
        try take(.learningRate, \.learningRate)
        try take(.momentum, \.momentum)
        try take(.dampening, \.dampening)
        try take(.weightDecay, \.weightDecay)
        try take(.beta1, \.beta1)
        try take(.beta2, \.beta2)
        try take(.eps, \.eps)
        try take(.rho, \.rho)
        try take(.alpha, \.alpha)
        try take(.lrDecay, \.lrDecay)
        try take(.initialAccumulatorValue, \.initialAccumulatorValue)
        if let v = try c.decodeIfPresent(Bool.self, forKey: .centered) { config.centered = v }
        self = config
    }
}
