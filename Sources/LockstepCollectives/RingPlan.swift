/// Chunk ranges of a ring collective, computed once before any transfer.
///
/// The buffer is cut into `worldSize` shards (`Communicator.shardRange`), and
/// every shard into the same number of balanced chunks, each at most
/// `chunkElements` long. Every rank derives the identical plan from
/// (count, worldSize, chunkBytes), so empty chunks can be skipped on both
/// sides without telling the peer.
struct RingPlan {
    let worldSize: Int
    let chunksPerShard: Int
    /// chunks[shard][j]: element range of chunk j of `shard`.
    let chunks: [[Range<Int>]]

    init(count: Int, worldSize: Int, chunkBytes: Int) {
        let chunkElements = max(1, chunkBytes / MemoryLayout<Float>.stride)
        let longestShard = (count + worldSize - 1) / worldSize
        let perShard = max(1, (longestShard + chunkElements - 1) / chunkElements)
        self.worldSize = worldSize
        self.chunksPerShard = perShard
        self.chunks = (0..<worldSize).map { shard in
            let range = Communicator.shardRange(count: count, rank: shard, worldSize: worldSize)
            return (0..<perShard).map { j in
                let piece = Communicator.shardRange(count: range.count, rank: j, worldSize: perShard)
                return (range.lowerBound + piece.lowerBound)..<(range.lowerBound + piece.upperBound)
            }
        }
    }
}

/// Step 0 of a ring collective: this rank's own chunks, sent in order but at
/// most `window` chunks ahead of the chunks received so far in step 0.
///
/// Sends are buffered, so sending everything at once would be correct; but
/// then a 64 MiB all-reduce queues its whole shard as messages before the
/// first receive, and sender, libzmq and receiver all work on buffers that
/// have left the cache. A short window keeps chunks flowing while they are
/// warm. No deadlock: the first `window` chunks go out before any wait; chunk
/// j + window goes out after receiving step-0 chunk j, which the predecessor
/// sent under the same rule; and everything left goes out when step 0 ends.
struct OwnChunkSender {
    let chunks: [Range<Int>]
    let window: Int
    private var next = 0

    init(chunks: [Range<Int>], window: Int) {
        self.chunks = chunks
        self.window = max(1, window)
    }

    /// Sends own chunks with index < received + window.
    mutating func send(upTo received: Int, _ comm: Communicator, _ data: UnsafeMutablePointer<Float>, tag: UInt32) throws {
        let limit = min(chunks.count, received + window)
        while next < limit {
            if !chunks[next].isEmpty { try comm.sendFloats(data, chunks[next], to: comm.nextRank, tag: tag) }
            next += 1
        }
    }

    mutating func sendAll(_ comm: Communicator, _ data: UnsafeMutablePointer<Float>, tag: UInt32) throws {
        try send(upTo: chunks.count, comm, data, tag: tag)
    }
}
