import LockstepKernels
import LockstepNN
import LockstepOptim

/// One process, one model replica per thread (`ThreadReplicas`): the shared Linear
/// layers' weight rows are updated as soon as their gradient is final
/// (`weightRowsFinished`, called from the replica threads); after backward every
/// other gradient is summed over the replicas (replica order, model 0's arena first)
/// as the update goes. A batch too small to split ran on model 0 alone
/// (`replicaBatch` nil): then a plain update.
final class ReplicaSync: GradientSync {
    let replicas: ThreadReplicas
    let optimizer: Optimizer
    /// Rows of this step's batch when it was split between the replicas; nil when model 0 ran it alone.
    var replicaBatch: Int?
    private var learningRate: Float = 0
    private var update: Optimizer.StepUpdate?

    init(replicas: ThreadReplicas, optimizer: Optimizer) {
        self.replicas = replicas
        self.optimizer = optimizer
    }

    private var model: Sequential { replicas.models[0] }

    func beginStep(learningRate: Float) {
        self.learningRate = learningRate
        update = replicaBatch == nil ? nil : optimizer.beginStep(learningRate: learningRate)
    }

    /// Updates model 0's parameters `range` (a shared layer's finished weight rows).
    func weightRowsFinished(_ range: Range<Int>) {
        update!.update(parameters: model.parameters.pointer, gradients: model.gradients.pointer, range: range)
    }

    func finishStep() throws {
        let params = model.parameters.pointer, grads = model.gradients.pointer
        guard let n = replicaBatch, let update else {
            optimizer.apply(parameters: params, gradients: grads, learningRate: learningRate, pool: replicas.pool)
            return
        }
        let others = replicas.otherGradients
        let rest = replicas.remainingParameterRanges(batch: n)
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
        self.update = nil
    }
}
