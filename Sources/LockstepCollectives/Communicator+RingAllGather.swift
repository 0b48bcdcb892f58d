extension Communicator {
    /// Ring all-gather: rank k contributes `data[shardRange(count:rank: k)]`;
    /// afterwards all of `data` is identical on every rank (shards are copied,
    /// never re-summed, so they keep the owner's exact bits).
    ///
    /// Pipelining as in `reduceScatterSum`: a received chunk is forwarded
    /// immediately, before the next chunk of the same step is received.
    public func ringAllGather(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        guard worldSize > 1, count > 0 else { return }
        // Plan.
        let plan = RingPlan(count: count, worldSize: worldSize, chunkBytes: chunkBytes)
        let steps = worldSize - 1
        // Messages of step s carry tag + s (see `nextTags`).
        let tag = nextTags(steps)

        // Step 0 sends this rank's own shard, at most `sendWindowChunks`
        // ahead of step 0's receives (see `OwnChunkSender`).
        var own = OwnChunkSender(chunks: plan.chunks[rank], window: sendWindowChunks)
        try own.send(upTo: 0, self, data, tag: tag)
        // Step s receives shard r-s-1 and passes it on, unless the successor
        // is that shard's owner (last step).
        for step in 0..<steps {
            let shard = ring(-step - 1)
            for (j, chunk) in plan.chunks[shard].enumerated() where !chunk.isEmpty {
                // Synchronization point: wait for the predecessor's chunk.
                try receiveFloats(into: data, chunk, from: previousRank, tag: tag &+ UInt32(step))
                if step == 0 { try own.send(upTo: j + 1, self, data, tag: tag) }
                if step < steps - 1 {
                    try sendFloats(data, chunk, to: nextRank, tag: tag &+ UInt32(step + 1))
                }
            }
            if step == 0 { try own.sendAll(self, data, tag: tag) }
        }
        // Synchronization point: the caller may modify `data` once we return.
        try transport.flushSends()
    }
}
