import CZeroMQ
import Glibc

/// A failed libzmq call: which call, errno, and libzmq's text for it.
public struct ZMQError: Error, Equatable, CustomStringConvertible {
    public let call: String
    public let errno: Int32
    public let message: String

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
        self.message = String(cString: zmq_strerror(errno))
    }

    /// The operation would block (non-blocking send/receive found nothing to do).
    public var wouldBlock: Bool { errno == EAGAIN }

    public var description: String { "\(call) failed: \(message) (errno \(errno))" }
}

/// The one wrapper around every libzmq call that reports failure as -1/NULL
/// plus errno: retries EINTR (a signal interrupted a blocking call; nothing
/// happened, try again) and turns any other failure into a `ZMQError`.
@discardableResult
func zmqCall(_ name: @autoclosure () -> String, _ body: () -> Int32) throws(ZMQError) -> Int32 {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw ZMQError(call: name(), errno: code)
    }
}

/// `zmqCall` for the calls that return a pointer (NULL on failure).
func zmqCall<T>(_ name: @autoclosure () -> String, _ body: () -> T?) throws(ZMQError) -> T {
    while true {
        if let result = body() { return result }
        let code = zmq_errno()
        if code == EINTR { continue }
        throw ZMQError(call: name(), errno: code)
    }
}
