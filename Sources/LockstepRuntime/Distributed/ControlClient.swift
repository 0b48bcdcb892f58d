import Foundation
import LockstepTransport
import Synchronization

/// A worker's link to the coordinator: one DEALER socket owned by one thread.
///
/// The thread sends queued messages and heartbeats and hands incoming messages
/// to `next(_:within:)`. Before training starts it ends the process (exit status
/// 1, one clear line) when the coordinator refuses it, goes silent for `timeout`
/// seconds, or the launching parent process disappears. Once training runs, a
/// coordinator that is gone or unreachable no longer stops the worker: `lost`
/// says why, training goes on over the data plane, and the worker keeps its
/// results itself. The coordinator's `abort` ends the process; its `restart`
/// starts the process again (the same program and arguments), which rejoins the job.
///
/// The thread also notices when this process itself did not run (SIGSTOP, a
/// frozen host): a silence it caused is then reported as its own, not the
/// coordinator's. Everything the training thread and the control thread share
/// sits in `state`, behind one mutex; the ZeroMQ context and socket belong to the
/// control thread alone (it creates them).
final class ControlClient: Sendable {
    let coordinator: String
    /// Seconds of silence before the coordinator counts as gone: this process's own
    /// setting until the assignment brings the job's (`setJob`).
    var timeout: Double { state.withLock { $0.timeout } }
    let heartbeat: Double

    private struct State {
        var label = "worker"
        var timeout = 30.0
        var outbox: [ControlMessage] = []
        var inbox: [ControlMessage] = []
        var jobID: UInt64?
        var rank: Int?
        var stopping = false
        var stopped = false
        /// Training has started: from now on a lost coordinator does not stop this worker.
        var training = false
        /// Why the coordinator is gone (once training runs), or nil.
        var lost: String?
        /// The last step training finished (a restart names it: the steps it loses).
        var step = 0
        /// The last time this process did not run (stopped, frozen), and for how long.
        var suspended = (seconds: 0.0, at: Date.distantPast)
        /// When the control thread's loop last ran.
        var tick = Date()
    }

    /// Longest pause of the control thread's loop taken as the process running normally.
    static let suspensionSeconds = 3.0

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
        state.withLock { $0.timeout = timeout }
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

    func setJob(_ job: UInt64, rank: Int, timeout: Double) {
        state.withLock {
            $0.timeout = timeout
            $0.jobID = job
            $0.rank = rank
            $0.label = "rank \(rank)"
        }
    }

    /// From now on a lost coordinator no longer stops this worker (see `lost`).
    func trainingStarted() {
        state.withLock { $0.training = true }
    }

    /// After a failure: whether this process itself did not run lately (the control
    /// thread's loop paused, or has not run since a pause that is just over).
    func ownSilence() -> String {
        let (s, tick, timeout, running) = state.withLock { ($0.suspended, $0.tick, $0.timeout, !$0.stopped) }
        let now = Date()
        let pause = running && now.timeIntervalSince(tick) > Self.suspensionSeconds ? (now.timeIntervalSince(tick), now) : s
        guard pause.0 > timeout / 2, now.timeIntervalSince(pause.1) < 2 * timeout + 1 else { return "" }
        return " (this process itself did not run for \(Int(pause.0)) s: it was stopped or its host froze, so the silence was its own)"
    }

    /// Records the step training has finished.
    func noteStep(_ step: Int) {
        state.withLock { $0.step = step }
    }

    /// Why the coordinator was lost during training, or nil while it is there.
    var lost: String? { state.withLock { $0.lost } }

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
        var lastTick = Date()
        var suspended = (seconds: 0.0, at: Date.distantPast)  // the last time this process did not run, and for how long
        var shutdown = false  // after the coordinator's shutdown, its closing connection is expected
        var answered = false  // the coordinator has sent something
        while true {
            let (pending, job, myRank, stop, label) = state.withLock { s in
                defer { s.outbox.removeAll() }
                return (s.outbox, s.jobID, s.rank, s.stopping, s.label)
            }
            // A pause of this loop longer than any wait in it: the process itself did not run.
            // Measured again right before a silence or an abort is reported, since the pause
            // may fall between here and there.
            func measure() -> String {
                let now = Date()
                if now.timeIntervalSince(lastTick) > Self.suspensionSeconds {
                    suspended = (now.timeIntervalSince(lastTick), now)
                    state.withLock { $0.suspended = suspended }
                }
                lastTick = now
                state.withLock { $0.tick = now }
                let timeout = self.timeout
                guard suspended.seconds > timeout / 2, now.timeIntervalSince(suspended.at) < 2 * timeout else { return "" }
                return " (this process itself did not run for \(Int(suspended.seconds)) s: it was stopped or its host froze, so the silence was its own)"
            }
            _ = measure()
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
            let timeout = self.timeout
            if let parts = try? socket.receiveMultipart(timeoutSeconds: 0.05), let last = parts.last {
                lastHeard = Date()
                answered = true
                do {
                    let (_, m) = try ControlMessage.decode(last.array, expectedJobID: job, source: "coordinator \(coordinator)")
                    switch m {
                    case .abort(let reason):
                        die("job aborted by the coordinator: \(reason)\(measure())")
                    case .restart(let reason):
                        restart(reason)
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
                    if lose("the coordinator at \(coordinator) closed its connection (its process ended or its host went down)") { return }
                case ZMQMonitor.disconnected where security == nil:
                    die("the coordinator at \(coordinator) closed the connection before answering: it may run with security (then give this worker --key) or be no Lockstep coordinator")
                default:
                    die("the secure handshake with the coordinator at \(coordinator) failed: check --coordinator-key (the coordinator's .pub) and that the coordinator runs with --key, not --insecure")
                }
            }
            if Date().timeIntervalSince(lastHeard) > timeout {
                let note = measure()
                if !note.isEmpty { die("nothing heard from the coordinator at \(coordinator) for \(Int(timeout)) s\(note)") }
                if lose("coordinator \(coordinator) unreachable from \(label) for \(Int(timeout)) s (it died, or the network between them is down)") { return }
            }
            if let parentPID, getppid() != parentPID {
                die("the launching process exited; stopping")
            }
        }
    }

    /// The coordinator is gone: before training, the worker stops (`die`); during
    /// training, `lost` records why and the thread ends (true) while training goes on.
    private func lose(_ reason: String) -> Bool {
        let training = state.withLock { s in
            if s.training { s.lost = reason }
            return s.training
        }
        guard training else { die(reason) }
        logLine("\(label): \(reason); training goes on without it, and this worker keeps its results itself")
        state.withLock { $0.stopped = true }
        return true
    }

    /// Starts this process again with its own arguments (the coordinator's `restart`):
    /// a worker blocked in a collective with a dead peer cannot be unwound safely, and a
    /// fresh process rejoins the job like any new worker.
    private func restart(_ reason: String) -> Never {
        FileHandle.standardError.write(Data("\(label): \(reason); restarting to rejoin the job\n".utf8))
        // The new process names the step this one reached, so the coordinator can count the steps lost.
        var kept: [String] = []
        var given = CommandLine.arguments.makeIterator()
        while let a = given.next() {
            if a == "--reached-step" { _ = given.next() } else { kept.append(a) }
        }
        kept += ["--reached-step", String(state.withLock { $0.step })]
        var arguments = kept.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &arguments)
        die("cannot restart this process (execv: \(String(cString: strerror(errno))))")
    }

    /// Ends the process at once: a worker blocked in a collective cannot be unwound safely.
    func die(_ reason: String) -> Never {
        FileHandle.standardError.write(Data("error: \(label): \(reason)\n".utf8))
        _exit(1)
    }
}
