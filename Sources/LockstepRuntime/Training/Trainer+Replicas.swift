import LockstepData
import LockstepKernels
import LockstepNN
import LockstepOptim

/// Steps and evaluation of a single process with one model replica per thread
/// (`ThreadReplicas`): each thread gathers, forwards and back-propagates its part
/// of the batch; BatchNorm meets over shared memory; then the optimizer sums the
/// gradients into model 0's and updates the shared parameters, on the pool (the
/// first Linear's weights, when shared, are updated by their threads at the end of
/// backward).
extension Trainer {
    func replicaStep(_ replicas: ThreadReplicas, permutation: [Int32], epoch: Int, stepInEpoch: Int) throws -> StepResult {
        let global = sharding.globalRange(step: stepInEpoch)
        let n = global.count, features = train.features, classes = train.classes
        replicas.syncBuffers()
        tracer?.currentStep = globalStep
        let step = globalStep, seed = config.seed, images = batchImages.pointer, results = replicas.results
        let shared = replicas.sharesFirstLayer(rows: n)
        let lr = lrPolicy.learningRate(base: config.optimizer.learningRate, step: globalStep)
        let update = optimizer.beginStep(learningRate: lr)
        try span("forward + backward (\(replicas.count) replicas)") {
            try permutation.withUnsafeBufferPointer { order in
                try train.images.withUnsafeBufferPointer { trainImages in
                    try train.labels.withUnsafeBufferPointer { trainLabels in
                        try batchLabels.withUnsafeMutableBufferPointer { labels in
                            try replicas.run { r in
                                let rows = replicas.rows(n, replica: r)
                                for row in rows {
                                    let sample = Int(order[global.lowerBound + row])
                                    (images + row * features).update(from: trainImages.baseAddress! + sample * features, count: features)
                                    labels[row] = trainLabels[sample]
                                }
                                let model = replicas.models[r]
                                let context = StepContext(mode: .training, step: step, rank: r, seed: seed, reducer: replicas.reducers[r])
                                let x = images + rows.lowerBound * features
                                let logits: UnsafeMutablePointer<Float>
                                if shared {
                                    try firstLayerForward(replicas, thread: r, batch: n, rows: rows)
                                    logits = try model.forward(x, batch: rows.count, context: context, from: 1)
                                } else {
                                    logits = try model.forward(x, batch: rows.count, context: context)
                                }
                                results[r] = SoftmaxCrossEntropy.evaluate(
                                    logits: logits, labels: labels.baseAddress! + rows.lowerBound, batch: rows.count,
                                    classes: classes, globalCount: n, dLogits: model.outputGradient)
                                if shared {
                                    try model.backward(batch: rows.count, context: context, through: 1)
                                    try firstLayerBackward(replicas, thread: r, batch: n, rows: rows, update: update)
                                } else {
                                    try model.backward(batch: rows.count, context: context)
                                }
                            }
                        }
                    }
                }
            }
        }
        var lossSum = 0.0, correct = 0
        for r in 0..<replicas.count { lossSum += results[r].lossSum; correct += results[r].correct }
        guard lossSum.isFinite else {
            throw LockstepError("training diverged: the loss is \(lossSum) at step \(globalStep + 1); lower the learning rate (--lr, now \(config.optimizer.learningRate))")
        }
        span("optimizer") {
            // The rest of the step: the shared first layer's weights are already updated
            // (firstLayerBackward); the other gradients are summed over the replicas (replica
            // order) as the update goes.
            let all = 0..<model.parameterCount
            let rest = shared ? (model.parameterRanges[0].lowerBound + replicas.firstLinear!.weightCount)..<all.upperBound : all
            let params = model.parameters.pointer, grads = model.gradients.pointer, others = replicas.otherGradients
            let threads = replicas.pool.threadCount
            let chunk = ((rest.count + threads - 1) / threads + 15) & ~15
            replicas.pool.parallelFor(threads) { i in
                let lo = rest.lowerBound + i * chunk
                if lo < rest.upperBound {
                    update.update(parameters: params, summing: grads, with: others, range: lo..<min(rest.upperBound, lo + chunk))
                }
            }
        }
        // Local BatchNorm statistics differ between replicas; model 0's are the ones kept.
        if !config.syncBatchNorm { replicas.buffersStale = true }
        globalStep += 1
        observer?.stepCompleted(StepReport(
            epoch: epoch + 1, stepInEpoch: stepInEpoch + 1, stepsPerEpoch: sharding.stepsPerEpoch, globalStep: globalStep,
            loss: n > 0 ? lossSum / Double(n) : 0, samples: n, learningRate: lr))
        return StepResult(lossSum: lossSum, correct: correct, count: n, globalCount: n)
    }

    /// Inside `replicaStep`: the first Linear's forward for the whole batch (`x` is the
    /// batch buffer, rows of every replica), thread `r` computing `yᵀ` for its share of the
    /// output features; after a barrier each replica copies out its rows, adding the bias.
    private func firstLayerForward(_ replicas: ThreadReplicas, thread r: Int, batch n: Int, rows: Range<Int>) throws {
        let linear = replicas.firstLinear!
        let (inF, out) = (linear.inputFeatures, linear.outputFeatures)
        let features = replicas.firstLayerFeatures(thread: r)
        let t = replicas.firstLayerTransposed.pointer
        try replicas.barrier(replica: r)  // every replica has gathered its rows of the batch
        Gemm.sgemm(transA: false, transB: true, m: features.count, n: n, k: inF, alpha: 1,
                   a: linear.weight + features.lowerBound * inF, lda: inF, b: batchImages.pointer, ldb: inF,
                   beta: 0, c: t + features.lowerBound * n, ldc: n)
        try replicas.barrier(replica: r)
        Linear.transposeAddingBias(t + rows.lowerBound, rows: out, cols: rows.count, ldt: n, bias: linear.bias,
                                   into: replicas.models[r].output(of: 0, batch: rows.count))
    }

    /// Inside `replicaStep`, after every replica's backward down to layer 1: each replica
    /// writes its own bias gradient (summed later with the others), then thread `r`
    /// computes the weight gradient rows of its output features over the whole batch,
    /// replica by replica (`C = dY_sᵀ X_s + C`), straight into model 0's gradient arena.
    private func firstLayerBackward(_ replicas: ThreadReplicas, thread r: Int, batch n: Int, rows: Range<Int>,
                                    update: Optimizer.StepUpdate) throws {
        let linear = replicas.firstLinear!
        let (inF, out) = (linear.inputFeatures, linear.outputFeatures)
        let mine = replicas.models[r]
        let base = mine.parameterRanges[0].lowerBound
        Reductions.columnSums(mine.outputGradient(of: 0), rows: rows.count, cols: out,
                              into: mine.gradients.pointer + base + linear.weightCount)
        try replicas.barrier(replica: r)
        let features = replicas.firstLayerFeatures(thread: r)
        let dW = replicas.models[0].gradients.pointer + base + features.lowerBound * inF
        for s in 0..<replicas.count {
            let part = replicas.rows(n, replica: s)
            Gemm.sgemm(transA: true, transB: false, m: features.count, n: inF, k: part.count, alpha: 1,
                       a: replicas.models[s].outputGradient(of: 0) + features.lowerBound, lda: out,
                       b: batchImages.pointer + part.lowerBound * inF, ldb: inF, beta: s == 0 ? 0 : 1, c: dW, ldc: inF)
        }
        // These weight rows are final and no longer read this step: update them now, while
        // their gradient is in cache; this thread reads the same rows in the next forward.
        let lo = base + features.lowerBound * inF
        update.update(parameters: replicas.models[0].parameters.pointer, gradients: replicas.models[0].gradients.pointer,
                      range: lo..<(lo + features.count * inF))
    }

    /// Test accuracy with the running statistics; replica r evaluates the r-th part of the test set.
    func replicaEvaluate(_ replicas: ThreadReplicas) throws -> Double {
        replicas.syncBuffers()
        let step = globalStep, seed = config.seed, evalBatch = config.evalBatchSize
        let features = test.features, classes = test.classes, total = test.count
        let results = replicas.results
        try test.images.withUnsafeBufferPointer { images in
            try test.labels.withUnsafeBufferPointer { labels in
                try replicas.run { r in
                    let part = replicas.rows(total, replica: r)
                    let context = StepContext(mode: .evaluation, step: step, rank: r, seed: seed)
                    var correct = 0, start = part.lowerBound
                    while start < part.upperBound {
                        let rows = min(evalBatch, part.upperBound - start)
                        let logits = try replicas.models[r].forward(images.baseAddress! + start * features, batch: rows, context: context)
                        correct += SoftmaxCrossEntropy.evaluate(logits: logits, labels: labels.baseAddress! + start, batch: rows,
                                                                classes: classes, globalCount: rows, dLogits: nil).correct
                        start += rows
                    }
                    results[r] = (0, correct)
                }
            }
        }
        let correct = (0..<replicas.count).reduce(0) { $0 + results[$1].correct }
        return Double(correct) / Double(max(total, 1))
    }
}
