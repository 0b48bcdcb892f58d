import LockstepKernels

/// A training step and an evaluation on every replica at once (`run`): each thread
/// gathers, forwards and back-propagates its part of the batch; BatchNorm meets over
/// shared memory; the shared Linear layers (`ThreadReplicas+SharedLinear`) are
/// computed by all threads together for the whole batch.
extension ThreadReplicas {
    /// Forward and backward of a batch of `n` rows, replica r on its rows
    /// `rows(n, replica: r)`. `gather(rows)` (called on the replica's thread) writes
    /// those rows of the batch into `images` and `labels`. Afterwards replica r's
    /// gradient arena holds its part's gradients (model 0's: the shared layers' weight
    /// gradients of the whole batch), and `weightRowsFinished(range)` has been called
    /// (on some thread) for every range of model 0's parameters whose gradient was
    /// final early: the caller updates those at once. Returns the summed loss and the
    /// correct predictions over the batch.
    public func forwardBackward(
        batch n: Int, images: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>, classes: Int,
        step: Int, seed: UInt64, gather: (Range<Int>) -> Void, weightRowsFinished: (Range<Int>) -> Void
    ) throws -> (lossSum: Double, correct: Int) {
        syncBuffers()
        let features = models[0].inputFeatures, results = self.results
        let shared = sharesLayers(rows: n)
        if shared { prepareSharedInputs(rows: n) }
        try run { r in
            let rows = self.rows(n, replica: r)
            gather(rows)
            let model = models[r]
            let context = StepContext(mode: .training, step: step, rank: r, seed: seed, reducer: reducers[r])
            let x = images + rows.lowerBound * features
            // Runs the replica's own layers between the shared ones.
            var next = 0
            if shared {
                for (l, (i, linear)) in sharedLayers.enumerated() {
                    if i > next { _ = try model.forward(x, batch: rows.count, context: context, from: next, to: i) }
                    try sharedForward(layer: i, l, linear, thread: r, batch: n, rows: rows, images: images)
                    next = i + 1
                }
            }
            let last = model.layers.count - 1
            let logits = next <= last
                ? try model.forward(x, batch: rows.count, context: context, from: next)
                : model.output(of: last, batch: rows.count)
            results[r] = SoftmaxCrossEntropy.evaluate(
                logits: logits, labels: labels + rows.lowerBound, batch: rows.count,
                classes: classes, globalCount: n, dLogits: model.outputGradient)
            var top = last
            if shared {
                for (l, (i, linear)) in sharedLayers.enumerated().reversed() {
                    try model.backward(batch: rows.count, context: context, from: top, through: i + 1)
                    try sharedBackward(layer: i, l, linear, thread: r, batch: n, rows: rows, images: images,
                                       weightRowsFinished: weightRowsFinished)
                    top = i - 1
                }
            }
            try model.backward(batch: rows.count, context: context, from: top, through: 0)
        }
        var lossSum = 0.0, correct = 0
        for r in 0..<count { lossSum += results[r].lossSum; correct += results[r].correct }
        return (lossSum, correct)
    }

    /// Ranges of model 0's parameters that `forwardBackward` did not finish early:
    /// everything but the shared layers' weights when the batch of `n` rows shared them.
    public func remainingParameterRanges(batch n: Int) -> [Range<Int>] {
        let model = models[0]
        var rest: [Range<Int>] = []
        var start = 0
        if sharesLayers(rows: n) {
            for (i, linear) in sharedLayers {
                let w = model.parameterRanges[i].lowerBound
                rest.append(start..<w)
                start = w + linear.weightCount
            }
        }
        rest.append(start..<model.parameterCount)
        return rest.filter { !$0.isEmpty }
    }

    /// Correct predictions on `total` samples with the running statistics; replica r
    /// evaluates the r-th part, `evalBatch` rows at a time.
    public func evaluate(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, total: Int, classes: Int,
                         evalBatch: Int, step: Int, seed: UInt64) throws -> Int {
        syncBuffers()
        let features = models[0].inputFeatures, results = self.results
        try run { r in
            let part = rows(total, replica: r)
            let context = StepContext(mode: .evaluation, step: step, rank: r, seed: seed)
            var correct = 0, start = part.lowerBound
            while start < part.upperBound {
                let rows = min(evalBatch, part.upperBound - start)
                let logits = try models[r].forward(images + start * features, batch: rows, context: context)
                correct += SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels + start, batch: rows,
                                                        classes: classes, globalCount: rows, dLogits: nil).correct
                start += rows
            }
            results[r] = (0, correct)
        }
        return (0..<count).reduce(0) { $0 + results[$1].correct }
    }
}
