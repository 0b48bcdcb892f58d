import Foundation

/// Runs collectives on one communication thread, in submission order.
///
/// The transport is driven by one thread at a time; this queue is that thread.
/// Backward submits a gradient bucket's all-reduce and goes on computing
/// (overlap, as PyTorch DDP's buckets and Horovod's tensor fusion); BatchNorm
/// submits its small statistics all-reduce and waits for it. Every rank submits
/// the same operations in the same order, so the ring tags stay in step.
/// After a failure every later operation fails with the same error.
// Sendable, unchecked: operations (closures over the caller's buffers, not Sendable)
// pass to the communication thread through `pending` under `condition`'s lock, and
// their completion back through `completed` under the same lock; the caller does
// not touch an operation's buffers between `submit` and the `wait` that covers it.
public final class CollectiveQueue: @unchecked Sendable {
    public typealias Operation = (Communicator) throws -> Void

    public let communicator: Communicator
    /// Called on the communication thread after each operation (for the trace).
    public let onCompleted: (@Sendable (_ name: String, _ start: Date, _ end: Date) -> Void)?

    private let condition = NSCondition()
    private var pending: [(ticket: Int, name: String, op: Operation)] = []
    private var submitted = 0
    private var completed = 0
    private var failure: Error?
    private var stopping = false
    private var thread: Thread?
    private var busy = 0.0

    /// Seconds the communication thread has spent running operations so far.
    public var busySeconds: Double {
        condition.lock()
        defer { condition.unlock() }
        return busy
    }

    public init(communicator: Communicator, onCompleted: (@Sendable (_ name: String, _ start: Date, _ end: Date) -> Void)? = nil) {
        self.communicator = communicator
        self.onCompleted = onCompleted
        // The thread keeps the queue alive until `stop()`; the owner must call it.
        let t = Thread { self.loop() }
        t.name = "lockstep-comm"
        thread = t
        t.start()
    }

    /// Queues `op`; returns its ticket for `wait`.
    @discardableResult
    public func submit(_ name: String, _ op: @escaping Operation) -> Int {
        condition.lock()
        submitted += 1
        let ticket = submitted
        pending.append((ticket, name, op))
        condition.broadcast()
        condition.unlock()
        return ticket
    }

    /// Waits until operation `ticket` and all before it have run; rethrows a failure.
    /// Each operation's own transport deadline bounds the wait.
    public func wait(_ ticket: Int) throws {
        condition.lock()
        defer { condition.unlock() }
        while completed < ticket && failure == nil { condition.wait() }
        if let failure { throw failure }
    }

    public func waitAll() throws {
        condition.lock()
        let last = submitted
        condition.unlock()
        try wait(last)
    }

    /// Submits and waits.
    public func run(_ name: String, _ op: @escaping Operation) throws {
        try wait(submit(name, op))
    }

    public func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty && stopping { condition.unlock(); return }
            let job = pending.removeFirst()
            let failed = failure != nil
            condition.unlock()
            if failed {
                condition.lock(); completed = job.ticket; condition.broadcast(); condition.unlock()
                continue
            }
            let start = Date()
            do {
                try job.op(communicator)
                let end = Date()
                onCompleted?(job.name, start, end)
                condition.lock(); completed = job.ticket; busy += end.timeIntervalSince(start)
            } catch {
                condition.lock(); failure = error; completed = job.ticket
            }
            condition.broadcast()
            condition.unlock()
        }
    }
}
