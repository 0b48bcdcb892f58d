import LockstepCollectives
import LockstepKernels
import LockstepNN
import LockstepOptim

/// Replicated data parallelism: each gradient bucket's ring all-reduce starts on the
/// communication thread as soon as backward has finished its layers (overlap, as
/// PyTorch DDP's buckets); after backward, wait for the last one and let every rank
/// apply the optimizer to every parameter.
final class RingAllReduceSync: GradientSync {
    let model: Sequential
    let optimizer: Optimizer
    let pool: ThreadPool
    let queue: CollectiveQueue
    let buckets: [GradientBucket]
    let wire: WireFormat
    private var learningRate: Float = 0
    private var next = 0

    init(model: Sequential, optimizer: Optimizer, pool: ThreadPool, queue: CollectiveQueue, bucketBytes: Int, wire: WireFormat) {
        self.model = model
        self.optimizer = optimizer
        self.pool = pool
        self.queue = queue
        self.wire = wire
        buckets = GradientBucket.plan(layerRanges: model.parameterRanges, bucketBytes: bucketBytes)
    }

    func beginStep(learningRate: Float) {
        self.learningRate = learningRate
        next = 0
    }

    func layerFinished(_ layer: Int) {
        let grads = model.gradients.pointer, wire = self.wire
        while next < buckets.count, buckets[next].firstLayer == layer {
            let range = buckets[next].range
            queue.submit("all-reduce bucket \(next) (\(range.count * 4 / 1024) KiB)") { comm in
                try comm.allReduceSum(grads + range.lowerBound, count: range.count, wire: wire)
            }
            next += 1
        }
    }

    func finishStep() throws {
        try queue.waitAll()
        optimizer.apply(parameters: model.parameters.pointer, gradients: model.gradients.pointer, learningRate: learningRate, pool: pool)
    }
}
