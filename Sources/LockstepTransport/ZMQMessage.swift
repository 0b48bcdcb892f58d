import CZeroMQ

/// One received or to-be-sent libzmq message (`zmq_msg_t`), closed on deinit.
/// Received payloads are read in place, without a copy.
public final class ZMQMessage {
    let pointer: UnsafeMutablePointer<zmq_msg_t>
    private var isOpen = true

    /// An empty message, ready for `zmq_msg_recv`.
    public init() {
        pointer = .allocate(capacity: 1)
        zmq_msg_init(pointer)
    }

    /// A message of `size` uninitialized bytes to fill before sending.
    public init(size: Int) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        do {
            try zmqCall("zmq_msg_init_size") { zmq_msg_init_size(pointer, size) }
        } catch {
            pointer.deallocate()
            throw error
        }
    }

    /// A message whose content is `bytes` in place (no copy); libzmq calls
    /// `release(data, hint)` from its I/O thread when it is done with them.
    init(borrowing bytes: UnsafeRawBufferPointer, hint: UnsafeMutableRawPointer,
         release: @escaping @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void) throws(ZMQError) {
        pointer = .allocate(capacity: 1)
        do {
            try zmqCall("zmq_msg_init_data") {
                zmq_msg_init_data(pointer, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count, release, hint)
            }
        } catch {
            pointer.deallocate()
            throw error
        }
    }

    public convenience init(bytes: UnsafeRawBufferPointer) throws(ZMQError) {
        try self.init(size: bytes.count)
        if !bytes.isEmpty { withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) } }
    }

    deinit {
        if isOpen { zmq_msg_close(pointer) }
        pointer.deallocate()
    }

    public var count: Int { zmq_msg_size(pointer) }

    /// Lends the content in place. The pointer must not escape `body`: it
    /// points into this object (small messages live inside `zmq_msg_t`),
    /// which Swift may release right after its last use.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            try body(UnsafeRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer)))
        }
    }

    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            try body(UnsafeMutableRawBufferPointer(start: zmq_msg_data(pointer), count: zmq_msg_size(pointer)))
        }
    }

    /// A copy of the content.
    public var array: [UInt8] { withUnsafeBytes { [UInt8]($0) } }

    /// Whether more parts of a multipart message follow this one.
    public var hasMore: Bool { zmq_msg_more(pointer) == 1 }

    /// The TCP/IPC address of the peer that sent this message, when libzmq knows it.
    public var peerAddress: String? {
        guard let value = zmq_msg_gets(pointer, "Peer-Address") else { return nil }
        return String(cString: value)
    }

    /// The public key (Z85) of the CURVE client that sent this message, as the
    /// context's `ZAPHandler` admitted it; nil on a connection without security.
    public var userID: String? {
        guard let value = zmq_msg_gets(pointer, "User-Id") else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// The file descriptor of the connection a received message came in on (what a
    /// `ZMQMonitor` event names), or nil when libzmq does not know it.
    public var sourceDescriptor: Int32? {
        let fd = zmq_msg_get(pointer, ZMQ_SRCFD)
        return fd >= 0 ? fd : nil
    }
}
