import LockstepKernels

/// Where the model replicas of one process meet: data parallelism over threads,
/// one replica per thread of a `ThreadPool.runOnEachThread` job.
///
/// It holds the barrier the replica threads synchronize on and two exchange
/// buffers used alternately, so one barrier per collective suffices: a buffer is
/// written again only two collectives later, after every replica has passed the
/// barrier of the collective in between and so has finished reading it.
public final class ReplicaRendezvous {
    public let replicas: Int
    /// Floats each collective may exchange in total (all replicas together).
    public let capacity: Int
    public let barrier: SpinBarrier
    private let buffers: [FloatBuffer]

    public init(replicas: Int, capacity: Int, timeoutSeconds: Double = 120) {
        precondition(replicas >= 1, "ReplicaRendezvous needs at least one replica")
        self.replicas = replicas
        self.capacity = capacity
        barrier = SpinBarrier(parties: replicas, timeoutSeconds: timeoutSeconds)
        buffers = [FloatBuffer(count: capacity), FloatBuffer(count: capacity)]
    }

    /// One reducer per replica; replica `rank` must use only its own.
    public func makeReducers() -> [ReplicaReducer] {
        (0..<replicas).map { ReplicaReducer(rendezvous: self, rank: $0) }
    }

    /// Exchange buffer for a replica's `call`-th collective (all replicas count alike).
    func buffer(call: Int) -> UnsafeMutablePointer<Float> { buffers[call & 1].pointer }

    /// Call before each job, while no replica thread runs: clears a broken barrier.
    public func reset() { barrier.reset() }
}
