import LockstepKernels

/// Fully connected layer `y = x Wᵀ + b`, with `W` stored `[out, in]` as in `torch.nn.Linear`.
public final class Linear: Layer {
    public let inputFeatures: Int
    public let outputFeatures: Int
    /// `[out, in]`, in the model's parameter arena.
    public private(set) var weight: UnsafeMutablePointer<Float>!
    /// `[out]`, right after the weight in the arena.
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var biasGrad: UnsafeMutablePointer<Float>!

    public init(inputFeatures: Int, outputFeatures: Int) {
        precondition(inputFeatures > 0 && outputFeatures > 0, "Linear needs positive sizes")
        self.inputFeatures = inputFeatures
        self.outputFeatures = outputFeatures
    }

    public var parameterCount: Int { weightCount + outputFeatures }
    public var weightCount: Int { outputFeatures * inputFeatures }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters
        bias = parameters + outputFeatures * inputFeatures
        weightGrad = gradients
        biasGrad = gradients + outputFeatures * inputFeatures
    }

    /// PyTorch's default: kaiming_uniform(a=√5) for W and U(±1/√in) for b, both U(±1/√in).
    public func initializeParameters(random: inout CounterRandom) {
        let bound = 1 / Float(inputFeatures).squareRoot()
        for i in 0..<(outputFeatures * inputFeatures) { weight[i] = random.nextSymmetric(bound) }
        for i in 0..<outputFeatures { bias[i] = random.nextSymmetric(bound) }
    }

    public var parameterSlots: [TensorSlot] {
        [TensorSlot(suffix: "weight", shape: [outputFeatures, inputFeatures], pointer: weight),
         TensorSlot(suffix: "bias", shape: [outputFeatures], pointer: bias)]
    }

    /// Batches up to this size compute `yᵀ = W xᵀ` (W read in place, only x packed) and
    /// transpose, instead of `y = x Wᵀ`, which packs all of W for a few rows of x.
    public static let transposedForwardMaxBatch = 256

    /// `yᵀ` of the last transposed forward, `[out, batch]`.
    private var transposed = FloatBuffer(count: 0)

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let (inF, out) = (inputFeatures, outputFeatures)
        guard batch <= Self.transposedForwardMaxBatch else {
            for r in 0..<batch { (y + r * out).update(from: bias, count: out) }
            Gemm.sgemm(transA: false, transB: true, m: batch, n: out, k: inF, alpha: 1,
                       a: x, lda: inF, b: weight, ldb: inF, beta: 1, c: y, ldc: out, pool: context.pool)
            return
        }
        if transposed.count < batch * out { transposed = FloatBuffer(count: batch * out) }
        let t = transposed.pointer
        Gemm.sgemm(transA: false, transB: true, m: out, n: batch, k: inF, alpha: 1,
                   a: weight, lda: inF, b: x, ldb: inF, beta: 0, c: t, ldc: batch, pool: context.pool)
        Transpose.addingRowBias(t, rows: out, cols: batch, ldt: batch, bias: bias, into: y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        let (inF, out) = (inputFeatures, outputFeatures)
        // dW = dYᵀ X  ([out, batch] · [batch, in])
        Gemm.sgemm(transA: true, transB: false, m: out, n: inF, k: batch, alpha: 1,
                   a: dy, lda: out, b: x, ldb: inF, beta: 0, c: weightGrad, ldc: inF, pool: context.pool)
        Reductions.columnSums(dy, rows: batch, cols: out, into: biasGrad)
        if let dx {
            // dX = dY W  ([batch, out] · [out, in])
            Gemm.sgemm(transA: false, transB: false, m: batch, n: inF, k: out, alpha: 1,
                       a: dy, lda: out, b: weight, ldb: inF, beta: 0, c: dx, ldc: inF, pool: context.pool)
        }
    }

    public var summary: String { "Linear(\(inputFeatures), \(outputFeatures))" }
}
