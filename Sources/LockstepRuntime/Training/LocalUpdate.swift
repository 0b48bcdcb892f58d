import LockstepKernels
import LockstepNN
import LockstepOptim

/// One process, one model: the gradients are already the batch's; apply the optimizer
/// over every parameter on the pool.
final class LocalUpdate: GradientSync {
    let model: Sequential
    let optimizer: Optimizer
    let pool: ThreadPool
    private var learningRate: Float = 0

    init(model: Sequential, optimizer: Optimizer, pool: ThreadPool) {
        self.model = model
        self.optimizer = optimizer
        self.pool = pool
    }

    func beginStep(learningRate: Float) { self.learningRate = learningRate }

    func finishStep() throws {
        optimizer.apply(parameters: model.parameters.pointer, gradients: model.gradients.pointer, learningRate: learningRate, pool: pool)
    }
}
