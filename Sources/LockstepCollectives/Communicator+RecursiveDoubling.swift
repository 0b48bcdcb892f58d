extension Communicator {
    /// Latency-optimal all-reduce: recursive doubling, ⌈log2 N⌉ exchanges of the
    /// whole buffer, instead of the ring's 2(N-1) steps of 1/N of it.
    ///
    /// With p = the largest power of two ≤ N, rank p+i first folds its buffer into
    /// rank i (i < N-p). Then, for mask = 1, 2, …, p/2, every rank r < p swaps its
    /// partial sum with rank r XOR mask and adds: both partners evaluate the same
    /// two-operand sum (IEEE addition is commutative), so all p ranks hold
    /// bitwise-identical partial sums after every round. Finally rank i sends the
    /// result back to rank p+i. Sum order: pairs of rank groups, lower group first,
    /// e.g. ((x0+x1)+(x2+x3)) for N = 4.
    ///
    /// Traffic per rank is ⌈log2 N⌉·size (plus one fold for the extra ranks), so
    /// this is for small buffers; `allReduceSum` chooses it below `smallMessageThreshold`.
    public func recursiveDoublingAllReduceSum(_ data: UnsafeMutablePointer<Float>, count: Int) throws {
        guard worldSize > 1, count > 0 else { return }
        var p = 1
        while p * 2 <= worldSize { p *= 2 }
        let extra = worldSize - p
        var rounds = 0
        while 1 << rounds < p { rounds += 1 }
        // Tag: fold, then one per round, then the result for the extra ranks.
        let tag = nextTags(rounds + 2)
        let all = 0..<count
        // Every value this rank keeps is first rounded to the wire format, so the
        // partner that receives it holds exactly the same operand.
        activeWire.quantize(data, count: count)
        if rank >= p {
            try sendFloats(data, all, to: rank - p, tag: tag)
            try transport.flushSends()
            // Synchronization point: wait for the result.
            try receiveFloats(into: data, all, from: rank - p, tag: tag &+ UInt32(rounds + 1))
            return
        }
        if rank < extra {
            // Synchronization point: wait for the extra rank's buffer.
            try receiveAdding(into: data, all, from: rank + p, tag: tag)
        }
        var mask = 1
        for round in 0..<rounds {
            let partner = rank ^ mask
            activeWire.quantize(data, count: count)
            try sendFloats(data, all, to: partner, tag: tag &+ UInt32(round + 1))
            // `data` is modified next: the send must have left it.
            try transport.flushSends()
            // Synchronization point: wait for the partner's partial sum.
            try receiveAdding(into: data, all, from: partner, tag: tag &+ UInt32(round + 1))
            mask *= 2
        }
        if extra > 0 {
            // The extra ranks receive the result in the wire format; every rank keeps the same rounding.
            activeWire.quantize(data, count: count)
            if rank < extra {
                try sendFloats(data, all, to: rank + p, tag: tag &+ UInt32(rounds + 1))
                try transport.flushSends()
            }
        }
    }
}
