import LockstepData
import LockstepKernels
import LockstepNN

/// Steps and evaluation of a single process with one model replica per thread
/// (`ThreadReplicas`): each thread gathers, forwards and back-propagates its part
/// of the batch; BatchNorm meets over shared memory; then the optimizer sums the
/// gradients into model 0's and updates the shared parameters, on the pool.
extension Trainer {
    func replicaStep(_ replicas: ThreadReplicas, permutation: [Int32], epoch: Int, stepInEpoch: Int) throws -> StepResult {
        let global = sharding.globalRange(step: stepInEpoch)
        let n = global.count, features = train.features, classes = train.classes
        replicas.syncBuffers()
        tracer?.currentStep = globalStep
        let step = globalStep, seed = config.seed, images = batchImages.pointer, results = replicas.results
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
                                let logits = try model.forward(images + rows.lowerBound * features, batch: rows.count, context: context)
                                results[r] = SoftmaxCrossEntropy.evaluate(
                                    logits: logits, labels: labels.baseAddress! + rows.lowerBound, batch: rows.count,
                                    classes: classes, globalCount: n, dLogits: model.outputGradient)
                                try model.backward(batch: rows.count, context: context)
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
        let lr = lrPolicy.learningRate(base: config.optimizer.learningRate, step: globalStep)
        span("optimizer") {
            // Sums the replicas' gradients into model 0's as it goes (replica order).
            optimizer.apply(parameters: model.parameters.pointer, summing: model.gradients.pointer,
                            with: replicas.otherGradients, learningRate: lr, pool: replicas.pool)
        }
        // Local BatchNorm statistics differ between replicas; model 0's are the ones kept.
        if !config.syncBatchNorm { replicas.buffersStale = true }
        globalStep += 1
        observer?.stepCompleted(StepReport(
            epoch: epoch + 1, stepInEpoch: stepInEpoch + 1, stepsPerEpoch: sharding.stepsPerEpoch, globalStep: globalStep,
            loss: n > 0 ? lossSum / Double(n) : 0, samples: n, learningRate: lr))
        return StepResult(lossSum: lossSum, correct: correct, count: n, globalCount: n)
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
