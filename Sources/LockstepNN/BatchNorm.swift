import LockstepKernels

/// `torch.nn.BatchNorm1d` over the feature axis, or `torch.nn.BatchNorm2d` over the
/// channels of NCHW feature maps (`spatial` = H·W positions a channel; statistics over
/// the batch and every position: `BatchNorm+Spatial`), with optional cross-worker
/// synchronization.
///
/// Training mode normalizes with the batch's mean and biased variance; with a
/// reducer of world size > 1 the batch is the *global* one: each worker sends
/// (count, mean, M2) per channel, every worker merges them in rank order with
/// Chan's parallel-variance formula, so statistics are identical everywhere.
/// Backward sums (Σdy, Σdy·x̂) over workers (docs/MATH.md, "Synchronized BatchNorm").
public final class BatchNorm: Layer {
    /// Channels: one mean, variance, γ and β each.
    public let features: Int
    /// Positions of a channel in one sample (H·W after a convolution; 1 for BatchNorm1d).
    public let spatial: Int
    public let eps: Float
    public let momentum: Float
    /// `false` keeps statistics local to each worker even when a reducer is present.
    public var synchronized: Bool

    public let runningMean: FloatBuffer
    public let runningVar: FloatBuffer
    /// Count of training batches seen (PyTorch's `num_batches_tracked`).
    public var batchesTracked: Int = 0

    var gamma: UnsafeMutablePointer<Float>!
    var beta: UnsafeMutablePointer<Float>!
    var gammaGrad: UnsafeMutablePointer<Float>!
    var betaGrad: UnsafeMutablePointer<Float>!

    // Saved by the training forward for backward.
    var xhat = FloatBuffer(count: 0)
    let invStd: FloatBuffer
    var globalCount: Int = 0
    let scratch: FloatBuffer      // 3C floats: count, mean, M2 (or 2C: Σdy, Σdy·x̂)
    var gathered = FloatBuffer(count: 0)

    public init(features: Int, spatial: Int = 1, eps: Float = 1e-5, momentum: Float = 0.1, synchronized: Bool = true) {
        precondition(features > 0 && spatial > 0, "BatchNorm needs a positive feature count")
        self.features = features
        self.spatial = spatial
        self.eps = eps
        self.momentum = momentum
        self.synchronized = synchronized
        runningMean = FloatBuffer(count: features)
        runningVar = FloatBuffer(repeating: 1, count: features)
        invStd = FloatBuffer(count: features)
        scratch = FloatBuffer(count: 1 + 2 * features)
    }

    public var inputFeatures: Int { features * spatial }
    public var outputFeatures: Int { features * spatial }
    public var parameterCount: Int { 2 * features }

    public func bind(parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>) {
        gamma = parameters
        beta = parameters + features
        gammaGrad = gradients
        betaGrad = gradients + features
    }

    public func initializeParameters(random: inout CounterRandom) {
        gamma.update(repeating: 1, count: features)
        beta.update(repeating: 0, count: features)
    }

    public var parameterSlots: [TensorSlot] {
        [TensorSlot(suffix: "weight", shape: [features], pointer: gamma),
         TensorSlot(suffix: "bias", shape: [features], pointer: beta)]
    }

    public var bufferSlots: [TensorSlot] {
        [TensorSlot(suffix: "running_mean", shape: [features], pointer: runningMean.pointer),
         TensorSlot(suffix: "running_var", shape: [features], pointer: runningVar.pointer)]
    }

    func activeReducer(_ context: StepContext) -> BatchStatisticsReducer? {
        guard synchronized, let r = context.reducer, r.worldSize > 1 else { return nil }
        return r
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        if spatial > 1 { try spatialForward(x, batch: batch, output: y, context: context); return }
        let c = features
        if context.mode == .evaluation {
            normalizeWithRunningStatistics(x, batch: batch, output: y)
            return
        }
        // Local mean and M2 per channel, accumulated in Double; channel blocks run on the pool.
        let mean = doubles(0), m2 = doubles(1)
        forChannelBlocks(context.pool) { lo, hi in
            // Rows in order, each row read once front to back (a column walk strides by a
            // whole row per load); per channel the same Double sums as the scalar form.
            let vectorEnd = lo + (hi - lo) / 8 * 8
            for j in lo..<hi { mean[j] = 0; m2[j] = 0 }
            for r in 0..<batch {
                let xr = x + r * c
                var j = lo
                while j < vectorEnd { Self.store(Self.load(mean + j) + Self.widen(xr + j), mean + j); j += 8 }
                while j < hi { mean[j] += Double(xr[j]); j += 1 }
            }
            if batch > 0 {
                var j = lo
                while j < vectorEnd { Self.store(Self.load(mean + j) / Double(batch), mean + j); j += 8 }
                while j < hi { mean[j] /= Double(batch); j += 1 }
            }
            for r in 0..<batch {
                let xr = x + r * c
                var j = lo
                while j < vectorEnd {
                    let d = Self.widen(xr + j) - Self.load(mean + j)
                    Self.store(Self.load(m2 + j) + d * d, m2 + j)
                    j += 8
                }
                while j < hi { let d = Double(xr[j]) - mean[j]; m2[j] += d * d; j += 1 }
            }
        }

        let n = try mergeStatistics(mean: mean, m2: m2, count: batch, context: context)
        globalCount = Int(n)
        precondition(globalCount > 0, "BatchNorm: empty global batch")
        if globalCount == 1 {
            // One sample has no batch variance (PyTorch refuses it). Normalize with the running
            // statistics instead, so --batch-size 1 (SGD) still trains, and track both with the
            // sample as an online estimate: d = x - rm; rm += m·d; rv = (1-m)·rv + m·d².
            normalizeWithRunningStatistics(x, batch: batch, output: y)
            for j in 0..<c {
                let d = Float(mean[j]) - runningMean[j]
                runningMean[j] += momentum * d
                runningVar[j] = (1 - momentum) * runningVar[j] + momentum * d * d
            }
            batchesTracked += 1
            return
        }
        usedRunningStatistics = false

        if xhat.count < batch * c { xhat = FloatBuffer(count: batch * c) }
        updateStatistics(mean: mean, m2: m2, count: n)
        let meanF = meanFloat.pointer
        let inv = invStd.pointer, g = gamma!, b = beta!, h = xhat.pointer
        forRowBlocks(batch, context.pool) { r0, r1 in
            for r in r0..<r1 {
                let xr = x + r * c, yr = y + r * c, hr = h + r * c
                // SIMD16 lanes, then the rest; the same operations as the scalar form
                // (v = (x - mean)·inv; y = v·γ + β, no fused multiply-add).
                var j = 0
                while j + 16 <= c {
                    let v = (Self.load(xr + j) - Self.load(meanF + j)) * Self.load(inv + j)
                    Self.store(v, hr + j)
                    Self.store(v * Self.load(g + j) + Self.load(b + j), yr + j)
                    j += 16
                }
                while j < c {
                    let v = (xr[j] - meanF[j]) * inv[j]
                    hr[j] = v
                    yr[j] = v * g[j] + b[j]
                    j += 1
                }
            }
        }
    }

    /// Merges this worker's per-channel (mean, M2) over `count` values with every other
    /// worker's (one gather, merged in rank order: Chan et al.), in place; returns the global count.
    func mergeStatistics(mean: UnsafeMutablePointer<Double>, m2: UnsafeMutablePointer<Double>, count: Int,
                         context: StepContext) throws -> Double {
        let c = features
        var n = Double(count)
        if let reducer = activeReducer(context) {
            // One gather of (count, mean, M2) from every worker, merged in rank order (Chan et al.).
            let block = 1 + 2 * c
            scratch[0] = Float(count)
            for j in 0..<c { scratch[1 + j] = Float(mean[j]); scratch[1 + c + j] = Float(m2[j]) }
            if gathered.count != block * reducer.worldSize { gathered = FloatBuffer(count: block * reducer.worldSize) }
            try reducer.gather(scratch.pointer, count: block, into: gathered.pointer)
            n = 0
            for j in 0..<c { mean[j] = 0; m2[j] = 0 }
            for w in 0..<reducer.worldSize {
                let b = gathered.pointer + w * block
                let nb = Double(b[0])
                if nb == 0 { continue }
                let total = n + nb
                for j in 0..<c {
                    let mb = Double(b[1 + j])
                    let delta = mb - mean[j]
                    mean[j] += delta * nb / total
                    m2[j] += Double(b[1 + c + j]) + delta * delta * n * nb / total
                }
                n = total
            }
        }
        return n
    }

    /// Σdy and Σdy·x̂ per channel over the global batch: this worker's (already in β's and
    /// γ's gradients), or their sum over every worker when synchronized.
    func globalGradientSums(_ sdy: UnsafeMutablePointer<Double>, _ sdyx: UnsafeMutablePointer<Double>,
                            context: StepContext) throws -> (UnsafePointer<Float>, UnsafePointer<Float>) {
        guard let reducer = activeReducer(context) else { return (UnsafePointer(betaGrad!), UnsafePointer(gammaGrad!)) }
        let c = features
        for j in 0..<c { scratch[j] = Float(sdy[j]); scratch[c + j] = Float(sdyx[j]) }
        try reducer.sum(scratch.pointer, count: 2 * c)
        return (UnsafePointer(scratch.pointer), UnsafePointer(scratch.pointer + c))
    }

    /// Inverse standard deviations, float means and running statistics from the global (mean, M2) over `n` values.
    func updateStatistics(mean: UnsafeMutablePointer<Double>, m2: UnsafeMutablePointer<Double>, count n: Double) {
        let unbiasedScale = n > 1 ? n / (n - 1) : 1
        let meanF = meanFloat.pointer
        for j in 0..<features {
            let variance = m2[j] / n
            invStd[j] = Float(1 / (variance + Double(eps)).squareRoot())
            meanF[j] = Float(mean[j])
            runningMean[j] = (1 - momentum) * runningMean[j] + momentum * meanF[j]
            runningVar[j] = (1 - momentum) * runningVar[j] + momentum * Float(variance * unbiasedScale)
        }
        batchesTracked += 1
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self)
    }

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Float>) -> SIMD16<Float> { load(UnsafePointer(p)) }

    /// Eight floats at `p` as doubles.
    @inline(__always) static func widen(_ p: UnsafePointer<Float>) -> SIMD8<Double> {
        SIMD8<Double>(UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self))
    }

    @inline(__always) static func widen(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Double> { widen(UnsafePointer(p)) }

    @inline(__always) static func load(_ p: UnsafeMutablePointer<Double>) -> SIMD8<Double> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Double>.self)
    }

    @inline(__always) static func store(_ v: SIMD8<Double>, _ p: UnsafeMutablePointer<Double>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Double>.self)
    }

    @inline(__always) static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
    }

    /// Whether the last forward normalized with the running statistics (evaluation, or a global batch of one).
    var usedRunningStatistics = false

    /// `y = γ (x - running_mean) / sqrt(running_var + eps) + β`, keeping x̂ for backward.
    private func normalizeWithRunningStatistics(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>) {
        let c = features
        if xhat.count < batch * c { xhat = FloatBuffer(count: batch * c) }
        for j in 0..<c { invStd[j] = 1 / (runningVar[j] + eps).squareRoot() }
        let inv = invStd.pointer, rm = runningMean.pointer, g = gamma!, b = beta!, h = xhat.pointer
        for r in 0..<batch {
            let xr = x + r * c, yr = y + r * c, hr = h + r * c
            for j in 0..<c {
                let v = (xr[j] - rm[j]) * inv[j]
                hr[j] = v
                yr[j] = v * g[j] + b[j]
            }
        }
        usedRunningStatistics = true
    }

    // MARK: Scratch and parallel loops

    private var doubleScratch = UnsafeMutablePointer<Double>.allocate(capacity: 1)
    private var doubleCapacity = 0
    lazy var meanFloat = FloatBuffer(count: features)

    /// Four per-channel Double vectors: 0 mean, 1 M2, 2 Σdy, 3 Σdy·x̂.
    func doubles(_ i: Int) -> UnsafeMutablePointer<Double> {
        if doubleCapacity < 4 * features {
            doubleScratch.deallocate()
            doubleScratch = .allocate(capacity: 4 * features)
            doubleCapacity = 4 * features
        }
        return doubleScratch + i * features
    }

    deinit { doubleScratch.deallocate() }

    /// Splits the channels into one block per pool thread (multiples of 16).
    func forChannelBlocks(_ pool: ThreadPool, _ body: (Int, Int) -> Void) {
        let t = pool.threadCount
        guard t > 1, features >= 64 else { body(0, features); return }
        let chunk = ((features + t - 1) / t + 15) & ~15
        pool.parallelFor(t) { i in
            let lo = i * chunk
            if lo < features { body(lo, min(features, lo + chunk)) }
        }
    }

    /// Splits rows into one block per pool thread.
    private func forRowBlocks(_ rows: Int, _ pool: ThreadPool, _ body: (Int, Int) -> Void) {
        let t = pool.threadCount
        guard t > 1, rows * features >= 1 << 14 else { body(0, rows); return }
        pool.parallelFor(t) { i in body(rows * i / t, rows * (i + 1) / t) }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        if spatial > 1 { try spatialBackward(dy, batch: batch, dx: dx, context: context); return }
        let c = features
        if usedRunningStatistics {
            // Affine map with fixed statistics: dx = dy·γ/sqrt(rv+eps).
            let h = xhat.pointer
            for j in 0..<c { betaGrad[j] = 0; gammaGrad[j] = 0 }
            for r in 0..<batch {
                let dr = dy + r * c, hr = h + r * c
                for j in 0..<c {
                    betaGrad[j] += dr[j]
                    gammaGrad[j] += dr[j] * hr[j]
                    dx?[r * c + j] = dr[j] * gamma[j] * invStd[j]
                }
            }
            return
        }
        let sdy = doubles(2), sdyx = doubles(3), h = xhat.pointer
        forChannelBlocks(context.pool) { lo, hi in
            // Rows in order, each read once front to back (as in forward): the scalar form's sums.
            let vectorEnd = lo + (hi - lo) / 8 * 8
            for j in lo..<hi { sdy[j] = 0; sdyx[j] = 0 }
            for r in 0..<batch {
                let dr = dy + r * c, hr = h + r * c
                var j = lo
                while j < vectorEnd {
                    let d = Self.widen(dr + j)
                    Self.store(Self.load(sdy + j) + d, sdy + j)
                    Self.store(Self.load(sdyx + j) + d * Self.widen(hr + j), sdyx + j)
                    j += 8
                }
                while j < hi {
                    sdy[j] += Double(dr[j])
                    sdyx[j] += Double(dr[j]) * Double(hr[j])
                    j += 1
                }
            }
        }
        // Parameter gradients are local; the gradient all-reduce sums them.
        for j in 0..<c { betaGrad[j] = Float(sdy[j]); gammaGrad[j] = Float(sdyx[j]) }
        guard let dx else { return }

        let (gsdy, gsdyx) = try globalGradientSums(sdy, sdyx, context: context)
        let invN = 1 / Float(globalCount)
        let inv = invStd.pointer, g = gamma!
        forRowBlocks(batch, context.pool) { r0, r1 in
            for r in r0..<r1 {
                let dr = dy + r * c, hr = h + r * c, xr = dx + r * c
                // dx = γ·inv·(dy − Σdy/N − x̂·Σdy·x̂/N), evaluated left to right as the scalar form.
                var j = 0
                while j + 16 <= c {
                    let scale = Self.load(g + j) * Self.load(inv + j)
                    let centered = Self.load(dr + j) - Self.load(gsdy + j) * invN - Self.load(hr + j) * Self.load(gsdyx + j) * invN
                    Self.store(scale * centered, xr + j)
                    j += 16
                }
                while j < c {
                    xr[j] = g[j] * inv[j] * (dr[j] - gsdy[j] * invN - hr[j] * gsdyx[j] * invN)
                    j += 1
                }
            }
        }
    }

    public var summary: String { "BatchNorm\(spatial > 1 ? "2d" : "1d")(\(features)\(synchronized ? "" : ", local"))" }
}
