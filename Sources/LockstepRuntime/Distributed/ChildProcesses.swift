import Foundation
import Synchronization

/// The processes one launcher starts: `lockstep train --workers N` (a coordinator
/// and its workers) and `lockstep bench allreduce` (its rank processes, which the
/// all-reduce probe of `bench scaling` also drives). Each child's output is either
/// prefixed with its name onto ours or handed to the caller through pipes;
/// Ctrl-C and SIGTERM can be forwarded to every child; `stop` leaves none behind.
public final class ChildProcesses {
    public struct Child {
        public let name: String
        public let process: Process
    }

    /// How a child's standard streams are connected.
    public enum Streams {
        /// stdout and stderr line by line onto ours, each line prefixed with "[name] ".
        case prefixed
        /// stdin and stdout are the caller's pipes; stderr is ours as it is.
        case pipes(stdin: Pipe, stdout: Pipe)
    }

    public private(set) var children: [Child] = []
    private let readers = DispatchGroup()
    private var signalSources: [DispatchSourceSignal] = []
    private let interruptFlag = InterruptFlag()
    /// Each prefixed child's last line of standard error.
    private let lastLines = LastLines()

    /// The last line child `name` wrote to standard error (prefixed children).
    public func lastErrorLine(of name: String) -> String? { lastLines.lines.withLock { $0[name] } }

    public init() {}

    /// Starts `executable arguments` as child `name`.
    @discardableResult
    public func start(_ name: String, executable: URL, arguments: [String], streams: Streams = .prefixed) throws -> Process {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        switch streams {
        case .prefixed:
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            Self.prefixLines(of: out.fileHandleForReading, with: "[\(name)] ", to: .standardOutput, group: readers) { _ in }
            let lines = lastLines
            Self.prefixLines(of: err.fileHandleForReading, with: "[\(name)] ", to: .standardError, group: readers) { line in
                lines.lines.withLock { $0[name] = line }
            }
        case .pipes(let stdin, let stdout):
            p.standardInput = stdin
            p.standardOutput = stdout
        }
        try p.run()
        children.append(Child(name: name, process: p))
        return p
    }

    /// From now on Ctrl-C and SIGTERM are passed to every running child (see `interrupted`).
    public func forwardSignals() {
        let processes = children.map(\.process)
        let flag = interruptFlag
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                flag.set()
                for p in processes where p.isRunning { kill(p.processIdentifier, SIGTERM) }
            }
            s.resume()
            signalSources.append(s)
        }
    }

    /// Whether the user interrupted the run (a forwarded signal arrived).
    public var interrupted: Bool { interruptFlag.isSet }

    public var anyRunning: Bool { children.contains { $0.process.isRunning } }

    /// Sends `sig` to every child still running.
    public func signalAll(_ sig: Int32) {
        for c in children where c.process.isRunning { kill(c.process.processIdentifier, sig) }
    }

    /// Kills whatever still runs, waits (at most 2 s) for the prefixed output to end,
    /// and stops forwarding signals.
    public func stop() {
        signalAll(SIGKILL)
        for c in children { c.process.waitUntilExit() }
        _ = readers.wait(timeout: .now() + 2)
        signalSources.forEach { $0.cancel() }
        signalSources.removeAll()
    }

    /// "rank 1 exited with status 1", "coordinator was killed by signal 9".
    public static func describe(_ child: Child) -> String {
        child.process.terminationReason == .uncaughtSignal
            ? "\(child.name) was killed by signal \(child.process.terminationStatus)"
            : "\(child.name) exited with status \(child.process.terminationStatus)"
    }

    private static func prefixLines(of handle: FileHandle, with prefix: String, to out: FileHandle, group: DispatchGroup,
                                     onLine: @escaping @Sendable (String) -> Void) {
        group.enter()
        // Bytes of the child's output not yet ended by a newline.
        let pending = Mutex(Data())
        _ = PipeReader(handle, onData: { chunk in
            pending.withLock { pending in
                pending.append(chunk)
                while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    out.write(Data(prefix.utf8) + pending[pending.startIndex...nl])
                    onLine(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...nl)
                }
            }
        }, onEnd: {
            pending.withLock { pending in
                if !pending.isEmpty { out.write(Data(prefix.utf8) + pending + Data("\n".utf8)) }
                pending.removeAll()
            }
            group.leave()
        })
    }
}

/// Set by the signal handler when the user interrupts the run.
final class InterruptFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// Each child's last line of standard error, written by its reader thread.
final class LastLines: Sendable {
    let lines = Mutex<[String: String]>([:])
}
