/// Maxout over groups of `pieces` consecutive features: `y_j = max_i z_{j·k+i}`.
///
/// Placed right after `Linear(in, out·k)` this is the seed's maxout unit
/// `y_j = max_i (W_i x + b_i)_j` (PyTorch equivalent: `z.view(-1, out, k).amax(-1)`).
/// The gradient goes to the arg-max piece only; ties go to the lowest i.
public final class Maxout: Layer {
    public let pieces: Int
    public let inputFeatures: Int
    private var argmax: [Int32] = []

    public init(inputFeatures: Int, pieces: Int) {
        precondition(pieces >= 2, "Maxout needs at least 2 pieces")
        precondition(inputFeatures % pieces == 0, "Maxout: \(inputFeatures) features do not split into groups of \(pieces)")
        self.inputFeatures = inputFeatures
        self.pieces = pieces
    }

    public var outputFeatures: Int { inputFeatures / pieces }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let units = outputFeatures, k = pieces
        if argmax.count < batch * units { argmax = [Int32](repeating: 0, count: batch * units) }
        argmax.withUnsafeMutableBufferPointer { am in
            for o in 0..<(batch * units) {
                let z = x + o * k
                var best = z[0], at: Int32 = 0
                for i in 1..<k where z[i] > best { best = z[i]; at = Int32(i) }
                y[o] = best
                am[o] = at
            }
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        guard let dx else { return }
        let units = outputFeatures, k = pieces
        dx.update(repeating: 0, count: batch * inputFeatures)
        argmax.withUnsafeBufferPointer { am in
            for o in 0..<(batch * units) { dx[o * k + Int(am[o])] = dy[o] }
        }
    }

    public var summary: String { "Maxout(\(inputFeatures) → \(outputFeatures), k=\(pieces))" }
}
