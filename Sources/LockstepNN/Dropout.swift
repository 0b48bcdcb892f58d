/// Inverted dropout: training `y = x·mask/(1-p)` with `mask ~ Bernoulli(1-p)`, evaluation `y = x`.
///
/// The mask is drawn from a counter-based stream keyed by (seed, rank, step, layer index),
/// so a run is reproducible and a resumed run draws the same masks.
public final class Dropout: Layer {
    public let probability: Float
    public let features: Int
    /// Position in the model, part of the random stream's key.
    public let layerIndex: Int
    private var scale: [Float] = []

    public init(probability: Float, features: Int, layerIndex: Int) {
        precondition(probability >= 0 && probability < 1, "Dropout probability must be in [0, 1)")
        self.probability = probability
        self.features = features
        self.layerIndex = layerIndex
    }

    public var inputFeatures: Int { features }
    public var outputFeatures: Int { features }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let n = batch * features
        guard context.mode == .training, probability > 0 else {
            y.update(from: x, count: n)
            return
        }
        if scale.count < n { scale = [Float](repeating: 0, count: n) }
        let key = CounterRandom(seed: context.seed, UInt64(context.rank), UInt64(context.step), UInt64(layerIndex)).key
        // Keep an element when its 24-bit uniform is >= p.
        let threshold = UInt64((Double(probability) * 16_777_216).rounded())
        let kept = 1 / (1 - probability)
        scale.withUnsafeMutableBufferPointer { s in
            for i in 0..<n {
                let u = CounterRandom.value(key: key, index: UInt64(i)) >> 40
                s[i] = u >= threshold ? kept : 0
                y[i] = x[i] * s[i]
            }
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        guard let dx else { return }
        let n = batch * features
        guard context.mode == .training, probability > 0 else {
            dx.update(from: dy, count: n)
            return
        }
        scale.withUnsafeBufferPointer { s in for i in 0..<n { dx[i] = dy[i] * s[i] } }
    }

    public var summary: String { "Dropout(p=\(probability))" }
}
