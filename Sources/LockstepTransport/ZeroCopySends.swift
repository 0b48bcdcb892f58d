import LockstepBase
import CZeroMQ
import Glibc
import Synchronization

/// Payloads that libzmq sends straight from the caller's memory
/// (`zmq_msg_init_data`), and the wait until it no longer needs them.
///
/// libzmq calls the release function from its I/O thread once a message's
/// bytes are in the kernel's socket buffer; until then the caller must leave
/// them alone. `ZMQPeerTransport.flushSends` waits for that moment.
final class ZeroCopySends: Sendable {
    private let inFlight = Atomic<Int>(0)

    var pending: Int { inFlight.load(ordering: .acquiring) }

    /// A message whose content is `bytes` itself, not a copy.
    func message(borrowing bytes: UnsafeRawBufferPointer) throws(ZMQError) -> ZMQMessage {
        inFlight.add(1, ordering: .relaxed)
        // The release callback holds its own reference, so a late release
        // after the transport is gone still finds a live counter.
        let hint = Unmanaged.passRetained(self).toOpaque()
        do {
            return try ZMQMessage(borrowing: bytes, hint: hint) { _, hint in
                let sends = Unmanaged<ZeroCopySends>.fromOpaque(hint!).takeRetainedValue()
                sends.inFlight.subtract(1, ordering: .releasing)
            }
        } catch {
            Unmanaged<ZeroCopySends>.fromOpaque(hint).release()
            inFlight.subtract(1, ordering: .relaxed)
            throw error
        }
    }

    /// Waits until libzmq has released every borrowed payload; false at the deadline.
    func waitUntilReleased(deadline: Double) -> Bool {
        var spins = 0
        while pending > 0 {
            if MonotonicClock.now() >= deadline { return false }
            // Brief spins first (the I/O thread is usually mid-write), then sleep.
            spins += 1
            if spins < 64 { sched_yield() } else { usleep(50) }
        }
        return true
    }
}
