extension Communicator {
    /// Copies `root`'s `data` to every rank. Runs as a pipelined chain
    /// root → root+1 → … → root-1: each rank forwards a chunk as soon as it has
    /// it, so large buffers cost about one transfer time, not N-1.
    public func broadcast(_ data: UnsafeMutableRawBufferPointer, root: Int) throws {
        precondition(root >= 0 && root < worldSize, "broadcast root \(root) outside 0..<\(worldSize)")
        guard worldSize > 1, data.count > 0 else { return }
        // Plan: byte chunks of at most chunkBytes.
        let chunkCount = (data.count + chunkBytes - 1) / chunkBytes
        let chunks = (0..<chunkCount).map { j in
            (j * chunkBytes)..<min(data.count, (j + 1) * chunkBytes)
        }
        let tag = nextTag()
        let isLastInChain = nextRank == root
        for chunk in chunks {
            let piece = UnsafeMutableRawBufferPointer(rebasing: data[chunk])
            if rank != root {
                // Synchronization point: wait for the predecessor in the chain.
                try transport.receive(from: previousRank, tag: tag, into: piece)
                bytesReceived += piece.count
            }
            if !isLastInChain {
                try transport.send(to: nextRank, tag: tag, UnsafeRawBufferPointer(piece))
                bytesSent += piece.count
            }
        }
        // Synchronization point: the caller may modify `data` once we return.
        try transport.flushSends()
    }

    /// Returns once every rank has entered the barrier. Dissemination
    /// barrier: in round d = 1, 2, 4, … each rank signals rank+d and waits for
    /// rank-d; after ceil(log2 N) rounds everybody has heard from everybody.
    public func barrier() throws {
        guard worldSize > 1 else { return }
        let tag = nextTag()
        var distance = 1
        var token: UInt8 = 0
        while distance < worldSize {
            try withUnsafeBytes(of: &token) { try transport.send(to: ring(distance), tag: tag, $0) }
            // Synchronization point: wait for rank-d's signal of this round.
            try withUnsafeMutableBytes(of: &token) { try transport.receive(from: ring(-distance), tag: tag, into: $0) }
            distance *= 2
        }
    }
}
