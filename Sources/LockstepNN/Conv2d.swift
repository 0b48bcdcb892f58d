import LockstepKernels

/// 2-D convolution over NCHW samples, `torch.nn.Conv2d(C, Cout, K, stride, padding)`:
/// weight `[Cout, C, K, K]`, bias `[Cout]`.
///
/// Samples go through in chunks (as many as keep the column matrix near
/// `columnBudget` floats): im2col of the chunk side by side, then one SGEMM
/// `W[Cout, C·K·K] · cols` on the kernel threads, then a copy into NCHW adding the
/// bias. Backward regathers the columns (unless the whole batch was one chunk) and
/// runs two SGEMMs: `dW += dYᵀ·colsᵀ` and `dcols = Wᵀ·dYᵀ`, whose col2im is the input
/// gradient. Every sum has a fixed order, independent of the thread count.
public final class Conv2d: Layer {
    public let geometry: ConvGeometry
    public let outChannels: Int
    public private(set) var weight: UnsafeMutablePointer<Float>!
    public private(set) var bias: UnsafeMutablePointer<Float>!
    private var weightGrad: UnsafeMutablePointer<Float>!
    private var biasGrad: UnsafeMutablePointer<Float>!

    /// Floats of the column matrix one chunk may use by default (8 MiB).
    public static let defaultColumnBudget = 1 << 21
    /// Floats of the column matrix one chunk may use.
    public var columnBudget = Conv2d.defaultColumnBudget

    private var columns = FloatBuffer(count: 0)
    private var transposed = FloatBuffer(count: 0)
    /// The columns still hold the last forward's input (a one-chunk training batch).
    private var columnsHoldInput = false

    public init(input: FeatureShape, outChannels: Int, kernel: Int, stride: Int = 1, pad: Int = 0) {
        precondition(input.spatial && outChannels > 0 && kernel > 0 && stride > 0 && pad >= 0, "Conv2d: bad shape")
        geometry = ConvGeometry(channels: input.channels, height: input.height, width: input.width,
                                kernel: kernel, stride: stride, pad: pad)
        precondition(geometry.outHeight >= 1 && geometry.outWidth >= 1, "Conv2d: the kernel does not fit the input")
        self.outChannels = outChannels
    }

    public var inputFeatures: Int { geometry.inputCount }
    public var outputFeatures: Int { outChannels * geometry.outPlane }
    public var outputShape: FeatureShape { FeatureShape(channels: outChannels, height: geometry.outHeight, width: geometry.outWidth) }
    public var weightCount: Int { outChannels * geometry.patch }
    public var parameterCount: Int { weightCount + outChannels }
    /// Samples per im2col chunk.
    public var chunkSamples: Int { max(1, columnBudget / (geometry.patch * geometry.outPlane)) }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        weight = parameters
        bias = parameters + weightCount
        weightGrad = gradients
        biasGrad = gradients + weightCount
    }

    /// PyTorch's default: kaiming_uniform(a=√5) for W and U(±1/√fan_in) for b, both U(±1/√fan_in).
    public func initializeParameters(random: inout CounterRandom) {
        let bound = 1 / Float(geometry.patch).squareRoot()
        for i in 0..<weightCount { weight[i] = random.nextSymmetric(bound) }
        for i in 0..<outChannels { bias[i] = random.nextSymmetric(bound) }
    }

    public var parameterSlots: [TensorSlot] {
        [TensorSlot(suffix: "weight", shape: [outChannels, geometry.channels, geometry.kernel, geometry.kernel], pointer: weight),
         TensorSlot(suffix: "bias", shape: [outChannels], pointer: bias)]
    }

    private func reserve(_ samples: Int) {
        let n = samples * geometry.outPlane
        if columns.count < geometry.patch * n { columns = FloatBuffer(count: geometry.patch * n) }
        if transposed.count < outChannels * n { transposed = FloatBuffer(count: outChannels * n) }
    }

    /// im2col of samples `first..<first+count` into the column matrix (row stride count·Ho·Wo).
    private func gather(_ x: UnsafePointer<Float>, first: Int, count: Int, pool: ThreadPool) {
        let g = geometry, plane = g.outPlane, ld = count * plane, cols = columns.pointer, inF = inputFeatures
        SampleBlocks.run(count, pool) { i in Im2Col.gather(x + (first + i) * inF, g, into: cols + i * plane, ld: ld) }
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let chunk = chunkSamples, plane = geometry.outPlane, cout = outChannels, outF = outputFeatures
        reserve(min(chunk, batch))
        var first = 0
        while first < batch {
            let start = first, count = min(chunk, batch - first), n = count * plane
            gather(x, first: start, count: count, pool: context.pool)
            let t = transposed.pointer, b = bias!
            Gemm.sgemm(transA: false, transB: false, m: cout, n: n, k: geometry.patch, alpha: 1,
                       a: weight, lda: geometry.patch, b: columns.pointer, ldb: n, beta: 0, c: t, ldc: n, pool: context.pool)
            SampleBlocks.run(count, context.pool) { i in
                let out = y + (start + i) * outF
                for co in 0..<cout {
                    let src = t + co * n + i * plane, dst = out + co * plane, shift = b[co]
                    for p in 0..<plane { dst[p] = src[p] + shift }
                }
            }
            first += count
        }
        columnsHoldInput = context.mode == .training && batch <= chunk
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        let chunk = chunkSamples, plane = geometry.outPlane, cout = outChannels, outF = outputFeatures
        let patch = geometry.patch, inF = inputFeatures, g = geometry
        reserve(min(chunk, batch))
        // Σ dy per channel in eight lanes (a scalar chain of adds waits on each one), lanes summed in order.
        let vectorEnd = plane / 8 * 8
        for co in 0..<cout {
            var lanes = SIMD8<Float>(), tail: Float = 0
            for s in 0..<batch {
                let row = dy + s * outF + co * plane
                var p = 0
                while p < vectorEnd { lanes += UnsafeRawPointer(row + p).loadUnaligned(as: SIMD8<Float>.self); p += 8 }
                while p < plane { tail += row[p]; p += 1 }
            }
            biasGrad[co] = lanes.sum() + tail
        }
        var first = 0
        while first < batch {
            let start = first, count = min(chunk, batch - first), n = count * plane
            if !(columnsHoldInput && start == 0 && count == batch) { gather(x, first: start, count: count, pool: context.pool) }
            columnsHoldInput = false
            let t = transposed.pointer, cols = columns.pointer
            SampleBlocks.run(count, context.pool) { i in
                let src = dy + (start + i) * outF
                for co in 0..<cout { (t + co * n + i * plane).update(from: src + co * plane, count: plane) }
            }
            // dW (+)= dYᵀ colsᵀ: [Cout, n] · [n, patch]
            Gemm.sgemm(transA: false, transB: true, m: cout, n: patch, k: n, alpha: 1, a: t, lda: n, b: cols, ldb: n,
                       beta: start == 0 ? 0 : 1, c: weightGrad, ldc: patch, pool: context.pool)
            if let dx {
                // dcols = Wᵀ dYᵀ: [patch, Cout] · [Cout, n], over the columns (no longer needed).
                Gemm.sgemm(transA: true, transB: false, m: patch, n: n, k: cout, alpha: 1, a: weight, lda: patch, b: t, ldb: n,
                           beta: 0, c: cols, ldc: n, pool: context.pool)
                SampleBlocks.run(count, context.pool) { i in
                    let out = dx + (start + i) * inF
                    out.update(repeating: 0, count: inF)
                    Im2Col.scatterAdd(cols + i * plane, ld: n, g, into: out)
                }
            }
            first += count
        }
    }

    public var summary: String {
        let g = geometry
        return "Conv2d(\(g.channels), \(outChannels), \(g.kernel)" + (g.stride != 1 ? ", stride=\(g.stride)" : "")
            + (g.pad != 0 ? ", padding=\(g.pad)" : "") + ")"
    }
}
