import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads a pipe (a child process's output) to its end on a thread of its own, with
/// blocking `read(2)` calls.
///
/// Used instead of `FileHandle.readabilityHandler`: on Linux, tearing down the
/// libdispatch read source behind that handler can crash the whole process in
/// libdispatch's manager thread (`_dispatch_event_loop_drain`, a use-after-free of its
/// epoll bookkeeping; swift-corelibs-libdispatch issue 949). A blocking read never
/// registers the descriptor with libdispatch, so there is no source to tear down: the
/// loop ends at end of file, when every writer has closed its end.
public final class PipeReader: Sendable {
    /// Signalled once at the end; `waitForEnd` passes the signal on, so every later wait sees it.
    private let ended = DispatchSemaphore(value: 0)

    /// Starts reading `handle` at once. `onData` gets each chunk as it arrives and
    /// `onEnd` is called once at end of file (or on a read error), both on the reader's thread.
    public init(_ handle: FileHandle, onData: @escaping @Sendable (Data) -> Void, onEnd: (@Sendable () -> Void)? = nil) {
        let fd = handle.fileDescriptor
        let thread = Thread { [handle, ended] in
            withExtendedLifetime(handle) {
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n > 0 {
                        onData(Data(buffer[0..<n]))
                    } else if n < 0 && errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
            }
            onEnd?()
            ended.signal()
        }
        thread.name = "lockstep-pipe-reader"
        thread.start()
    }

    /// Waits until the reader has reached the end of the pipe, at most `seconds`;
    /// returns whether it has.
    @discardableResult
    public func waitForEnd(seconds: Double) -> Bool {
        guard ended.wait(timeout: .now() + max(0, seconds)) == .success else { return false }
        ended.signal()
        return true
    }
}
