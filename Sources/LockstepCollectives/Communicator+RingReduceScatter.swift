extension Communicator {
    /// Ring reduce-scatter: afterwards `data[shardRange(count:rank:)]` holds
    /// the global sum of that shard; the rest of `data` is unspecified.
    ///
    /// Shard k is summed exactly once, along the ring starting at rank k+1 and
    /// ending at rank k: `(((x[k+1] + x[k+2]) + ...) + x[k])`. The order is
    /// fixed by the ring, so repeated runs agree bitwise.
    ///
    /// Pipelining: a chunk is forwarded as soon as it is reduced, so while this
    /// rank adds chunk j the next chunk is already on the wire from the
    /// predecessor and chunk j-1 is on its way to the successor.
    public func reduceScatterSum(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        guard worldSize > 1, count > 0 else { return }
        // Plan.
        let plan = RingPlan(count: count, worldSize: worldSize, chunkBytes: chunkBytes)
        let steps = worldSize - 1
        // Messages of step s carry tag + s (see `nextTags`).
        let tag = nextTags(steps)

        // Step 0 sends this rank's own contribution to shard r-1, at most
        // `sendWindowChunks` ahead of step 0's receives (see `OwnChunkSender`).
        var own = OwnChunkSender(chunks: plan.chunks[ring(-1)], window: sendWindowChunks)
        try own.send(upTo: 0, self, data, tag: tag)
        // Step s receives shard r-s-2 (partial sum over s+1 ranks), adds this
        // rank's contribution and forwards it as step s+1's send.
        for step in 0..<steps {
            let shard = ring(-step - 2)
            for (j, chunk) in plan.chunks[shard].enumerated() where !chunk.isEmpty {
                // Synchronization point: wait for the predecessor's chunk.
                try receiveAdding(into: data, chunk, from: previousRank, tag: tag &+ UInt32(step))
                if step == 0 { try own.send(upTo: j + 1, self, data, tag: tag) }
                if step < steps - 1 {
                    try sendFloats(data, chunk, to: nextRank, tag: tag &+ UInt32(step + 1))
                }
            }
            if step == 0 { try own.sendAll(self, data, tag: tag) }
        }
        // Synchronization point: sent chunks may still be read in place by the
        // transport; the caller (or the all-gather) may overwrite them next.
        try transport.flushSends()
        // After step N-2 the shard received was r-N = r: fully reduced here.
    }
}
