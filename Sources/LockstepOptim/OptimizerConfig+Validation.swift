/// A hyper-parameter that no optimizer run can use; `description` says which and what to set.
public struct OptimizerConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    public let kind: OptimizerKind
    /// The offending field, spelled as in `OptimizerConfig`.
    public let field: String
    public let message: String

    public var description: String { "optimizer \(kind.rawValue): \(field) \(message)" }
}

extension OptimizerConfig {
    /// Checks the preconditions torch.optim checks (and a few it lets through
    /// silently, such as `eps <= 0`), so a bad config fails before training.
    public func validate() throws {
        func fail(_ field: String, _ message: String) -> OptimizerConfigError {
            OptimizerConfigError(kind: kind, field: field, message: message)
        }
        func check(_ field: String, _ value: Float, _ ok: Bool, _ fix: String) throws {
            guard value.isFinite, ok else { throw fail(field, "= \(value) is invalid; \(fix)") }
        }
        try check("learningRate", learningRate, learningRate >= 0, "use a learning rate >= 0 (for example 0.01)")
        try check("weightDecay", weightDecay, weightDecay >= 0, "use a weight decay >= 0 (0 disables it)")
        switch kind {
        case .sgd, .momentum, .nesterov:
            try check("momentum", momentum, momentum >= 0 && momentum < 1, "use a momentum in [0, 1) such as 0.9")
            try check("dampening", dampening, dampening >= 0 && dampening <= 1, "use a dampening in [0, 1] (0 is usual)")
            if kind != .sgd && momentum == 0 {
                throw fail("momentum", "= 0 makes \(kind.rawValue) plain SGD; set momentum > 0 (for example 0.9) or use kind sgd")
            }
            if kind == .nesterov && dampening != 0 {
                throw fail("dampening", "= \(dampening) is not allowed with Nesterov momentum; set dampening to 0")
            }
        case .adagrad:
            try check("lrDecay", lrDecay, lrDecay >= 0, "use an lr decay >= 0 (0 disables it)")
            try check("initialAccumulatorValue", initialAccumulatorValue, initialAccumulatorValue >= 0,
                      "use an initial accumulator value >= 0")
        case .adadelta:
            try check("rho", rho, rho >= 0 && rho <= 1, "use a rho in [0, 1] such as 0.9")
        case .rmsprop:
            try check("alpha", alpha, alpha >= 0 && alpha <= 1, "use an alpha in [0, 1] such as 0.99")
            try check("momentum", momentum, momentum >= 0 && momentum < 1, "use a momentum in [0, 1) (0 disables it)")
        case .adam, .adamw:
            try check("beta1", beta1, beta1 >= 0 && beta1 < 1, "use a beta1 in [0, 1) such as 0.9")
            try check("beta2", beta2, beta2 >= 0 && beta2 < 1, "use a beta2 in [0, 1) such as 0.999")
        }
        if kind.usesEps {
            try check("eps", eps, eps > 0, "use an eps > 0 such as \(OptimizerConfig.defaults(for: kind).eps)")
        }
    }
}
