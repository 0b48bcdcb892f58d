/// `torch.nn.Flatten()`: a batch is stored sample after sample, so the values pass unchanged.
public final class Flatten: Layer {
    public let features: Int

    public init(features: Int) { self.features = features }

    public var inputFeatures: Int { features }
    public var outputFeatures: Int { features }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        y.update(from: x, count: batch * features)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        dx?.update(from: dy, count: batch * features)
    }

    public var summary: String { "Flatten()" }
}
