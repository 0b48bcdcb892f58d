extension Communicator {
    /// Sums `data` over all ranks in place; every rank ends with bitwise
    /// identical values. Counts up to `smallMessageThreshold` bytes use recursive
    /// doubling (⌈log2 N⌉ hops), larger ones ring reduce-scatter + ring all-gather
    /// (2(N-1) hops, least traffic). The choice depends only on `count`, so every
    /// rank makes the same one.
    public func allReduceSum(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        try allReduceSum(data, count: count, wire: .fp32)
    }

    /// All-reduce with the payload carried as `wire` (fp16/bf16 halve the bytes);
    /// sums are always formed in fp32. Every contribution a rank keeps for itself is
    /// first rounded to the wire format, so all ranks still end bitwise identical.
    public func allReduceSum(_ data: UnsafeMutablePointer<Float>, count: Int, wire: WireFormat) throws {
        guard worldSize > 1, count > 0 else { return }
        if let hierarchy { return try hierarchicalAllReduceSum(data, count: count, wire: wire, hierarchy) }
        try withWire(wire) {
            if count * MemoryLayout<Float>.stride <= smallMessageThreshold {
                try recursiveDoublingAllReduceSum(data, count: count)
            } else {
                try reduceScatterSum(data, count: count)
                let mine = shardRange(count: count, rank: rank)
                wire.quantize(data + mine.lowerBound, count: mine.count)
                try ringAllGather(data, count: count)
            }
        }
    }

    /// Direct exchange: every rank sends its whole buffer to every other rank
    /// (one hop), then sums all contributions in rank order 0, 1, ..., N-1.
    /// Every rank evaluates the same expression on the same inputs, so the
    /// results agree bitwise. Traffic is (N-1)·size per rank. Recursive doubling
    /// measured as fast at N = 2 and faster at N = 4 from 16 KiB up (see
    /// `defaultSmallMessageThreshold`), so `allReduceSum` does not use this; it is
    /// kept for `lockstep bench allreduce --algorithm small`.
    public func smallAllReduceSum(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        guard worldSize > 1, count > 0 else { return }
        let tag = nextTag()
        let all = 0..<count
        // Buffered sends to everybody first: no ordering between peers needed.
        for offset in 1..<worldSize {
            try sendFloats(data, all, to: ring(offset), tag: tag)
        }
        // Slot p holds rank p's contribution.
        let slots = UnsafeMutablePointer<Float>.allocate(capacity: count * worldSize)
        defer { slots.deallocate() }
        (slots + rank * count).update(from: data, count: count)
        for offset in 1..<worldSize {
            let peer = ring(-offset)
            // Synchronization point: wait for peer's contribution.
            try receiveFloats(into: slots + peer * count, all, from: peer, tag: tag)
        }
        // Synchronization point: `data` was sent in place; flush before overwriting it.
        try transport.flushSends()
        data.update(from: slots, count: count)
        for peer in 1..<worldSize {
            addInPlace(data, slots + peer * count, count: count)
        }
    }
}

extension Communicator {
    /// Reduce-scatter of gradients carried as `wire` (fp32 accumulation).
    public func reduceScatterSum(_ data: UnsafeMutablePointer<Float>, count: Int, wire: WireFormat) throws {
        guard worldSize > 1, count > 0 else { return }
        try withWire(wire) { try reduceScatterSum(data, count: count) }
    }
}
