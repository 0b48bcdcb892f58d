import LockstepBase
import CZeroMQ
import Glibc
import LockstepCollectives

/// `PeerTransport` over ZeroMQ: the data plane between workers.
///
/// Sockets: each rank binds one PULL socket (its data endpoint) that receives
/// from every peer, and connects one PUSH socket to each peer's endpoint.
/// libzmq's I/O thread moves the bytes, so `send` only frames the payload into
/// a message and queues it (high-water marks are unlimited: a collective's
/// volume is bounded by its buffer); the calling thread is free to reduce the
/// next chunk while earlier ones are on the wire. Payloads of at least
/// `zeroCopyMinimumBytes` are not copied: they go out as a two-part frame
/// (envelope, then the caller's bytes in place), and `flushSends` waits until
/// libzmq has released them.
///
/// Receiving: frames are validated (`WireFrame.validate`, including the job
/// id) and filed into FIFO queues keyed by (sender rank, tag), so frames may
/// arrive in any order across peers and tags. A frame that fails validation
/// is counted in `rejectedFrames`, logged to stderr and dropped: it never
/// reaches the arithmetic, and the transport keeps working.
///
/// Threading: one thread drives one transport (libzmq sockets are not thread-safe).
public final class ZMQPeerTransport: EndpointTransport {
    public let rank: Int
    public let worldSize: Int
    public let jobID: UInt64
    public let context: ZMQContext
    /// The resolved endpoint peers must connect to, e.g. `tcp://127.0.0.1:43817`.
    public let boundEndpoint: String
    /// Deadline of every receive (and of a send that cannot queue).
    public var timeoutSeconds: Double
    /// Frames dropped because they failed validation or were not meant for this transport.
    public private(set) var rejectedFrames = 0
    /// Why the last frame was rejected (for diagnostics and tests).
    public private(set) var lastRejection: String?
    /// Whether rejections are logged to stderr.
    public var logsRejections = true
    /// Payloads at least this large are sent without a copy (see the type's doc).
    /// Below it the copy costs less than a second message part.
    public var zeroCopyMinimumBytes = 64 << 10
    private let zeroCopySends = ZeroCopySends()

    private let inbox: ZMQSocket
    private var outboxes: [ZMQSocket?]
    private var hosts: [String?]
    private var queues: [PeerTagKey: FrameQueue] = [:]
    private let lingerMilliseconds: Int
    private let security: CurveSecurity?
    /// Admits allowlisted keys on the data socket (with `security`).
    private let authenticator: ZAPHandler?

    /// Binds this rank's data endpoint.
    /// - Parameters:
    ///   - bindEndpoint: `tcp://HOST:PORT` (port 0 or `*`: any free port) or `ipc://PATH`.
    ///   - lingerMilliseconds: how long closing may still deliver queued frames;
    ///     must be > 0 so the last frames of a collective survive an early close.
    ///   - maximumPayloadBytes: the largest payload a peer may send in one message;
    ///     a connection that announces more is dropped before it is buffered (nil: no limit).
    ///   - security: CurveZMQ keys; nil sends in clear. With keys, the data socket admits
    ///     only allowlisted keys and `connect` pins every peer's public key.
    public init(rank: Int, worldSize: Int, jobID: UInt64, bindEndpoint: String, context: ZMQContext,
                timeoutSeconds: Double = 30, lingerMilliseconds: Int = 2000, maximumPayloadBytes: Int? = nil,
                security: CurveSecurity? = nil, onRefusal: @escaping @Sendable (String) -> Void = { _ in }) throws {
        precondition(worldSize >= 1 && rank >= 0 && rank < worldSize, "rank \(rank) outside world of size \(worldSize)")
        self.rank = rank
        self.worldSize = worldSize
        self.jobID = jobID
        self.context = context
        self.timeoutSeconds = timeoutSeconds
        self.lingerMilliseconds = lingerMilliseconds
        self.security = security
        authenticator = try security.map { try ZAPHandler(context: context, allowed: $0.allowed, owner: "rank \(rank)", note: onRefusal) }
        inbox = try ZMQSocket(context: context, kind: .pull, lingerMilliseconds: 0)
        try security?.makeServer(inbox)
        try inbox.setHighWaterMarks(send: 0, receive: 0)
        if let m = maximumPayloadBytes { try inbox.setMaximumMessageBytes(m + WireFrame.headerSize + 64) }
        try inbox.bind(bindEndpoint)
        boundEndpoint = try inbox.lastEndpoint
        outboxes = Array(repeating: nil, count: worldSize)
        hosts = Array(repeating: nil, count: worldSize)
        hosts[rank] = Self.host(ofEndpoint: boundEndpoint)
    }

    deinit { close() }

    /// Connects to every peer's data endpoint (`peers[r]` is rank r's
    /// `boundEndpoint`; this rank's own entry is ignored). `hosts`, when given,
    /// names each rank's machine in error messages; otherwise the endpoint's host is used.
    /// `keys[r]` is rank r's public key, required with `security`: the connection
    /// to rank r then talks only to the holder of its secret key.
    public func connect(peers: [String], hosts: [String]? = nil, keys: [String]? = nil) throws {
        precondition(peers.count == worldSize, "peer table has \(peers.count) entries for world size \(worldSize)")
        if security != nil, keys?.count != worldSize {
            throw TransportError.notConnected("the peer table has no public keys, but this rank runs with CURVE security; start every process of the job with --key")
        }
        for peer in 0..<worldSize where peer != rank {
            if peers[peer].hasPrefix("shm://") {
                let place = hosts.map { " on \($0[peer])" } ?? ""
                throw TransportError.notConnected(
                    "rank \(peer)\(place) has data endpoint \(peers[peer]): the shared-memory transport needs every worker on this machine with an shm:// endpoint")
            }
            outboxes[peer]?.close()
            let socket = try ZMQSocket(context: context, kind: .push, lingerMilliseconds: lingerMilliseconds)
            try socket.setHighWaterMarks(send: 0, receive: 0)
            if let security, let keys { try security.makeClient(socket, serverKey: keys[peer]) }
            try socket.connect(peers[peer])
            outboxes[peer] = socket
            // "n3, 10.88.0.3:6001": who it is and the address dialled, for every message naming it.
            let address = String(peers[peer].dropFirst(peers[peer].hasPrefix("tcp://") ? 6 : 0))
            self.hosts[peer] = hosts.map { "\($0[peer]), \(address)" } ?? address
        }
    }

    /// Closes all sockets (queued frames get `lingerMilliseconds` to leave).
    public func close() {
        for socket in outboxes { socket?.close() }
        outboxes = Array(repeating: nil, count: worldSize)
        inbox.close()
        authenticator?.stop()
        queues.removeAll()
    }

    public func host(ofRank rank: Int) -> String? {
        rank >= 0 && rank < worldSize ? hosts[rank] : nil
    }

    // MARK: Sending

    public func send(to peer: Int, tag: UInt32, _ bytes: UnsafeRawBufferPointer) throws {
        try checkPeer(peer)
        guard let socket = outboxes[peer] else {
            throw TransportError.notConnected("rank \(rank) has no connection to rank \(peer); call connect(peers:) first")
        }
        let header = WireFrame.Header(kind: .data, jobID: jobID, step: UInt64(tag), senderRank: UInt32(rank))
        if bytes.count >= zeroCopyMinimumBytes {
            // Two parts: the envelope (a copy of 52 bytes), then the payload in place.
            let envelope = try ZMQMessage(size: WireFrame.overhead)
            envelope.withUnsafeMutableBytes { WireFrame.encodeEnvelope(header, payload: bytes, into: $0) }
            let payload = try zeroCopySends.message(borrowing: bytes)
            try send(envelope, more: true, on: socket, to: peer)
            try send(payload, more: false, on: socket, to: peer)
            return
        }
        // One copy: the payload goes straight into the message buffer libzmq sends.
        let message = try ZMQMessage(size: WireFrame.frameSize(payloadCount: bytes.count))
        message.withUnsafeMutableBytes { WireFrame.encode(header, payload: bytes, into: $0) }
        try send(message, more: false, on: socket, to: peer)
    }

    private func send(_ message: ZMQMessage, more: Bool, on socket: ZMQSocket, to peer: Int) throws {
        if try socket.send(message, more: more, dontWait: true) { return }
        // The queue is full (only with finite high-water marks): wait for room, bounded.
        let deadline = MonotonicClock.now() + timeoutSeconds
        while MonotonicClock.now() < deadline {
            _ = try ZMQSocket.poll([(socket, .writable)], timeoutSeconds: min(0.1, deadline - MonotonicClock.now()))
            if try socket.send(message, more: more, dontWait: true) { return }
        }
        throw TransportError.peerTimeout(rank: peer, host: host(ofRank: peer), seconds: timeoutSeconds)
    }

    /// Waits until libzmq has released every payload sent without a copy, so
    /// the caller may modify those bytes again. Bounded by `timeoutSeconds`
    /// (the release comes once the bytes are in the kernel's socket buffer,
    /// which needs the receiving process to keep reading).
    public func flushSends() throws {
        guard zeroCopySends.pending > 0 else { return }
        if !zeroCopySends.waitUntilReleased(deadline: MonotonicClock.now() + timeoutSeconds) {
            throw TransportError.peerTimeout(rank: nextPeerWithQueuedData(), host: host(ofRank: nextPeerWithQueuedData()),
                                             seconds: timeoutSeconds)
        }
    }

    /// For the flush timeout's message: the successor is the usual recipient of bulk sends.
    private func nextPeerWithQueuedData() -> Int { (rank + 1) % worldSize }

    // MARK: Receiving

    /// How far (in tags, within one tag space) a frame may be from the newest tag this
    /// rank has asked for; farther frames are dropped on arrival.
    public static let tagWindow = 1 << 16
    /// Per tag space (a tag's top four bits, see `GroupTransport`): the newest tag
    /// `receive` has been asked for, without those bits.
    private var newestTag = [UInt32](repeating: 0, count: 16)

    public func receive(from peer: Int, tag: UInt32, into buffer: UnsafeMutableRawBufferPointer) throws {
        try receive(from: peer, tag: tag, byteCount: buffer.count) { payload in
            if !payload.isEmpty { buffer.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count) }
        }
    }

    /// Lends the payload in place inside the received libzmq message (no copy).
    /// A frame of the wrong size (a peer never sends one: it is stray or forged) is
    /// dropped and logged, and the wait goes on.
    public func receive(from peer: Int, tag: UInt32, byteCount: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try checkPeer(peer)
        let space = Int(tag >> 28), low = tag & 0x0FFF_FFFF
        if low > newestTag[space] { newestTag[space] = low }
        let deadline = MonotonicClock.now() + timeoutSeconds
        while true {
            let frame = try nextFrame(from: peer, tag: tag, deadline: deadline)
            guard frame.payloadCount == byteCount else {
                reject(frame.message, because: "\(frame.payloadCount) payload bytes under tag \(tag) from rank \(peer), where \(byteCount) are due")
                continue
            }
            try frame.message.withUnsafeBytes { bytes in
                try body(UnsafeRawBufferPointer(rebasing: bytes[frame.payloadOffset..<(frame.payloadOffset + frame.payloadCount)]))
            }
            return
        }
    }

    /// The next validated frame from `peer` under `tag`, waiting until `deadline`.
    private func nextFrame(from peer: Int, tag: UInt32, deadline: Double) throws -> Frame {
        let key = PeerTagKey(sender: peer, tag: tag)
        while true {
            if let message = queues[key]?.popFirst() {
                // Drop drained queues: every collective uses fresh tags.
                if queues[key]?.isEmpty == true { queues[key] = nil }
                return message
            }
            let remaining = deadline - MonotonicClock.now()
            guard remaining > 0 else {
                throw TransportError.peerTimeout(rank: peer, host: host(ofRank: peer), seconds: timeoutSeconds)
            }
            // Synchronization point: wait for any frame (from any peer) or the deadline.
            guard try ZMQSocket.poll([(inbox, .readable)], timeoutSeconds: remaining)[0] else { continue }
            while let message = try inbox.receive(dontWait: true) { file(message) }
        }
    }

    /// Validates one incoming message and queues it, or rejects it.
    private func file(_ message: ZMQMessage) {
        let header: WireFrame.Header
        let frame: Frame
        do {
            if message.hasMore {
                // A two-part frame: envelope, then payload (parts arrive together).
                guard let payload = try? inbox.receive(dontWait: true) else {
                    return reject(message, because: "multipart message without its second part")
                }
                if payload.hasMore {
                    while let part = try? inbox.receive(dontWait: true), part.hasMore {}
                    return reject(message, because: "multipart message with more than two parts")
                }
                header = try message.withUnsafeBytes { envelope in
                    try payload.withUnsafeBytes { try WireFrame.validate(envelope: envelope, payload: $0, expectedJobID: jobID) }
                }
                frame = Frame(message: payload, payloadOffset: 0, payloadCount: payload.count)
            } else {
                header = try message.withUnsafeBytes { (bytes) throws(WireError) in try WireFrame.validate(bytes, expectedJobID: jobID) }
                frame = Frame(message: message, payloadOffset: WireFrame.headerSize, payloadCount: Int(header.chunkLength))
            }
        } catch let error as WireError {
            return reject(message, because: error.description)
        } catch {
            return reject(message, because: "\(error)")
        }
        guard header.kind == .data else { return reject(message, because: "\(header.kind) frame on the data endpoint") }
        let sender = Int(header.senderRank)
        guard sender < worldSize, sender != rank else {
            return reject(message, because: "sender rank \(header.senderRank) is not a peer in a world of size \(worldSize)")
        }
        guard let tag = UInt32(exactly: header.step) else { return reject(message, because: "tag \(header.step) out of range") }
        // Peers are never more than a collective or two apart: a tag far from this rank's
        // newest one is stray or forged, and holding it would hold its memory forever.
        let newest = Int(newestTag[Int(tag >> 28)]), low = Int(tag & 0x0FFF_FFFF)
        guard abs(low - newest) <= Self.tagWindow else {
            return reject(message, because: "tag \(tag) is \(low - newest) collectives from this rank's (window ±\(Self.tagWindow))")
        }
        queues[PeerTagKey(sender: sender, tag: tag), default: FrameQueue()].append(frame)
    }

    private func reject(_ message: ZMQMessage, because reason: String) {
        rejectedFrames += 1
        var origin = message.peerAddress.map { "from \($0)" } ?? "from an unknown endpoint"
        message.withUnsafeBytes { bytes in
            if bytes.count >= 28, bytes.loadUnaligned(as: UInt32.self) == WireFrame.magic.littleEndian {
                origin += " (claims sender rank \(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self))))"
            }
        }
        let text = "rank \(rank) rejected a \(message.count)-byte frame \(origin): \(reason)"
        lastRejection = text
        if logsRejections {
            var line = "lockstep: \(text)\n"
            line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
        }
    }

    // MARK: Helpers

    private func checkPeer(_ peer: Int) throws {
        guard peer >= 0, peer < worldSize, peer != rank else {
            throw TransportError.invalidPeer(rank: peer, worldSize: worldSize)
        }
    }

    /// `tcp://HOST:PORT` → HOST; other transports → the whole endpoint.
    static func host(ofEndpoint endpoint: String) -> String {
        guard endpoint.hasPrefix("tcp://") else { return endpoint }
        let address = endpoint.dropFirst("tcp://".count)
        guard let colon = address.lastIndex(of: ":") else { return String(address) }
        return String(address[..<colon])
    }

    /// A validated data frame: its payload lies at `payloadOffset` in `message`.
    struct Frame {
        var message: ZMQMessage
        var payloadOffset: Int
        var payloadCount: Int
    }

    /// FIFO of received frames with O(1) pop.
    struct FrameQueue {
        private var items: [Frame] = []
        private var head = 0
        var isEmpty: Bool { head == items.count }
        mutating func append(_ frame: Frame) { items.append(frame) }
        mutating func popFirst() -> Frame? {
            guard head < items.count else { return nil }
            let message = items[head]
            head += 1
            if head == items.count { items.removeAll(keepingCapacity: true); head = 0 }
            return message
        }
    }
}
