import CZeroMQ
import Foundation
import Synchronization

/// Owner of a libzmq context. Every `ZMQSocket` holds a strong reference to
/// its context, so the context is terminated (in `deinit`) only after all of
/// its sockets are closed; terminating earlier would block forever.
///
/// A process that ends without terminating its context loses the frames still
/// queued in it: linger counts only while `zmq_ctx_term` waits. `terminate(within:)`
/// does that wait explicitly, bounded, once the sockets are closed.
public final class ZMQContext {
    let handle: UnsafeMutableRawPointer
    private let terminated = Atomic<Bool>(false)

    /// - Parameter ioThreads: libzmq background I/O threads; one moves
    ///   several GB/s on loopback, and the machine has two cores.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        handle = try zmqCall("zmq_ctx_new") { zmq_ctx_new() }
        try zmqCall("zmq_ctx_set(ZMQ_IO_THREADS)") { zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) }
    }

    deinit {
        // Cannot block on open sockets: each socket keeps this object alive.
        guard !terminated.exchange(true, ordering: .acquiringAndReleasing) else { return }
        _ = try? zmqCall("zmq_ctx_term") { zmq_ctx_term(handle) }
    }

    /// Terminates the context after its sockets are closed, waiting at most `seconds`
    /// for their queued frames to leave (each socket's linger); true when it finished.
    /// A socket still open past the deadline leaves the context to the process's exit.
    @discardableResult
    public func terminate(within seconds: Double) -> Bool {
        guard !terminated.exchange(true, ordering: .acquiringAndReleasing) else { return true }
        let context = Handle(pointer: handle)
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            _ = zmq_ctx_term(context.pointer)
            done.signal()
        }
        t.name = "lockstep-zmq-term"
        t.start()
        return done.wait(timeout: .now() + seconds) == .success
    }

    /// The context's pointer, handed to the terminating thread.
    private struct Handle: @unchecked Sendable { let pointer: UnsafeMutableRawPointer }

    /// libzmq's version, e.g. (4, 3, 4).
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}
