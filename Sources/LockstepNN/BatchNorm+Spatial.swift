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
            // Eight Double lanes a plane, then the rest; lanes summed in a fixed order.
            let vectorEnd = hw / 8 * 8
            var lanes = SIMD8<Double>(), tail = 0.0
            for b in 0..<batch {
                let row = x + (b * c + j) * hw
                var p = 0
                while p < vectorEnd { lanes += Self.widen(row + p); p += 8 }
                while p < hw { tail += Double(row[p]); p += 1 }
            }
            let m = batch > 0 ? (lanes.sum() + tail) / Double(batch * hw) : 0
            var squareLanes = SIMD8<Double>(), squareTail = 0.0
            let mv = SIMD8<Double>(repeating: m)
            for b in 0..<batch {
                let row = x + (b * c + j) * hw
                var p = 0
                while p < vectorEnd { let d = Self.widen(row + p) - mv; squareLanes += d * d; p += 8 }
                while p < hw { let d = Double(row[p]) - m; squareTail += d * d; p += 1 }
            }
            mean[j] = m
            m2[j] = squareLanes.sum() + squareTail
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
            let vectorEnd = hw / 8 * 8
            var a = SIMD8<Double>(), b = SIMD8<Double>(), aTail = 0.0, bTail = 0.0
            for s in 0..<batch {
                let base = (s * c + j) * hw
                var p = 0
                while p < vectorEnd {
                    let d = Self.widen(dy + base + p)
                    a += d
                    b += d * Self.widen(UnsafePointer(h + base + p))
                    p += 8
                }
                while p < hw {
                    aTail += Double(dy[base + p])
                    bTail += Double(dy[base + p]) * Double(h[base + p])
                    p += 1
                }
            }
            sdy[j] = a.sum() + aTail
            sdyx[j] = b.sum() + bTail
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
        let (gsdy, gsdyx) = try globalGradientSums(sdy, sdyx, context: context)
        let invN = 1 / Float(globalCount)
        SampleBlocks.run(batch * c, context.pool) { plane in
            let j = plane % c, base = plane * hw
            let scale = g[j] * inv[j], mdy = gsdy[j] * invN, mdyx = gsdyx[j] * invN
            for p in 0..<hw { dx[base + p] = scale * (dy[base + p] - mdy - h[base + p] * mdyx) }
        }
    }

    /// Runs `body(channel)` for every channel, the channels split between the pool's threads.
    private func channels(_ pool: ThreadPool, _ body: (Int) -> Void) {
        SampleBlocks.run(features, pool, body)
    }
}
