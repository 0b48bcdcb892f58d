extension Communicator {
    /// All-gather: rank k contributes `data[shardRange(count:rank: k)]`; afterwards
    /// all of `data` is identical on every rank (shards are copied, never summed).
    /// Up to `smallGatherThreshold` bytes (synchronized BatchNorm's statistics) the
    /// Bruck algorithm, ⌈log2 N⌉ hops; above it the ring, N-1 hops of 1/N each.
    /// The choice depends only on `count`, so every rank makes the same one.
    public func allGather(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        if count * MemoryLayout<Float>.stride <= smallGatherThreshold {
            try bruckAllGather(data, count: count)
        } else {
            try ringAllGather(data, count: count)
        }
    }

    /// Bruck all-gather: in round k (d = 2^k) every rank sends the shards it holds,
    /// its own and the next ones up to min(d, N-d) of them, packed in one message,
    /// to rank r-d, and receives the same number from rank r+d; after ⌈log2 N⌉
    /// rounds it holds all N. Any N, no power of two needed.
    public func bruckAllGather(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        guard worldSize > 1, count > 0 else { return }
        var rounds = 0
        while 1 << rounds < worldSize { rounds += 1 }
        let tag = nextTags(rounds)
        let shards = (0..<worldSize).map { shardRange(count: count, rank: $0) }
        // Packed shards rank, rank+1, … (mod N) in the order they are held: at most count floats.
        let packed = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { packed.deallocate() }
        var held = 1
        var filled = shards[rank].count
        packed.update(from: data + shards[rank].lowerBound, count: filled)
        for round in 0..<rounds {
            let distance = 1 << round
            let moving = min(distance, worldSize - held)
            let sendCount = (0..<moving).reduce(0) { $0 + shards[ring($1)].count }
            let receiveCount = (0..<moving).reduce(0) { $0 + shards[ring(held + $1)].count }
            // Receiving appends after what is sent, so the bytes sent stay untouched.
            try sendFloats(packed, 0..<sendCount, to: ring(-distance), tag: tag &+ UInt32(round))
            // Synchronization point: wait for rank r+d's shards.
            try receiveFloats(into: packed, filled..<(filled + receiveCount), from: ring(distance), tag: tag &+ UInt32(round))
            filled += receiveCount
            held += moving
        }
        // `packed` is freed on return: no send may still be reading it in place.
        try transport.flushSends()
        // Unpack: packed holds shards rank, rank+1, …, rank+N-1 (mod N).
        var offset = 0
        for i in 0..<worldSize {
            let shard = shards[ring(i)]
            if i > 0 { (data + shard.lowerBound).update(from: packed + offset, count: shard.count) }
            offset += shard.count
        }
    }
}
