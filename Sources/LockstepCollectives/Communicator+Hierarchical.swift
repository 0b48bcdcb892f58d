extension Communicator {
    /// Hierarchical all-reduce (`hierarchy` set): reduce-scatter within the host,
    /// so local rank l holds the host's sum of slice l (1/L of the buffer);
    /// all-reduce slice l across hosts among the ranks of local rank l, so all L
    /// slices cross the host links at once and each carries 1/L of the bytes; then
    /// all-gather within the host. Each element is summed in one fixed order (host
    /// sums, then the cross-host all-reduce, itself bitwise identical on its ranks)
    /// and then copied, so every rank ends bitwise identical. The order differs
    /// from the flat ring's, so results match the flat ring only to rounding.
    func hierarchicalAllReduceSum(_ data: UnsafeMutablePointer<Float>, count: Int, wire: WireFormat,
                                  _ hierarchy: CommunicatorHierarchy) throws {
        let (local, cross) = (hierarchy.local, hierarchy.cross)
        let sentBefore = local.bytesSent + cross.bytesSent, receivedBefore = local.bytesReceived + cross.bytesReceived
        defer {
            bytesSent += local.bytesSent + cross.bytesSent - sentBefore
            bytesReceived += local.bytesReceived + cross.bytesReceived - receivedBefore
        }
        let mine = local.shardRange(count: count, rank: local.rank)
        if local.worldSize > 1 {
            try local.withWire(wire) { try local.reduceScatterSum(data, count: count) }
        }
        try cross.allReduceSum(data + mine.lowerBound, count: mine.count, wire: wire)
        if local.worldSize > 1 {
            wire.quantize(data + mine.lowerBound, count: mine.count)
            try local.withWire(wire) { try local.ringAllGather(data, count: count) }
        }
    }
}
