/// The collectives the training runtime uses, over any `PeerTransport`.
///
/// Every rank must call the same collectives in the same order with the same
/// counts (as with MPI/NCCL). Results are bitwise identical on every rank:
/// each element is summed in one fixed order by exactly one rank (ring), or by
/// partners that evaluate the same two-operand sums (recursive doubling), then copied.
///
/// Not thread-safe: one thread drives one communicator.
public final class Communicator {
    public let transport: PeerTransport
    /// Largest piece a ring transfer is cut into; smaller pieces pipeline
    /// better, larger ones pay less per-message overhead.
    public let chunkBytes: Int
    /// Wire format of the collective now running (see `allReduceSum(_:count:wire:)`).
    var activeWire = WireFormat.fp32
    /// Encoded send buffers of the collective now running, freed when it ends.
    var wireBuffers: [UnsafeMutableRawPointer] = []

    /// All-reduces of at most this many bytes use recursive doubling
    /// (`recursiveDoublingAllReduceSum`): ⌈log2 N⌉ hops instead of 2(N-1), but
    /// ⌈log2 N⌉·size bytes sent per rank instead of 2(N-1)/N·size. Default:
    /// `defaultSmallMessageThreshold(worldSize:)`.
    public var smallMessageThreshold: Int
    /// All-gathers of at most this many bytes use Bruck (`bruckAllGather`):
    /// ⌈log2 N⌉ hops instead of N-1. Default: `defaultSmallGatherThreshold(worldSize:)`.
    public var smallGatherThreshold: Int
    /// How many of its own chunks a ring collective's first step sends ahead
    /// of what it has received (see `OwnChunkSender`).
    /// Two, as gloo's ring keeps two transfers in flight: enough to overlap
    /// the wire with the reduction, while chunks are still warm in the cache.
    public var sendWindowChunks: Int = 2
    /// When set, `allReduceSum` runs hierarchically: within the host, then across
    /// hosts (`hierarchicalAllReduceSum`). Every rank of the job sets it, or none.
    public var hierarchy: CommunicatorHierarchy?

    /// Payload bytes this communicator handed to the transport.
    public internal(set) var bytesSent: Int = 0
    /// Payload bytes this communicator received.
    public internal(set) var bytesReceived: Int = 0

    public var rank: Int { transport.rank }
    public var worldSize: Int { transport.worldSize }

    /// Tag of the last collective; every rank advances it identically, so
    /// messages of consecutive collectives never mix.
    private var operationCounter: UInt32 = 0

    public init(transport: PeerTransport, chunkBytes: Int = 1 << 20) {
        precondition(chunkBytes >= 4, "chunkBytes must hold at least one Float")
        self.transport = transport
        self.chunkBytes = chunkBytes
        self.smallMessageThreshold = Communicator.defaultSmallMessageThreshold(worldSize: transport.worldSize)
        self.smallGatherThreshold = Communicator.defaultSmallGatherThreshold(worldSize: transport.worldSize)
    }

    /// 512 KiB, measured, not guessed: `lockstep bench allreduce --algorithm all
    /// --ops allreduce --sizes 128K,256K,512K,1M,2M` (and `4,4K,16K,64K,128K,256K`),
    /// separate processes over loopback TCP, shared 2-vCPU Xeon, two runs each
    /// (time per call in µs, recursive doubling vs ring):
    /// - N=2: 256K 253/255 vs 291/334, 512K 393/380 vs 497/454, 1M 590/614 vs 609/549
    ///   → recursive doubling up to 512 KiB.
    /// - N=4: 256K 809/766 vs 950/1244, 512K 1164/1234 vs 1542/1537, 1M 2200/2149 vs 2021/2170
    ///   → recursive doubling up to 512 KiB; it also beat the direct exchange from 16 KiB up
    ///   (16K 286 vs 349, 128K 524/552 vs 638/676, 512K 1164/1234 vs 1887/1777).
    /// In the α-β model the crossover grows with N (recursive doubling pays
    /// ⌈log2 N⌉ latencies, the ring 2(N-1)), so 512 KiB is conservative for larger N.
    public static func defaultSmallMessageThreshold(worldSize: Int) -> Int {
        512 << 10
    }

    /// 256 KiB for N > 2, none for N = 2, measured: `lockstep bench allreduce --ops
    /// allgather --sizes 4K,64K,256K,512K,1M,2M` with `--small-threshold 0` (ring) and
    /// `1000000000` (Bruck), two runs each (µs, Bruck vs ring):
    /// - N=4: 4K 203/206 vs 316/275, 64K 247/273 vs 423/379, 256K 554/432 vs 522/459,
    ///   512K 721/667 vs 623/606 → Bruck up to 256 KiB.
    /// - N=2: both are one exchange, and Bruck packs and unpacks (1M 414/450 vs 290/362,
    ///   2M 934/904 vs 518/451; below that noise) → the ring.
    public static func defaultSmallGatherThreshold(worldSize: Int) -> Int {
        worldSize > 2 ? 256 << 10 : 0
    }

    /// Contiguous, balanced, deterministic partition of `0..<count`: the first
    /// `count % worldSize` ranks get one extra element.
    public func shardRange(count: Int, rank: Int) -> Range<Int> {
        Communicator.shardRange(count: count, rank: rank, worldSize: worldSize)
    }

    public static func shardRange(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        precondition(count >= 0 && rank >= 0 && rank < worldSize)
        let base = count / worldSize, extra = count % worldSize
        let start = rank * base + min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    // MARK: - Plumbing shared by the collective files

    func nextTag() -> UInt32 {
        operationCounter &+= 1
        return operationCounter
    }

    /// `count` consecutive tags for one collective; returns the first. Ring
    /// collectives give each step its own tag, so a rank may interleave its
    /// step-0 sends with step-1 forwards to the same successor.
    func nextTags(_ count: Int) -> UInt32 {
        let first = operationCounter &+ 1
        operationCounter &+= UInt32(max(count, 1))
        return first
    }

    var nextRank: Int { (rank + 1) % worldSize }
    var previousRank: Int { (rank + worldSize - 1) % worldSize }

    /// `(rank + delta) mod worldSize` for any integer delta.
    func ring(_ delta: Int) -> Int { ((rank + delta) % worldSize + worldSize) % worldSize }

    func sendFloats(_ base: UnsafePointer<Float>, _ range: Range<Int>, to peer: Int, tag: UInt32) throws {
        if activeWire != .fp32 {
            // Encoded into a buffer that lives until the collective has flushed its sends.
            let n = range.count
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(n * 2, 1), alignment: 64)
            wireBuffers.append(buffer)
            activeWire.encode(base + range.lowerBound, count: n, into: buffer)
            try transport.send(to: peer, tag: tag, UnsafeRawBufferPointer(start: buffer, count: n * 2))
            bytesSent += n * 2
            return
        }
        let bytes = UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count * 4)
        try transport.send(to: peer, tag: tag, bytes)
        bytesSent += bytes.count
    }

    func receiveFloats(into base: UnsafeMutablePointer<Float>, _ range: Range<Int>, from peer: Int, tag: UInt32) throws {
        if activeWire != .fp32 {
            let n = range.count, wire = activeWire
            try transport.receive(from: peer, tag: tag, byteCount: n * 2) { bytes in
                wire.decode(bytes.baseAddress!, count: n, into: base + range.lowerBound)
            }
            bytesReceived += n * 2
            return
        }
        let bytes = UnsafeMutableRawBufferPointer(start: base + range.lowerBound, count: range.count * 4)
        try transport.receive(from: peer, tag: tag, into: bytes)
        bytesReceived += bytes.count
    }

    func receiveAdding(into base: UnsafeMutablePointer<Float>, _ range: Range<Int>, from peer: Int, tag: UInt32) throws {
        let n = range.count, wire = activeWire
        try transport.receive(from: peer, tag: tag, byteCount: n * wire.bytesPerElement) { bytes in
            wire.decodeAdding(bytes.baseAddress!, count: n, into: base + range.lowerBound)
        }
        bytesReceived += n * wire.bytesPerElement
    }

    /// Runs one collective with gradients carried as `wire` (fp32 accumulation).
    func withWire<T>(_ wire: WireFormat, _ body: () throws -> T) rethrows -> T {
        activeWire = wire
        defer {
            activeWire = .fp32
            for b in wireBuffers { b.deallocate() }
            wireBuffers.removeAll()
        }
        return try body()
    }
}
