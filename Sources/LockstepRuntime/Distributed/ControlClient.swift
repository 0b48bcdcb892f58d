import Foundation
import LockstepTransport

/// A worker's link to the coordinator: one DEALER socket owned by one thread.
///
/// The thread sends queued messages and heartbeats, hands incoming messages to
/// `next(_:within:)`, and ends the process (exit status 1, one clear line) when
/// the coordinator orders an abort, goes silent for `timeout` seconds, or the
/// launching parent process disappears — so no worker outlives its job.
final class ControlClient: @unchecked Sendable {
    let coordinator: String
    let timeout: Double
    let heartbeat: Double
    var label: String

    private let context: ZMQContext
    private let socket: ZMQSocket
    private let lock = NSCondition()
    private var outbox: [ControlMessage] = []
    private var inbox: [ControlMessage] = []
    private var stopping = false
    private var thread: Thread?
    private(set) var jobID: UInt64?
    private(set) var rank: Int?
    private let parentPID: Int32?

    init(coordinator: String, timeout: Double, heartbeat: Double) throws {
        try EndpointCheck.validate(coordinator, flag: "--coordinator")
        self.coordinator = coordinator
        self.timeout = timeout
        self.heartbeat = heartbeat
        label = "worker"
        context = try ZMQContext()
        socket = try ZMQSocket(context: context, kind: .dealer)
        do {
            try socket.connect(coordinator)
        } catch {
            throw LockstepError("--coordinator \(coordinator): \(error); use an address like tcp://HOST:PORT")
        }
        parentPID = ProcessInfo.processInfo.environment["LOCKSTEP_PARENT_PID"].flatMap { Int32($0) }
    }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "lockstep-control"
        thread = t
        t.start()
    }

    func setJob(_ job: UInt64, rank: Int) {
        lock.lock(); jobID = job; self.rank = rank; lock.unlock()
        label = "rank \(rank)"
    }

    func send(_ m: ControlMessage) {
        lock.lock(); outbox.append(m); lock.signal(); lock.unlock()
    }

    /// The next incoming message of one of `types`, waiting at most `within` seconds.
    func next(_ types: Set<ControlMessage.Kind>, within: Double) throws -> ControlMessage {
        let deadline = Date().addingTimeInterval(within)
        lock.lock(); defer { lock.unlock() }
        while true {
            if let i = inbox.firstIndex(where: { types.contains($0.type) }) { return inbox.remove(at: i) }
            if !lock.wait(until: deadline) {
                throw LockstepError("no \(types.map(\.rawValue).sorted().joined(separator: "/")) from the coordinator at \(coordinator) within \(Int(within)) s; is it running and reachable?")
            }
        }
    }

    /// Sends what is queued, then stops the thread (waiting at most 2 s for it).
    func finish() {
        lock.lock(); stopping = true; lock.unlock()
        guard thread != nil else { return }
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            lock.lock(); let done = stopped; lock.unlock()
            if done { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    private var stopped = false

    private func loop() {
        var lastSent = Date.distantPast
        var lastHeard = Date()
        while true {
            lock.lock()
            let pending = outbox
            outbox.removeAll()
            let job = jobID ?? 0, myRank = rank, stop = stopping
            lock.unlock()
            for m in pending {
                _ = try? socket.send(m.frame(jobID: job, rank: myRank), dontWait: false)
                lastSent = Date()
            }
            if stop {
                lock.lock(); stopped = true; lock.unlock()
                return
            }
            if Date().timeIntervalSince(lastSent) >= heartbeat {
                _ = try? socket.send(ControlMessage(.heartbeat).frame(jobID: job, rank: myRank))
                lastSent = Date()
            }
            if let parts = try? socket.receiveMultipart(timeoutSeconds: 0.05), let last = parts.last {
                lastHeard = Date()
                do {
                    let (_, m) = try ControlMessage.decode(last.array, expectedJobID: jobID, source: "coordinator \(coordinator)")
                    switch m.type {
                    case .abort:
                        die("job aborted by the coordinator: \(m.message ?? "no reason given")")
                    case .heartbeat:
                        break
                    default:
                        lock.lock(); inbox.append(m); lock.broadcast(); lock.unlock()
                    }
                } catch {
                    logLine("\(label): \(error); ignored")
                }
            }
            if Date().timeIntervalSince(lastHeard) > timeout {
                die("the coordinator at \(coordinator) has been silent for \(Int(timeout)) s; it has died or the network is down")
            }
            if let parentPID, getppid() != parentPID {
                die("the launching process exited; stopping")
            }
        }
    }

    /// Ends the process at once: a worker blocked in a collective cannot be unwound safely.
    func die(_ reason: String) -> Never {
        FileHandle.standardError.write(Data("error: \(label): \(reason)\n".utf8))
        _exit(1)
    }
}
