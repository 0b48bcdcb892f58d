/// The update rules Lockstep implements, named after the survey in docs/MATH.md.
///
/// Each follows the matching `torch.optim` class (single-tensor, `foreach=False`):
/// `sgd`, `momentum` and `nesterov` are `torch.optim.SGD` (momentum 0, > 0, and
/// `nesterov=True`); the others are the classes of the same name.
public enum OptimizerKind: String, CaseIterable, Sendable, Codable {
    case sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw

    /// Whether the rule divides by a running root-mean-square and therefore uses `eps`.
    public var usesEps: Bool {
        switch self {
        case .sgd, .momentum, .nesterov: return false
        case .adagrad, .adadelta, .rmsprop, .adam, .adamw: return true
        }
    }
}
