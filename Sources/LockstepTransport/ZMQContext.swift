import CZeroMQ

/// Owner of a libzmq context. Every `ZMQSocket` holds a strong reference to
/// its context, so the context is terminated (in `deinit`) only after all of
/// its sockets are closed; terminating earlier would block forever.
public final class ZMQContext {
    let handle: UnsafeMutableRawPointer

    /// - Parameter ioThreads: libzmq background I/O threads; one moves
    ///   several GB/s on loopback, and the machine has two cores.
    public init(ioThreads: Int = 1) throws(ZMQError) {
        handle = try zmqCall("zmq_ctx_new") { zmq_ctx_new() }
        try zmqCall("zmq_ctx_set(ZMQ_IO_THREADS)") { zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(ioThreads)) }
    }

    deinit {
        // Cannot block on open sockets: each socket keeps this object alive.
        _ = try? zmqCall("zmq_ctx_term") { zmq_ctx_term(handle) }
    }

    /// libzmq's version, e.g. (4, 3, 4).
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }
}
