import CZeroMQ

/// Connection events of one socket (`zmq_socket_monitor`), read without blocking:
/// how the coordinator learns at once that a worker's connection closed.
///
/// Driven by the thread that drives the monitored socket.
public final class ZMQMonitor {
    public struct Event: Sendable, Equatable {
        /// `ZMQ_EVENT_*`.
        public var kind: Int32
        /// For connection events, the connection's file descriptor.
        public var value: UInt32
    }

    /// `ZMQ_EVENT_DISCONNECTED`: a connection closed.
    public static let disconnected = ZMQ_EVENT_DISCONNECTED
    /// A connection's handshake failed: no CURVE key, a wrong protocol (the ZAP
    /// handler names refused keys itself).
    public static let handshakeFailed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
    /// The server's ZAP handler refused this client's key.
    public static let refused = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH

    private let pair: ZMQSocket

    /// Monitors `socket` for the events in `events` (a `ZMQ_EVENT_*` mask).
    public init(_ socket: ZMQSocket, events: Int32) throws(ZMQError) {
        let address = "inproc://lockstep-monitor-\(UInt64.random(in: 0...UInt64.max))"
        let handle = socket.handle
        _ = try zmqCall("zmq_socket_monitor") { zmq_socket_monitor(handle, address, events) }
        pair = try ZMQSocket(context: socket.context, kind: .pair)
        try pair.connect(address)
    }

    /// The next event, or nil when none is waiting.
    public func next() throws(ZMQError) -> Event? {
        guard let first = try pair.receive(dontWait: true) else { return nil }
        let hasAddress = first.hasMore
        if hasAddress { _ = try pair.receive(dontWait: true) }  // the endpoint
        guard first.count == 6 else { return nil }
        return first.withUnsafeBytes { bytes in
            Event(kind: Int32(UInt16(littleEndian: bytes.loadUnaligned(as: UInt16.self))),
                  value: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        }
    }
}
