import LockstepData
import LockstepKernels
import LockstepNN
import LockstepOptim

/// Steps and evaluation of a single process with one model replica per thread
/// (`ThreadReplicas`): each thread gathers, forwards and back-propagates its part
/// of the batch; BatchNorm meets over shared memory; then the optimizer sums the
/// gradients into model 0's and updates the shared parameters, on the pool (the
/// large Linear layers' weights, computed jointly, are updated by their threads as
/// soon as backward has passed them).
extension Trainer {
    func replicaStep(_ replicas: ThreadReplicas, permutation: [Int32], epoch: Int, stepInEpoch: Int) throws -> StepResult {
        let global = sharding.globalRange(step: stepInEpoch)
        let n = global.count, features = train.features, classes = train.classes
        replicas.syncBuffers()
        tracer?.currentStep = globalStep
        let step = globalStep, seed = config.seed, images = batchImages.pointer, results = replicas.results
        let shared = replicas.sharesLayers(rows: n)
        let lr = lrPolicy.learningRate(base: config.optimizer.learningRate, step: globalStep)
        let update = optimizer.beginStep(learningRate: lr)
        if shared { replicas.prepareSharedInputs(rows: n) }
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
                                // Runs the replica's own layers between the shared ones.
                                var next = 0
                                if shared {
                                    for (l, (i, linear)) in replicas.sharedLayers.enumerated() {
                                        if i > next { _ = try model.forward(x, batch: rows.count, context: context, from: next, to: i) }
                                        try sharedForward(replicas, layer: i, l, linear, thread: r, batch: n, rows: rows)
                                        next = i + 1
                                    }
                                }
                                let last = model.layers.count - 1
                                let logits = next <= last
                                    ? try model.forward(x, batch: rows.count, context: context, from: next)
                                    : model.output(of: last, batch: rows.count)
                                results[r] = SoftmaxCrossEntropy.evaluate(
                                    logits: logits, labels: labels.baseAddress! + rows.lowerBound, batch: rows.count,
                                    classes: classes, globalCount: n, dLogits: model.outputGradient)
                                var top = last
                                if shared {
                                    for (l, (i, linear)) in replicas.sharedLayers.enumerated().reversed() {
                                        try model.backward(batch: rows.count, context: context, from: top, through: i + 1)
                                        try sharedBackward(replicas, layer: i, l, linear, thread: r, batch: n, rows: rows, update: update)
                                        top = i - 1
                                    }
                                }
                                try model.backward(batch: rows.count, context: context, from: top, through: 0)
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
            // The rest of the step: the shared layers' weights are already updated
            // (sharedBackward); the other gradients are summed over the replicas (replica
            // order) as the update goes.
            let params = model.parameters.pointer, grads = model.gradients.pointer, others = replicas.otherGradients
            var rest: [Range<Int>] = []
            var start = 0
            if shared {
                for (i, linear) in replicas.sharedLayers {
                    let w = model.parameterRanges[i].lowerBound
                    rest.append(start..<w)
                    start = w + linear.weightCount
                }
            }
            rest.append(start..<model.parameterCount)
            rest = rest.filter { !$0.isEmpty }
            let total = rest.reduce(0) { $0 + $1.count }
            if total < 1 << 14 {
                for range in rest { update.update(parameters: params, summing: grads, with: others, range: range) }
            } else {
                let threads = replicas.pool.threadCount
                replicas.pool.parallelFor(threads) { t in
                    // Thread t takes its share of every range.
                    for range in rest {
                        let lo = range.lowerBound + (range.count * t / threads) & ~15
                        let hi = t == threads - 1 ? range.upperBound : range.lowerBound + (range.count * (t + 1) / threads) & ~15
                        if hi > lo { update.update(parameters: params, summing: grads, with: others, range: lo..<hi) }
                    }
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

    /// Inside `replicaStep`: shared Linear layer `i` (the `l`-th shared one)'s forward for
    /// the whole batch, `yᵀ = W xᵀ`. After every replica's input is ready, the threads pack
    /// xᵀ once between them (each a share of its micro-panels), then take chunks of
    /// `ThreadReplicas.sharedChunkRows` output features as they come free, so a thread
    /// slowed down (a shared host) does less. Where a replica's rows do not start on a
    /// micro-panel (some last batches), thread `r` computes its own share of the features
    /// instead, packing xᵀ itself. After a last barrier each replica copies out its own
    /// rows, adding the bias. Per element these are the operations of the replica's own
    /// `Linear.forward`.
    private func sharedForward(_ replicas: ThreadReplicas, layer i: Int, _ l: Int, _ linear: Linear, thread r: Int, batch n: Int,
                               rows: Range<Int>) throws {
        let (inF, out) = (linear.inputFeatures, linear.outputFeatures)
        let t = replicas.sharedTransposed.pointer
        let packed = replicas.packedInputs[l]!
        func part(_ s: Int) -> Range<Int> { replicas.rows(n, replica: s) }
        func input(_ s: Int) -> UnsafePointer<Float> {
            UnsafePointer(i == 0 ? batchImages.pointer + part(s).lowerBound * inF : replicas.models[s].lastOutput(of: i - 1))
        }
        try replicas.barrier(replica: r)  // every replica's input of layer i is ready
        if i == 0 || (0..<replicas.count).allSatisfy({ part($0).lowerBound % packed.panelWidth == 0 }) {
            let panels = packed.panelCount
            for p in (panels * r / replicas.count)..<(panels * (r + 1) / replicas.count) {
                let j0 = p * packed.panelWidth
                let s = i == 0 ? 0 : (0..<replicas.count).last { part($0).lowerBound <= j0 }!
                packed.pack(transB: true, b: input(s) + (j0 - part(s).lowerBound) * inF, ldb: inF, panels: p..<(p + 1))
            }
            try replicas.barrier(replica: r)  // xᵀ packed
            let chunk = ThreadReplicas.sharedChunkRows
            while true {
                let lo = replicas.nextChunk[l].take() * chunk
                guard lo < out else { break }
                packed.multiply(transA: false, rows: lo..<min(out, lo + chunk), a: linear.weight, lda: inF,
                                alpha: 1, beta: 0, c: t, ldc: n)
            }
        } else {
            let features = replicas.sharedFeatures(out, thread: r)
            for s in 0..<replicas.count {
                Gemm.sgemm(transA: false, transB: true, m: features.count, n: part(s).count, k: inF, alpha: 1,
                           a: linear.weight + features.lowerBound * inF, lda: inF, b: input(s), ldb: inF,
                           beta: 0, c: t + features.lowerBound * n + part(s).lowerBound, ldc: n)
            }
        }
        try replicas.barrier(replica: r)
        Transpose.addingRowBias(t + rows.lowerBound, rows: out, cols: rows.count, ldt: n, bias: linear.bias,
                                   into: replicas.models[r].output(of: i, batch: rows.count))
    }

    /// Inside `replicaStep`, after every replica's backward down to layer `i + 1`: each
    /// replica writes its own bias gradient (summed later with the others) and its input
    /// gradient (with the weights before this step's update); then the threads take chunks
    /// of `ThreadReplicas.sharedGradientChunkRows` output features as they come free and
    /// compute those weight-gradient rows over the whole batch, replica by replica
    /// (`C = dY_sᵀ X_s + C`, every product in one pass over C: `Gemm.sgemmSum`, each
    /// replica's input packed once, by its own thread, before the barrier), straight into
    /// model 0's gradient arena, and
    /// update those weight rows at once: they are final, no longer read this step and
    /// still in cache. Which thread takes which rows does not change the bits.
    private func sharedBackward(_ replicas: ThreadReplicas, layer i: Int, _ l: Int, _ linear: Linear, thread r: Int, batch n: Int,
                                rows: Range<Int>, update: Optimizer.StepUpdate) throws {
        let (inF, out) = (linear.inputFeatures, linear.outputFeatures)
        let mine = replicas.models[r]
        let base = mine.parameterRanges[i].lowerBound
        let dy = mine.outputGradient(of: i)
        Reductions.columnSums(dy, rows: rows.count, cols: out, into: mine.gradients.pointer + base + linear.weightCount)
        func input(_ s: Int) -> UnsafePointer<Float> {
            i == 0 ? UnsafePointer(batchImages.pointer + replicas.rows(n, replica: s).lowerBound * inF)
                   : UnsafePointer(replicas.models[s].lastOutput(of: i - 1))
        }
        let packedInputs = replicas.packedGradientInputs[l]
        if let packedInputs, !rows.isEmpty {
            packedInputs.pack(part: r, transB: false, b: input(r), ldb: inF, k: rows.count)
        }
        if i > 0 {
            Gemm.sgemm(transA: false, transB: false, m: rows.count, n: inF, k: out, alpha: 1,
                       a: dy, lda: out, b: linear.weight, ldb: inF, beta: 0, c: mine.outputGradient(of: i - 1), ldc: inF)
        }
        try replicas.barrier(replica: r)
        let dW = replicas.models[0].gradients.pointer + base
        let products = (0..<replicas.count).map { s in
            Gemm.Product(a: replicas.models[s].outputGradient(of: i), lda: out, b: input(s), ldb: inF,
                         k: replicas.rows(n, replica: s).count)
        }
        let counter = replicas.nextGradientChunk[l], chunk = ThreadReplicas.sharedGradientChunkRows
        let parameters = replicas.models[0].parameters.pointer, gradients = replicas.models[0].gradients.pointer
        Gemm.sgemmSum(transA: true, transB: false, m: out, n: inF, products: products, alpha: 1, beta: 0, c: dW, ldc: inF,
                      packedB: packedInputs, rows: {
                          let lo = counter.take() * chunk
                          return lo < out ? lo..<min(out, lo + chunk) : nil
                      },
                      finished: { rows in
                          update.update(parameters: parameters, gradients: gradients,
                                        range: (base + rows.lowerBound * inF)..<(base + rows.upperBound * inF))
                      })
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
