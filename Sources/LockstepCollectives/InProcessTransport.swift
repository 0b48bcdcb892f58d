import Synchronization
import Foundation

/// A `PeerTransport` between threads of one process: each rank owns a
/// mailbox; `send` copies the bytes into the receiver's mailbox, `receive`
/// waits on it with a deadline. Serves world size 1 and fast tests.
public final class InProcessTransport: PeerTransport {
    public let rank: Int
    public let worldSize: Int
    /// How long `receive` waits before `TransportError.peerTimeout`.
    public var timeoutSeconds: Double
    private let group: Group

    /// Creates the `worldSize` connected endpoints of one in-process job;
    /// element r is rank r. Hand each to its own thread.
    public static func makeGroup(worldSize: Int, timeoutSeconds: Double = 30) -> [InProcessTransport] {
        precondition(worldSize >= 1, "world size must be at least 1")
        let group = Group(worldSize: worldSize)
        return (0..<worldSize).map { InProcessTransport(rank: $0, group: group, timeoutSeconds: timeoutSeconds) }
    }

    private init(rank: Int, group: Group, timeoutSeconds: Double) {
        self.rank = rank
        self.worldSize = group.mailboxes.count
        self.group = group
        self.timeoutSeconds = timeoutSeconds
    }

    public func host(ofRank rank: Int) -> String? { "in-process" }

    public func send(to peer: Int, tag: UInt32, _ bytes: UnsafeRawBufferPointer) throws {
        try checkPeer(peer)
        group.mailboxes[peer].put(Key(sender: rank, tag: tag), [UInt8](bytes))
    }

    public func receive(from peer: Int, tag: UInt32, into buffer: UnsafeMutableRawBufferPointer) throws {
        try receive(from: peer, tag: tag, byteCount: buffer.count) { bytes in
            if !bytes.isEmpty { buffer.baseAddress!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        }
    }

    public func receive(
        from peer: Int, tag: UInt32, byteCount: Int,
        _ body: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        try checkPeer(peer)
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        guard let message = group.mailboxes[rank].take(Key(sender: peer, tag: tag), deadline: deadline) else {
            throw TransportError.peerTimeout(rank: peer, host: host(ofRank: peer), seconds: timeoutSeconds)
        }
        guard message.count == byteCount else {
            throw TransportError.sizeMismatch(rank: peer, tag: tag, expected: byteCount, actual: message.count)
        }
        try message.withUnsafeBytes(body)
    }

    private func checkPeer(_ peer: Int) throws {
        guard peer >= 0, peer < worldSize, peer != rank else {
            throw TransportError.invalidPeer(rank: peer, worldSize: worldSize)
        }
    }

    struct Key: Hashable {
        var sender: Int
        var tag: UInt32
    }

    final class Group: Sendable {
        let mailboxes: [Mailbox]
        init(worldSize: Int) { mailboxes = (0..<worldSize).map { _ in Mailbox() } }
    }

    /// FIFO queues keyed by (sender, tag), behind one mutex; a semaphore wakes the
    /// (single) receiving thread when anything arrives.
    final class Mailbox: Sendable {
        private let queues = Mutex<[Key: [[UInt8]]]>([:])
        private let arrived = DispatchSemaphore(value: 0)

        func put(_ key: Key, _ message: [UInt8]) {
            queues.withLock { $0[key, default: []].append(message) }
            arrived.signal()
        }

        func take(_ key: Key, deadline: Date) -> [UInt8]? {
            while true {
                if let message = pop(key) { return message }
                // Synchronization point: wait for a sender's `put` or the deadline.
                let left = deadline.timeIntervalSinceNow
                if left <= 0 || arrived.wait(timeout: .now() + left) == .timedOut { return pop(key) }
            }
        }

        /// The oldest message under `key`, removed; nil when there is none.
        private func pop(_ key: Key) -> [UInt8]? {
            queues.withLock { queues in
                guard var queue = queues[key], !queue.isEmpty else { return nil }
                let message = queue.removeFirst()
                queues[key] = queue.isEmpty ? nil : queue
                return message
            }
        }
    }
}
