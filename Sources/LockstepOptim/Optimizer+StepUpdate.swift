import LockstepKernels

extension Optimizer {
    /// One step's update, with its per-step scalars computed once (`Optimizer.beginStep`).
    ///
    /// The rules are element-wise, so any split of the slice into ranges, updated in any
    /// order from any threads (ranges disjoint), gives the same bits as one `apply`.
    /// Pointers are to element 0 of the optimizer's slice.
    public struct StepUpdate {
        let kind: OptimizerKind
        let s: Scalars
        let momentum: Float
        let centered: Bool
        let storage: UnsafeMutablePointer<Float>
        let count: Int
        let first: Bool
        let learningRate: Float
        let learningRateDouble: Double
        let clr: Float
        let stepSize: Double
        let biasCorrection2Sqrt: Float

        /// Updates `parameters[range]` from `gradients[range]`.
        public func update(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, range: Range<Int>) {
            precondition(range.lowerBound >= 0 && range.upperBound <= count, "StepUpdate: range \(range) outside 0..<\(count)")
            guard !range.isEmpty else { return }
            let lo = range.lowerBound, len = range.count, n = count
            let p = parameters + lo, g = gradients + lo
            func buffer(_ i: Int) -> UnsafeMutablePointer<Float> { storage + i * n + lo }
            switch kind {
            case .sgd, .momentum, .nesterov:
                if momentum == 0 {
                    Rules.sgd(p, g, len, lr: learningRate, weightDecay: s.weightDecay)
                } else {
                    Rules.sgdMomentum(p, g, buffer(0), len, lr: learningRate, s: s, first: first, nesterov: kind == .nesterov)
                }
            case .adagrad:
                Rules.adagrad(p, g, buffer(0), len, clr: clr, s: s)
            case .adadelta:
                Rules.adadelta(p, g, buffer(0), buffer(1), len, lr: learningRate, s: s)
            case .rmsprop:
                let hasMomentum = momentum > 0
                Rules.rmsprop(p, g, buffer(0), momentum: hasMomentum ? buffer(1) : nil,
                              gradAvg: centered ? buffer(hasMomentum ? 2 : 1) : nil, len, lr: learningRate, s: s)
            case .adam, .adamw:
                let decoupled = kind == .adamw
                Rules.adam(p, g, buffer(0), buffer(1), len,
                           negStepSize: Float(-stepSize), biasCorrection2Sqrt: biasCorrection2Sqrt,
                           decay: decoupled ? Float(1 - learningRateDouble * s.weightDecayDouble) : 1,
                           weightDecay: decoupled ? 0 : s.weightDecay, s: s)
            }
        }

        /// Updates `range` on the sum of several gradient arenas: `gradients[i] += others[0][i] + …`
        /// in that order, a piece (16 KiB) at a time just before the piece is updated, so the
        /// sum is still in L1 when the rule reads it.
        public func update(parameters: UnsafeMutablePointer<Float>, summing gradients: UnsafeMutablePointer<Float>,
                           with others: [UnsafePointer<Float>], range: Range<Int>) {
            if others.isEmpty { update(parameters: parameters, gradients: gradients, range: range); return }
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(start + Optimizer.summingPiece, range.upperBound)
                let g = gradients + start
                for other in others {
                    let o = other + start
                    for i in 0..<(end - start) { g[i] += o[i] }
                }
                update(parameters: parameters, gradients: gradients, range: start..<end)
                start = end
            }
        }
    }
}
