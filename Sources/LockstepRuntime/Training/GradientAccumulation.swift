import LockstepCollectives
import LockstepKernels
import LockstepNN

/// Gradient accumulation (`accumulate_steps` K, DDP's `no_sync`): the gradients of K
/// micro-batches are summed locally, and only the last micro-batch's backward hands its
/// layers to the wrapped synchronization, which all-reduces and steps once.
///
/// Backward overwrites the model's gradients, so micro-batches 1…K-1 add each finished
/// layer into `sum`; in the last one each finished layer first gets `sum` added, then
/// goes to `inner` (whose buckets still overlap that backward). The loss of every
/// micro-batch is a mean over all K micro-batches' samples, so the sum is the gradient
/// of the mean over the whole accumulated batch.
final class GradientAccumulation: GradientSync {
    let inner: GradientSync
    let model: Sequential
    /// The sum of the earlier micro-batches' gradients, parameter-arena layout.
    private let sum: FloatBuffer
    /// Micro-batch index within the step, and how many micro-batches this step has.
    private var micro = 0
    private var count = 1

    init(wrapping inner: GradientSync, model: Sequential) {
        self.inner = inner
        self.model = model
        sum = FloatBuffer(count: model.parameterCount)
    }

    /// Starts micro-batch `index` of `count`; the inner step begins with the first.
    func beginMicroBatch(_ index: Int, of count: Int, learningRate: Float) {
        micro = index
        self.count = count
        if index == 0 { inner.beginStep(learningRate: learningRate) }
    }

    func beginStep(learningRate: Float) { beginMicroBatch(0, of: 1, learningRate: learningRate) }

    func layerFinished(_ layer: Int) {
        let range = model.parameterRanges[layer]
        let grads = model.gradients.pointer + range.lowerBound, acc = sum.pointer + range.lowerBound
        if micro == 0 && count > 1 {
            acc.update(from: grads, count: range.count)
        } else if micro < count - 1 {
            addInPlace(acc, grads, count: range.count)
        } else {
            if count > 1 { addInPlace(grads, acc, count: range.count) }
            inner.layerFinished(layer)
        }
    }

    /// After the last micro-batch's backward: the inner synchronization and the optimizer.
    func finishStep() throws {
        guard micro == count - 1 else { return }
        try inner.finishStep()
    }
}
