import LockstepCollectives
import LockstepNN

/// Adapts the communication queue to the reductions synchronized BatchNorm needs:
/// small collectives that backward waits for, run in order with the gradient buckets.
final class CommunicatorReducer: BatchStatisticsReducer {
    let queue: CollectiveQueue
    var communicator: Communicator { queue.communicator }

    init(_ queue: CollectiveQueue) { self.queue = queue }

    var worldSize: Int { communicator.worldSize }
    var rank: Int { communicator.rank }

    func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        try queue.run("BatchNorm backward sums") { try $0.allReduceSum(values, count: count) }
    }

    func gather(_ local: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>) throws {
        let total = count * worldSize
        // All-gather places rank r's shard at shardRange(r); with total divisible by the
        // world size every shard is exactly one rank's block.
        let mine = communicator.shardRange(count: total, rank: rank)
        precondition(mine == (rank * count)..<((rank + 1) * count), "all-gather shards are not equal blocks")
        (output + mine.lowerBound).update(from: local, count: count)
        try queue.run("BatchNorm statistics") { try $0.allGather(output, count: total) }
    }
}
