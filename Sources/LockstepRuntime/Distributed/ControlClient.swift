import Foundation
import LockstepTransport
import Synchronization

/// A worker's link to the coordinator: one DEALER socket owned by one thread.
///
/// The thread sends queued messages and heartbeats, hands incoming messages to
/// `next(_:within:)`, and ends the process (exit status 1, one clear line) when
/// the coordinator orders an abort, goes silent for `timeout` seconds, or the
/// launching parent process disappears — so no worker outlives its job.
/// Everything the training thread and the control thread share sits in `state`,
/// behind one mutex; the ZeroMQ context and socket belong to the control thread
/// alone (it creates them).
final class ControlClient: Sendable {
    let coordinator: String
    let timeout: Double
    let heartbeat: Double

    private struct State {
        var label = "worker"
        var outbox: [ControlMessage] = []
        var inbox: [ControlMessage] = []
        var jobID: UInt64?
        var rank: Int?
        var stopping = false
        var stopped = false
    }

    private let state = Mutex(State())
    /// Signalled when a message arrives in the inbox (waits re-check `state`).
    private let arrived = DispatchSemaphore(value: 0)
    private let parentPID: Int32?
    private let security: JobSecurity?

    /// `parentPID`: the launcher's pid (`lockstep train --workers N`); the worker stops when it is gone.
    /// `security`: CurveZMQ keys; the connection then pins the coordinator's public key.
    init(coordinator: String, timeout: Double, heartbeat: Double, parentPID: Int32? = nil, security: JobSecurity? = nil) throws {
        try EndpointCheck.validate(coordinator, flag: "--coordinator")
        self.coordinator = coordinator
        self.security = security
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.parentPID = parentPID
    }

    /// "rank R" once assigned, "worker" before.
    var label: String { state.withLock { $0.label } }

    func start() {
        let t = Thread { [self] in loop() }
        t.name = "lockstep-control"
        t.start()
    }

    func setJob(_ job: UInt64, rank: Int) {
        state.withLock {
            $0.jobID = job
            $0.rank = rank
            $0.label = "rank \(rank)"
        }
    }

    func send(_ m: ControlMessage) {
        state.withLock { $0.outbox.append(m) }
    }

    /// The next incoming message of one of `kinds`, waiting at most `within` seconds.
    func next(_ kinds: Set<ControlMessage.Kind>, within: Double) throws -> ControlMessage {
        let deadline = Date().addingTimeInterval(within)
        while true {
            let found: ControlMessage? = state.withLock { s in
                guard let i = s.inbox.firstIndex(where: { kinds.contains($0.kind) }) else { return nil }
                return s.inbox.remove(at: i)
            }
            if let found { return found }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 || arrived.wait(timeout: .now() + left) == .timedOut {
                throw LockstepError("no \(kinds.map(\.rawValue).sorted().joined(separator: "/")) from the coordinator at \(coordinator) within \(Int(within)) s; is it running and reachable?")
            }
        }
    }

    /// Sends what is queued, then stops the thread (waiting at most 2 s for it).
    func finish() {
        state.withLock { $0.stopping = true }
        let deadline = Date().addingTimeInterval(2)
        while Date() < deadline {
            if state.withLock({ $0.stopped }) { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }

    private func loop() {
        let context: ZMQContext, socket: ZMQSocket, connection: ZMQMonitor
        do {
            context = try ZMQContext()
            socket = try ZMQSocket(context: context, kind: .dealer)
            try socket.setMaximumMessageBytes(ControlMessage.maximumBytes)
            if let security { try security.curve.makeClient(socket, serverKey: security.coordinatorKey) }
            connection = try ZMQMonitor(socket, events: ZMQMonitor.disconnected | ZMQMonitor.handshakeFailed | ZMQMonitor.refused)
            try socket.connect(coordinator)
        } catch {
            die("--coordinator \(coordinator): \(error); use an address like tcp://HOST:PORT")
        }
        withExtendedLifetime(context) { run(socket, connection) }
    }

    private func run(_ socket: ZMQSocket, _ connection: ZMQMonitor) {
        var lastSent = Date.distantPast
        var lastHeard = Date()
        var shutdown = false  // after the coordinator's shutdown, its closing connection is expected
        var answered = false  // the coordinator has sent something
        while true {
            let (pending, job, myRank, stop, label) = state.withLock { s in
                defer { s.outbox.removeAll() }
                return (s.outbox, s.jobID, s.rank, s.stopping, s.label)
            }
            for m in pending {
                _ = try? socket.send(m.frame(jobID: job ?? 0, rank: myRank), dontWait: false)
                lastSent = Date()
            }
            if stop {
                state.withLock { $0.stopped = true }
                return
            }
            if Date().timeIntervalSince(lastSent) >= heartbeat {
                _ = try? socket.send(ControlMessage.heartbeat.frame(jobID: job ?? 0, rank: myRank))
                lastSent = Date()
            }
            if let parts = try? socket.receiveMultipart(timeoutSeconds: 0.05), let last = parts.last {
                lastHeard = Date()
                answered = true
                do {
                    let (_, m) = try ControlMessage.decode(last.array, expectedJobID: job, source: "coordinator \(coordinator)")
                    switch m {
                    case .abort(let reason):
                        die("job aborted by the coordinator: \(reason)")
                    case .heartbeat:
                        break
                    case .shutdown:
                        shutdown = true
                        state.withLock { $0.inbox.append(m) }
                        arrived.signal()
                    default:
                        state.withLock { $0.inbox.append(m) }
                        arrived.signal()
                    }
                } catch {
                    logLine("\(label): \(error); ignored")
                }
            }
            if !shutdown, let event = try? connection.next() {
                switch event.kind {
                case ZMQMonitor.refused:
                    die("the coordinator at \(coordinator) refused this worker's key: add its .pub file to the coordinator's --allow directory")
                case ZMQMonitor.disconnected where answered:
                    die("the coordinator at \(coordinator) closed its connection (its process ended or its host went down)")
                case ZMQMonitor.disconnected where security == nil:
                    die("the coordinator at \(coordinator) closed the connection before answering: it may run with security (then give this worker --key) or be no Lockstep coordinator")
                default:
                    die("the secure handshake with the coordinator at \(coordinator) failed: check --coordinator-key (the coordinator's .pub) and that the coordinator runs with --key, not --insecure")
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
