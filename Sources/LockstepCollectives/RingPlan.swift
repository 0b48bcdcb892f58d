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
