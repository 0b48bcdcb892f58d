import LockstepKernels

/// The element-wise activations of the seed (docs/MATH.md, "Activations").
public enum ActivationKind: String, CaseIterable, Sendable {
    case relu
    case leakyRelu = "leaky_relu"
    case sigmoid
    case tanh
}

/// An element-wise activation layer; backward uses the saved output where the
/// derivative is a function of it (σ(1-σ), 1-tanh²) and the input otherwise.
public final class Activation: Layer {
    public let kind: ActivationKind
    public let features: Int
    /// LeakyReLU's negative slope α.
    public let negativeSlope: Float

    public init(_ kind: ActivationKind, features: Int, negativeSlope: Float = 0.01) {
        self.kind = kind
        self.features = features
        self.negativeSlope = negativeSlope
    }

    public var inputFeatures: Int { features }
    public var outputFeatures: Int { features }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let n = batch * features
        switch kind {
        case .relu:
            for i in 0..<n { y[i] = x[i] > 0 ? x[i] : 0 }
        case .leakyRelu:
            let a = negativeSlope
            for i in 0..<n { y[i] = x[i] > 0 ? x[i] : a * x[i] }
        case .sigmoid:
            VectorMath.sigmoid(x, y, count: n)
        case .tanh:
            VectorMath.tanh(x, y, count: n)
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        guard let dx else { return }
        let n = batch * features
        switch kind {
        case .relu:
            for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : 0 }
        case .leakyRelu:
            let a = negativeSlope
            for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : a * dy[i] }
        case .sigmoid:
            for i in 0..<n { dx[i] = dy[i] * y[i] * (1 - y[i]) }
        case .tanh:
            for i in 0..<n { dx[i] = dy[i] * (1 - y[i] * y[i]) }
        }
    }

    public var summary: String {
        switch kind {
        case .relu: return "ReLU()"
        case .leakyRelu: return "LeakyReLU(\(negativeSlope))"
        case .sigmoid: return "Sigmoid()"
        case .tanh: return "Tanh()"
        }
    }
}
