import LockstepKernels

/// Why a replica thread stopped: another replica failed, or a barrier timed out.
public struct ReplicaGroupError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Synchronized BatchNorm between the replicas of one process, over shared memory.
///
/// Each replica writes its block into the rendezvous' exchange buffer, waits at
/// the barrier, and then reads every block in rank order, so all replicas compute
/// bitwise-identical results, and the same ones N worker processes would for N = 2.
public final class ReplicaReducer: BatchStatisticsReducer {
    public let rank: Int
    private let rendezvous: ReplicaRendezvous
    /// Collectives this replica has taken part in; equal on every replica between calls.
    private var calls = 0

    init(rendezvous: ReplicaRendezvous, rank: Int) {
        self.rendezvous = rendezvous
        self.rank = rank
    }

    public var worldSize: Int { rendezvous.replicas }

    /// Writes `count` floats as this replica's block and waits for the others'.
    private func exchange(_ local: UnsafePointer<Float>, count: Int) throws -> UnsafeMutablePointer<Float> {
        precondition(count * worldSize <= rendezvous.capacity,
                     "ReplicaReducer: \(count) floats × \(worldSize) replicas exceed the rendezvous capacity \(rendezvous.capacity)")
        let shared = rendezvous.buffer(call: calls)
        calls += 1
        (shared + rank * count).update(from: local, count: count)
        guard rendezvous.barrier.wait() else {
            throw ReplicaGroupError(description: "replica \(rank): another replica thread failed or the barrier timed out")
        }
        return shared
    }

    public func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        let shared = try exchange(values, count: count)
        values.update(from: shared, count: count)
        for r in 1..<worldSize {
            let block = shared + r * count
            for i in 0..<count { values[i] += block[i] }
        }
    }

    public func gather(_ local: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>) throws {
        let shared = try exchange(local, count: count)
        output.update(from: shared, count: count * worldSize)
    }
}
