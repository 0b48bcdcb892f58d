/// Point-to-point byte transport between the ranks of one job.
///
/// Implementations: `ZMQPeerTransport` (LockstepTransport, real sockets) and
/// `InProcessTransport` (threads in one process: world size 1 and fast tests).
///
/// Contract the collectives rely on:
/// - `send` is *buffered*: it returns once the bytes are copied or queued and
///   never waits for the matching `receive`. A transport may queue large
///   payloads without copying them: the sender then leaves sent bytes
///   unmodified until `flushSends()` returns (collectives flush before they
///   write into a range they sent, and before they return). This is what lets a ring send
///   chunk i+1 while the peer is still reducing chunk i, and what makes the
///   "everybody sends, then everybody receives" pattern deadlock-free.
/// - Messages from one sender with one tag arrive in the order they were sent.
///   Messages with different tags or senders never block each other.
/// - Every wait is bounded by a deadline and ends in
///   `TransportError.peerTimeout` naming the peer.
/// - One transport object is driven by one thread at a time.
public protocol PeerTransport: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }

    /// Queues `bytes` for `peer` under `tag`.
    func send(to peer: Int, tag: UInt32, _ bytes: UnsafeRawBufferPointer) throws

    /// Receives the next message from `peer` under `tag` into `buffer`; the
    /// message must have exactly `buffer.count` bytes.
    func receive(from peer: Int, tag: UInt32, into buffer: UnsafeMutableRawBufferPointer) throws

    /// Receives the next message from `peer` under `tag` (exactly `byteCount`
    /// bytes) and lends it to `body`, without a copy where the transport can.
    /// The bytes are valid only during the call.
    func receive(
        from peer: Int, tag: UInt32, byteCount: Int,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws

    /// Host name or address of `rank`, for error messages; nil when unknown.
    func host(ofRank rank: Int) -> String?

    /// Waits (bounded) until every byte handed to `send` has been copied out
    /// of the caller's memory. Transports that always copy return at once.
    func flushSends() throws
}

extension PeerTransport {
    public func host(ofRank rank: Int) -> String? { nil }

    public func flushSends() throws {}

    public func receive(
        from peer: Int, tag: UInt32, byteCount: Int,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        defer { scratch.deallocate() }
        let view = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<byteCount])
        try receive(from: peer, tag: tag, into: view)
        try body(UnsafeRawBufferPointer(view))
    }
}
