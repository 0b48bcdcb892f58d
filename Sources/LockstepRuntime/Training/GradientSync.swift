/// How one step's gradients become global and the parameters get updated: the
/// seam between the trainer's loop and the four ways Lockstep synchronizes.
///
/// The trainer calls `beginStep` before backward, `layerFinished` as backward
/// completes each layer (last layer first), and `finishStep` after backward.
/// Implementations: `LocalUpdate` (one process, one model), `RingAllReduceSync`
/// (replicated all-reduce, buckets overlapping backward), `ShardedSync`
/// (ZeRO-1), `LocalBatchNormSync` (wraps one of those: BatchNorm buffers from
/// rank 0), `ReplicaSync` (one model replica per thread of one process).
protocol GradientSync: AnyObject {
    /// This step's learning rate, before backward starts.
    func beginStep(learningRate: Float)
    /// Backward has written every gradient of layer `layer`.
    func layerFinished(_ layer: Int)
    /// After backward: gradients synchronized, optimizer applied; on every rank the
    /// parameters are then bitwise identical.
    func finishStep() throws
}

extension GradientSync {
    func layerFinished(_ layer: Int) {}
}
