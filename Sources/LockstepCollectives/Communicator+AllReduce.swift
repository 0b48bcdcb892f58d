extension Communicator {
    /// Sums `data` over all ranks in place; every rank ends with bitwise
    /// identical values. Counts up to `smallMessageThreshold` bytes use the
    /// direct exchange, larger ones ring reduce-scatter + ring all-gather. The
    /// choice depends only on `count`, so every rank makes the same one.
    public func allReduceSum(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        guard worldSize > 1, count > 0 else { return }
        if count * MemoryLayout<Float>.stride <= smallMessageThreshold {
            try smallAllReduceSum(data, count: count)
        } else {
            try reduceScatterSum(data, count: count)
            try allGather(data, count: count)
        }
    }

    /// Latency-optimal all-reduce for small buffers: every rank sends its whole
    /// buffer to every other rank (one hop), then sums all contributions in
    /// rank order 0, 1, ..., N-1. Every rank evaluates the same expression on
    /// the same inputs, so the results agree bitwise. Traffic is (N-1)·size
    /// per rank, hence only for small buffers.
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
