import LockstepKernels

/// BatchNorm2d: the statistics of channel j run over every sample and every one of
/// its `spatial` positions (`x[b, j, p]` at `b·C·HW + j·HW + p`), accumulated in
/// Double in a fixed order; the cross-worker merge and the running statistics are
/// BatchNorm1d's (`mergeStatistics`, `updateStatistics`).
extension BatchNorm {
    func spatialForward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let c = features, hw = spatial
        if xhat.count < batch * c * hw { xhat = FloatBuffer(count: batch * c * hw) }
        if context.mode == .evaluation {
            for j in 0..<c { invStd[j] = 1 / (runningVar[j] + eps).squareRoot() }
            spatialNormalize(x, batch: batch, output: y, mean: UnsafePointer(runningMean.pointer), pool: context.pool)
            usedRunningStatistics = true
            return
        }
        let mean = doubles(0), m2 = doubles(1)
        channels(context.pool) { j in
            var sum = 0.0
            for b in 0..<batch {
                let row = x + (b * c + j) * hw
                for p in 0..<hw { sum += Double(row[p]) }
            }
            let m = batch > 0 ? sum / Double(batch * hw) : 0
            var squares = 0.0
            for b in 0..<batch {
                let row = x + (b * c + j) * hw
                for p in 0..<hw { let d = Double(row[p]) - m; squares += d * d }
            }
            mean[j] = m
            m2[j] = squares
        }
        let n = try mergeStatistics(mean: mean, m2: m2, count: batch * hw, context: context)
        globalCount = Int(n)
        precondition(globalCount > 1, "BatchNorm2d: fewer than two values a channel")
        usedRunningStatistics = false
        updateStatistics(mean: mean, m2: m2, count: n)
        spatialNormalize(x, batch: batch, output: y, mean: UnsafePointer(meanFloat.pointer), pool: context.pool)
    }

    /// `x̂ = (x - mean)·invStd`, `y = x̂·γ + β`, one (sample, channel) plane at a time.
    private func spatialNormalize(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>,
                                  mean: UnsafePointer<Float>, pool: ThreadPool) {
        let c = features, hw = spatial, inv = invStd.pointer, g = gamma!, b = beta!, h = xhat.pointer
        SampleBlocks.run(batch * c, pool) { plane in
            let j = plane % c, base = plane * hw
            let m = mean[j], s = inv[j], gj = g[j], bj = b[j]
            for p in 0..<hw {
                let v = (x[base + p] - m) * s
                h[base + p] = v
                y[base + p] = v * gj + bj
            }
        }
    }

    func spatialBackward(_ dy: UnsafePointer<Float>, batch: Int, dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        let c = features, hw = spatial, h = xhat.pointer
        let sdy = doubles(2), sdyx = doubles(3)
        channels(context.pool) { j in
            var a = 0.0, b = 0.0
            for s in 0..<batch {
                let base = (s * c + j) * hw
                for p in 0..<hw {
                    a += Double(dy[base + p])
                    b += Double(dy[base + p]) * Double(h[base + p])
                }
            }
            sdy[j] = a
            sdyx[j] = b
        }
        for j in 0..<c { betaGrad[j] = Float(sdy[j]); gammaGrad[j] = Float(sdyx[j]) }
        guard let dx else { return }
        let inv = invStd.pointer, g = gamma!
        if usedRunningStatistics {
            SampleBlocks.run(batch * c, context.pool) { plane in
                let j = plane % c, base = plane * hw, scale = g[j] * inv[j]
                for p in 0..<hw { dx[base + p] = dy[base + p] * scale }
            }
            return
        }
        var gsdy = UnsafePointer(betaGrad!), gsdyx = UnsafePointer(gammaGrad!)
        if let reducer = activeReducer(context) {
            for j in 0..<c { scratch[j] = Float(sdy[j]); scratch[c + j] = Float(sdyx[j]) }
            try reducer.sum(scratch.pointer, count: 2 * c)
            gsdy = UnsafePointer(scratch.pointer)
            gsdyx = UnsafePointer(scratch.pointer + c)
        }
        let invN = 1 / Float(globalCount)
        let (sums, products) = (gsdy, gsdyx)
        SampleBlocks.run(batch * c, context.pool) { plane in
            let j = plane % c, base = plane * hw
            let scale = g[j] * inv[j], mdy = sums[j] * invN, mdyx = products[j] * invN
            for p in 0..<hw { dx[base + p] = scale * (dy[base + p] - mdy - h[base + p] * mdyx) }
        }
    }

    /// Runs `body(channel)` for every channel, the channels split between the pool's threads.
    private func channels(_ pool: ThreadPool, _ body: (Int) -> Void) {
        SampleBlocks.run(features, pool, body)
    }
}
