import LockstepCollectives
import LockstepNN

/// Adapts a `Communicator` to the reductions synchronized BatchNorm needs.
final class CommunicatorReducer: BatchStatisticsReducer {
    let communicator: Communicator
    private var staging: [Float] = []

    init(_ communicator: Communicator) { self.communicator = communicator }

    var worldSize: Int { communicator.worldSize }
    var rank: Int { communicator.rank }

    func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws {
        try communicator.allReduceSum(values, count: count)
    }

    func gather(_ local: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>) throws {
        let total = count * worldSize
        // All-gather places rank r's shard at shardRange(r); with total divisible by the
        // world size every shard is exactly one rank's block.
        let mine = communicator.shardRange(count: total, rank: rank)
        precondition(mine == (rank * count)..<((rank + 1) * count), "all-gather shards are not equal blocks")
        (output + mine.lowerBound).update(from: local, count: count)
        try communicator.allGather(output, count: total)
    }
}
