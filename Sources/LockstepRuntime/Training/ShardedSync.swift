import LockstepCollectives
import LockstepKernels
import LockstepNN
import LockstepOptim

/// ZeRO-1: after backward, reduce-scatter the gradients, update this rank's shard of
/// the parameters (its optimizer holds state for that shard alone), then all-gather
/// the updated parameters.
final class ShardedSync: GradientSync {
    let model: Sequential
    let optimizer: Optimizer
    let pool: ThreadPool
    let queue: CollectiveQueue
    /// The parameters this rank updates.
    let shard: Range<Int>
    let wire: WireFormat
    private var learningRate: Float = 0

    init(model: Sequential, optimizer: Optimizer, pool: ThreadPool, queue: CollectiveQueue, shard: Range<Int>, wire: WireFormat) {
        self.model = model
        self.optimizer = optimizer
        self.pool = pool
        self.queue = queue
        self.shard = shard
        self.wire = wire
    }

    func beginStep(learningRate: Float) { self.learningRate = learningRate }

    func finishStep() throws {
        let params = model.parameters.pointer, grads = model.gradients.pointer, count = model.parameterCount, wire = self.wire
        try queue.run("reduce-scatter") { try $0.reduceScatterSum(grads, count: count, wire: wire) }
        let lo = shard.lowerBound
        optimizer.apply(parameters: params + lo, gradients: grads + lo, learningRate: learningRate, pool: pool)
        try queue.run("all-gather parameters") { try $0.allGather(params, count: count) }
    }
}
