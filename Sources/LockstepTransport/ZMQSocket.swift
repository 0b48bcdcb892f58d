import CZeroMQ
import Glibc

/// Owner of one libzmq socket. Not thread-safe (libzmq sockets are not):
/// hand a socket to another thread, never use it from two at once.
///
/// Holds a strong reference to its `ZMQContext` so the context outlives it.
public final class ZMQSocket {
    public enum Kind: Int32, Sendable {
        case pair = 0, pub = 1, sub = 2, req = 3, rep = 4
        case dealer = 5, router = 6, pull = 7, push = 8
    }

    public let context: ZMQContext
    public let kind: Kind
    private(set) var handle: UnsafeMutableRawPointer?

    /// - Parameter lingerMilliseconds: how long `close` may keep unsent
    ///   messages; 0 drops them and never delays context termination.
    public init(context: ZMQContext, kind: Kind, lingerMilliseconds: Int = 0) throws(ZMQError) {
        self.context = context
        self.kind = kind
        handle = try zmqCall("zmq_socket") { zmq_socket(context.handle, kind.rawValue) }
        try setOption(ZMQ_LINGER, Int32(lingerMilliseconds), name: "ZMQ_LINGER")
    }

    deinit { close() }

    /// Closes the socket; later calls fail with ENOTSOCK.
    public func close() {
        if let handle { zmq_close(handle) }
        handle = nil
    }

    private func live(_ call: String) throws(ZMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw ZMQError(call: call, errno: ENOTSOCK) }
        return handle
    }

    // MARK: Options

    public func setOption(_ option: Int32, _ value: Int32, name: String) throws(ZMQError) {
        let socket = try live("zmq_setsockopt(\(name))")
        var value = value
        try zmqCall("zmq_setsockopt(\(name))") { zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) }
    }

    public func setOption(_ option: Int32, bytes: [UInt8], name: String) throws(ZMQError) {
        let socket = try live("zmq_setsockopt(\(name))")
        try zmqCall("zmq_setsockopt(\(name))") { bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) } }
    }

    /// High-water marks in messages (0 = unlimited).
    public func setHighWaterMarks(send: Int32, receive: Int32) throws(ZMQError) {
        try setOption(ZMQ_SNDHWM, send, name: "ZMQ_SNDHWM")
        try setOption(ZMQ_RCVHWM, receive, name: "ZMQ_RCVHWM")
    }

    /// Identity a ROUTER peer sees for this DEALER/REQ socket (set before connect).
    /// ZMQ_MAXMSGSIZE: a peer that announces a larger message part is disconnected
    /// before the bytes are buffered. Set before `bind`/`connect`.
    public func setMaximumMessageBytes(_ bytes: Int) throws(ZMQError) {
        let socket = try live("zmq_setsockopt(ZMQ_MAXMSGSIZE)")
        var value = Int64(bytes)
        try zmqCall("zmq_setsockopt(ZMQ_MAXMSGSIZE)") { zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size) }
    }

    /// ZMQ_HANDSHAKE_IVL: a connection whose handshake takes longer is dropped.
    public func setHandshakeTimeout(seconds: Double) throws(ZMQError) {
        try setOption(ZMQ_HANDSHAKE_IVL, Int32(seconds * 1000), name: "ZMQ_HANDSHAKE_IVL")
    }

    public func setRoutingID(_ id: [UInt8]) throws(ZMQError) {
        try setOption(ZMQ_ROUTING_ID, bytes: id, name: "ZMQ_ROUTING_ID")
    }

    /// The endpoint the socket last bound, with wildcards resolved
    /// (e.g. `tcp://127.0.0.1:43817`).
    public var lastEndpoint: String {
        get throws(ZMQError) {
            let socket = try live("zmq_getsockopt(ZMQ_LAST_ENDPOINT)")
            var buffer = [CChar](repeating: 0, count: 1024)
            var size = buffer.count
            try zmqCall("zmq_getsockopt(ZMQ_LAST_ENDPOINT)") { zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, &buffer, &size) }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: Endpoints

    /// Binds `endpoint`; a TCP port of 0 or `*` picks a free port (see `lastEndpoint`).
    public func bind(_ endpoint: String) throws(ZMQError) {
        let socket = try live("zmq_bind(\(endpoint))")
        var endpoint = endpoint
        if endpoint.hasPrefix("tcp://"), endpoint.hasSuffix(":0") { endpoint = String(endpoint.dropLast()) + "*" }
        try zmqCall("zmq_bind(\(endpoint))") { zmq_bind(socket, endpoint) }
    }

    public func connect(_ endpoint: String) throws(ZMQError) {
        let socket = try live("zmq_connect(\(endpoint))")
        try zmqCall("zmq_connect(\(endpoint))") { zmq_connect(socket, endpoint) }
    }

    // MARK: Sending

    /// Sends `message` (libzmq takes its content). Returns false when
    /// `dontWait` and the send would block.
    @discardableResult
    public func send(_ message: ZMQMessage, more: Bool = false, dontWait: Bool = false) throws(ZMQError) -> Bool {
        let socket = try live("zmq_msg_send")
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        do {
            try zmqCall("zmq_msg_send") { zmq_msg_send(message.pointer, socket, flags) }
            return true
        } catch where error.wouldBlock && dontWait {
            return false
        }
    }

    /// Copies `bytes` into a message and sends it.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, more: Bool = false, dontWait: Bool = false) throws(ZMQError) -> Bool {
        try send(ZMQMessage(bytes: bytes), more: more, dontWait: dontWait)
    }

    @discardableResult
    public func send(_ bytes: [UInt8], more: Bool = false, dontWait: Bool = false) throws(ZMQError) -> Bool {
        let socket = try live("zmq_send")
        let flags = (more ? ZMQ_SNDMORE : 0) | (dontWait ? ZMQ_DONTWAIT : 0)
        do {
            try zmqCall("zmq_send") { bytes.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) } }
            return true
        } catch where error.wouldBlock && dontWait {
            return false
        }
    }

    /// Sends all `parts` as one multipart message (atomic: all or nothing).
    public func sendMultipart(_ parts: [[UInt8]]) throws(ZMQError) {
        for (index, part) in parts.enumerated() {
            try send(part, more: index < parts.count - 1)
        }
    }

    // MARK: Receiving

    /// Receives one message part; nil when `dontWait` and nothing is queued.
    public func receive(dontWait: Bool = false) throws(ZMQError) -> ZMQMessage? {
        let socket = try live("zmq_msg_recv")
        let message = ZMQMessage()
        do {
            try zmqCall("zmq_msg_recv") { zmq_msg_recv(message.pointer, socket, dontWait ? ZMQ_DONTWAIT : 0) }
            return message
        } catch where error.wouldBlock && dontWait {
            return nil
        }
    }

    /// Receives all parts of the next multipart message, waiting at most
    /// `timeoutSeconds` for its first part; nil on timeout.
    public func receiveMultipart(timeoutSeconds: Double) throws(ZMQError) -> [ZMQMessage]? {
        guard try ZMQSocket.poll([(self, .readable)], timeoutSeconds: timeoutSeconds).first == true else { return nil }
        var parts: [ZMQMessage] = []
        // Parts of one message arrive atomically: once the first is here, the rest are too.
        while let part = try receive(dontWait: true) {
            parts.append(part)
            if !part.hasMore { break }
        }
        return parts
    }

    // MARK: Polling

    public enum Event: Sendable { case readable, writable }

    /// Waits until at least one socket is ready for its event or the
    /// timeout passes; returns readiness per socket (all false on timeout).
    /// A negative timeout waits forever (avoid it: every wait needs a deadline).
    public static func poll(_ sockets: [(ZMQSocket, Event)], timeoutSeconds: Double) throws(ZMQError) -> [Bool] {
        var items = [zmq_pollitem_t]()
        for (socket, event) in sockets {
            items.append(zmq_pollitem_t(
                socket: try socket.live("zmq_poll"), fd: 0,
                events: Int16(event == .readable ? ZMQ_POLLIN : ZMQ_POLLOUT), revents: 0))
        }
        let milliseconds = timeoutSeconds < 0 ? -1 : Int(max(0, (timeoutSeconds * 1000).rounded(.up)))
        let count = items.count
        try zmqCall("zmq_poll") { zmq_poll(&items, Int32(count), milliseconds) }
        return items.map { $0.revents != 0 }
    }
}
