import Foundation
import LockstepTransport

/// The control plane of a job: rendezvous, rank assignment, the rank → address
/// table, liveness, progress, metrics and shutdown. Gradient bytes never pass
/// through it: it only sees small JSON control messages.
///
/// One thread, one ROUTER socket, a poll loop with a short tick: every wait is
/// measured against a deadline (`joinTimeout` before a worker is known,
/// `config.timeoutSeconds` after its last message).
public final class Coordinator {
    struct Member {
        var identity: [UInt8]
        var host: String
        var pid: Int
        var requestedRank: Int?
        var rank: Int = -1
        var endpoint: String?
        var lastSeen: Date
        var final: FinalReport?
        var trace: [Tracer.Event] = []
        var optimizerStateFloats: Int?
        /// Where its control connection comes from (ZeroMQ's peer address).
        var controlAddress: String?
        /// That connection's descriptor: a `ZMQMonitor` event about it means it closed.
        var controlDescriptor: Int32?
        /// The CurveZMQ public key it authenticated with (with security).
        var publicKey: String?

        /// "rank 1 (n3, 10.88.0.3:6001)": rank, host, and the data address peers dial
        /// (before the table: where its control connection comes from, or its pid).
        var label: String {
            let address = endpoint.map { $0.hasPrefix("tcp://") ? String($0.dropFirst(6)) : $0 } ?? controlAddress ?? "pid \(pid)"
            return (rank >= 0 ? "rank \(rank)" : "worker") + " (\(host), \(address))"
        }
    }

    public let job: JobSpec
    public var config: TrainingConfig { job.config }
    public var files: RunFiles { job.files }
    public let bindEndpoint: String
    public let workers: Int
    public var joinTimeout: Double = 120
    /// The launching process (`lockstep train --workers N`): when it is gone, the job stops.
    public var parentPID: Int32?

    private let context: ZMQContext
    private let socket: ZMQSocket
    /// Closed connections of `socket`: a worker whose process died is known at once.
    private let connections: ZMQMonitor
    private let jobID: UInt64
    private let modelHash: String
    private var members: [Member] = []
    private var controlBytes = 0
    private var lastHeartbeat = Date.distantPast
    private var metrics: MetricsWriter?
    private var board: TensorBoardWriter?
    private var prometheus: PrometheusEndpoint?
    /// The figures served to Prometheus, by name.
    private var figures: [String: Double] = [:]
    private var progress: ConsoleProgress?
    private var lastStep = 0
    private var finalEpoch: EpochReport?
    /// Refused connections and workers and dropped frames: logged, at a bounded rate.
    private let refusals: RateLimitedLog
    /// CurveZMQ keys (nil: plain TCP, on loopback or with --insecure).
    private let security: JobSecurity?
    /// Admits allowlisted keys on `socket` (with `security`).
    private let authenticator: ZAPHandler?

    /// Workers hash the config file they were started with and then train with the
    /// settings this coordinator assigns, so their hash is checked against
    /// `job.modelHash` (the file's, before command-line overrides).
    public init(job: JobSpec, bind: String, workers: Int) throws {
        guard workers >= 1 else { throw LockstepError("--workers \(workers): must be at least 1") }
        self.job = job
        self.bindEndpoint = bind
        self.workers = workers
        modelHash = job.modelHash
        jobID = UInt64.random(in: 1...UInt64.max)
        try EndpointCheck.validate(bind, flag: "--bind")
        let security = try job.config.security.resolve(endpoints: [bind], role: "coordinator")
        let context = try ZMQContext()
        let refusals = RateLimitedLog()
        (self.security, self.context, self.refusals) = (security, context, refusals)
        authenticator = try security.map { try ZAPHandler(context: context, allowed: $0.curve.allowed, owner: "coordinator") { refusals.note($0) } }
        socket = try ZMQSocket(context: context, kind: .router)
        try socket.setMaximumMessageBytes(ControlMessage.maximumBytes)
        try security?.curve.makeServer(socket)
        // A connection that never finishes its handshake is dropped (with keys, makeServer sets the same).
        try socket.setHandshakeTimeout(seconds: 10)
        connections = try ZMQMonitor(socket, events: ZMQMonitor.disconnected | ZMQMonitor.handshakeFailed)
        do {
            try socket.bind(bind)
        } catch {
            throw LockstepError("--bind \(bind): cannot bind the coordinator (\(error)); use a free port, e.g. tcp://0.0.0.0:5555")
        }
        try files.checkOutputs()
        metrics = try files.metrics.map { try MetricsWriter(path: $0) }
        board = try files.tensorboard.map { try TensorBoardWriter(directory: $0) }
        prometheus = try files.metricsPort.map { try PrometheusEndpoint(port: $0) }
    }

    deinit {
        authenticator?.stop()
        prometheus?.stop()
    }

    /// Publishes `values` (merged into the figures so far) to Prometheus.
    private func publish(_ values: [String: Double]) {
        guard let prometheus else { return }
        figures.merge(values) { _, new in new }
        figures["workers"] = Double(workers)
        prometheus.update(figures.keys.sorted().map { ($0, Self.figureHelp[$0] ?? $0, figures[$0]!) })
    }

    private static let figureHelp = [
        "workers": "Workers in the job.", "step": "Optimizer steps done.", "epoch": "Epochs done.",
        "loss": "Training loss (rank 0's slice, last step).", "learning_rate": "Learning rate of the last step.",
        "epoch_loss": "Mean training loss of the last epoch.", "train_accuracy": "Training accuracy of the last epoch.",
        "test_accuracy": "Test accuracy after the last epoch.", "samples_per_second": "Training throughput of the last epoch.",
    ]

    /// The address workers connect to (the bound one, with port 0 resolved).
    public var endpoint: String { (try? socket.lastEndpoint) ?? bindEndpoint }

    /// Runs the job to its end. Throws on any failure after telling every worker to stop.
    public func run() throws {
        if let prometheus { logLine("coordinator: Prometheus metrics on http://0.0.0.0:\(prometheus.port)/metrics") }
        publish([:])
        logLine("coordinator: listening on \(endpoint), waiting for \(workers) worker(s); job \(String(jobID, radix: 16))")
        do {
            try rendezvous()
            try supervise()
        } catch {
            broadcast(abortWith: "\(error)")
            throw error
        }
    }

    // MARK: Phases

    private func rendezvous() throws {
        let start = Date()
        // 1. hello from every worker.
        while members.count < workers {
            guard Date().timeIntervalSince(start) < joinTimeout else {
                throw LockstepError("only \(members.count) of \(workers) workers joined within \(Int(joinTimeout)) s; start the missing lockstep-worker processes with --coordinator \(endpoint)")
            }
            try pump()
        }
        // Ranks: requested ones where free and unique, the rest in join order.
        var taken = Set<Int>()
        for i in members.indices {
            if let r = members[i].requestedRank, r >= 0, r < workers, !taken.contains(r) {
                members[i].rank = r
                taken.insert(r)
            }
        }
        var next = 0
        for i in members.indices where members[i].rank < 0 {
            while taken.contains(next) { next += 1 }
            members[i].rank = next
            taken.insert(next)
        }
        members.sort { $0.rank < $1.rank }
        // Key file paths are each process's own business.
        var shared = job
        shared.config.security = SecurityConfig()
        for m in members {
            send(.assign(.init(rank: m.rank, worldSize: workers, jobID: jobID, job: shared)), to: m.identity)
            logLine("coordinator: rank \(m.rank) is \(m.host) (pid \(m.pid)\(m.controlAddress.map { ", from \($0)" } ?? ""))")
        }
        // 2. every worker's data endpoint, then the table.
        while members.contains(where: { $0.endpoint == nil }) { try pump() }
        let table = ControlMessage.peers(.init(addresses: members.map { $0.endpoint! }, hosts: members.map(\.host),
                                               keys: security == nil ? nil : members.map { $0.publicKey ?? "" }))
        for m in members { send(table, to: m.identity) }
        logLine("coordinator: peers: " + members.map(\.label).joined(separator: ", "))
        progress = ConsoleProgress(totalSteps: plannedSteps(), prefix: "")
        progress?.onStep = { [weak self] r in
            self?.lastStep = r.globalStep
            self?.board?.step(r)
            self?.publish(["step": Double(r.globalStep), "loss": r.loss, "learning_rate": Double(r.learningRate)])
        }
        progress?.onEpoch = { [weak self] r in
            self?.metrics?.epoch(r, extra: ["workers": self?.workers ?? 0])
            self?.board?.epoch(r, step: self?.lastStep ?? 0)
            self?.publish(["epoch": Double(r.epoch), "epoch_loss": r.loss, "train_accuracy": r.trainAccuracy,
                           "test_accuracy": r.testAccuracy, "samples_per_second": r.samplesPerSecond])
        }
    }

    private func supervise() throws {
        while members.contains(where: { $0.final == nil }) { try pump() }
        let hashes = members.map { $0.final!.parameterHash }
        let identical = Set(hashes).count == 1
        let final = members[0].final!
        let perStep = Double(controlBytes) / Double(max(final.steps, 1))
        metrics?.final(final, extra: [
            "workers": workers, "parameter_hashes": hashes, "parameters_identical": identical,
            "coordinator_bytes_per_step": perStep, "step_mode": config.stepMode.rawValue,
            "optimizer_state_floats_per_worker": members.map { $0.optimizerStateFloats ?? 0 },
        ])
        broadcast(.shutdown)
        if let path = files.trace { try Tracer.write(members.flatMap(\.trace), workers: workers, to: path) }
        logLine(String(format: "coordinator: done: test accuracy %.2f%%, %.0f samples/s, %d steps, coordinator traffic %.0f bytes/step",
                       100 * final.testAccuracy, final.samplesPerSecond, final.steps, perStep))
        guard identical else {
            throw LockstepError("parameters differ between workers after the run: hashes \(hashes.joined(separator: ", "))")
        }
        logLine("coordinator: parameters bitwise identical on all \(workers) workers (hash \(hashes[0]))")
    }

    private func plannedSteps() -> Int {
        // The workers compute the exact figure; this is for the ETA only.
        let perWorker = config.batchSize == 0 ? 1 : max(1, config.batchSize * workers)
        let samples = config.trainSamples
        let microBatches = config.batchSize == 0 ? 1 : (samples + perWorker - 1) / perWorker
        let perEpoch = (microBatches + config.accumulateSteps - 1) / config.accumulateSteps
        return min(config.epochs * perEpoch, config.maxSteps ?? Int.max)
    }

    // MARK: Messages

    /// Waits one tick for a message, handles it, sends heartbeats and checks deadlines.
    private func pump() throws {
        try checkConnections()
        if let parts = try socket.receiveMultipart(timeoutSeconds: 0.05), parts.count == 2 {
            let identity = parts[0].array
            let bytes = parts[1].array
            controlBytes += bytes.count
            let member = members.first(where: { $0.identity == identity })
            let source = member?.label ?? parts[1].peerAddress ?? "an unknown peer"
            // A frame that does not decode is answered and dropped, and so is one of
            // another job (0: a worker's frames before its assignment); a member's
            // failure (thrown by `handle`) stops the job.
            var decoded: ControlMessage?
            do {
                let (frame, message) = try ControlMessage.decode(bytes, expectedJobID: nil, source: source)
                if frame.header.jobID == 0 || frame.header.jobID == jobID {
                    decoded = message
                } else {
                    refusals.note("coordinator: a \(message.kind.rawValue) frame of another job (\(String(frame.header.jobID, radix: 16))) from \(source); ignored")
                }
            } catch let e as LockstepError {
                refusals.note("coordinator: \(e.description); ignored")
                send(.reject(reason: "coordinator rejected a frame: \(e.description)"), to: identity)
            }
            if let decoded {
                try handle(decoded, from: identity, address: parts[1].peerAddress, descriptor: parts[1].sourceDescriptor,
                           key: parts[1].userID)
            }
        }
        let now = Date()
        if now.timeIntervalSince(lastHeartbeat) >= config.heartbeatSeconds {
            broadcast(.heartbeat)
            lastHeartbeat = now
        }
        if let parentPID, getppid() != parentPID {
            throw LockstepError("the launching process (pid \(parentPID)) is gone; the job is stopped")
        }
        for m in members where m.final == nil && now.timeIntervalSince(m.lastSeen) > config.timeoutSeconds {
            let who = "worker \(m.label)"
            throw LockstepError("\(who) stopped answering: nothing heard for \(Int(config.timeoutSeconds)) s; the job is stopped")
        }
    }

    /// Handles the connection events waiting: a member's closed connection stops the
    /// job. Events name descriptors, which the kernel reuses, so they are read before
    /// any message (and again before a new worker is admitted): a closed connection's
    /// event is queued before its descriptor can belong to a new one.
    private func checkConnections() throws {
        while let event = try connections.next() {
            if event.kind != ZMQMonitor.disconnected {
                refusals.note("coordinator: a connection failed its security handshake (no key, a key that is not allowed, or not a Lockstep process); dropped")
                continue
            }
            if let m = members.first(where: { $0.controlDescriptor == Int32(bitPattern: event.value) }), m.final == nil {
                throw LockstepError("worker \(m.label) closed its connection (its process ended or its host went down); the job is stopped")
            }
        }
    }

    /// `key`: the CurveZMQ public key the sender authenticated with (nil without security).
    private func handle(_ m: ControlMessage, from identity: [UInt8], address: String?, descriptor: Int32?, key: String?) throws {
        let index = members.firstIndex { $0.identity == identity }
        if let index { members[index].lastSeen = Date() }
        switch m {
        case .hello(let hello):
            guard index == nil else { return }
            if hello.protocolVersion != Int(WireFrame.protocolVersion) {
                reject(identity, "protocol version \(hello.protocolVersion) differs from the coordinator's \(WireFrame.protocolVersion); run the same Lockstep build everywhere")
                return
            }
            if hello.modelHash != modelHash {
                reject(identity, "model/config hash \(hello.modelHash) differs from the coordinator's \(modelHash); start every worker with the coordinator's config file")
                return
            }
            guard members.count < workers else {
                reject(identity, "the job already has its \(workers) workers")
                return
            }
            try checkConnections()  // before `descriptor` is taken as this worker's
            if security != nil, key == nil || hello.publicKey != key {
                reject(identity, "its hello names public key \(hello.publicKey ?? "none"), but its connection authenticated as \(key ?? "none"); start every worker with its own --key")
                return
            }
            members.append(Member(identity: identity, host: hello.host, pid: hello.pid, requestedRank: hello.requestedRank,
                                  lastSeen: Date(), controlAddress: address, controlDescriptor: descriptor, publicKey: key))
            logLine("coordinator: worker \(members.count)/\(workers) joined from \(hello.host) (pid \(hello.pid))")
        case .endpoint(let e):
            guard let index else { return }
            members[index].endpoint = e.address
        case .heartbeat:
            break
        case .step(let r):
            if let index, members[index].rank == 0 { progress?.stepCompleted(r) }
        case .epoch(let r):
            if let index, members[index].rank == 0 { progress?.epochCompleted(r) }
        case .final(let f):
            guard let index else { return }
            members[index].final = f.report
            members[index].trace = f.trace
            members[index].optimizerStateFloats = f.optimizerStateFloats
        case .error(let message):
            // Only members of the job can stop it: a refused worker's or a stranger's error is logged.
            guard let index else {
                refusals.note("coordinator: an error message from \(address ?? "a process") that is not in the job: \(message.prefix(200)); ignored")
                return
            }
            throw LockstepError("worker \(members[index].label) failed: \(message)")
        case .assign, .reject, .peers, .abort, .shutdown:
            logLine("coordinator: unexpected \(m.kind.rawValue) message from a worker; ignored")
        }
    }

    private func reject(_ identity: [UInt8], _ reason: String) {
        refusals.note("coordinator: refused a worker: \(reason)")
        send(.reject(reason: reason), to: identity)
    }

    private func send(_ m: ControlMessage, to identity: [UInt8]) {
        let frame = m.frame(jobID: jobID, rank: nil)
        controlBytes += frame.count
        _ = try? socket.sendMultipart([identity, frame])
    }

    private func broadcast(_ m: ControlMessage) {
        for member in members { send(m, to: member.identity) }
    }

    private func broadcast(abortWith reason: String) {
        broadcast(.abort(reason: reason))
        // Give the abort a moment to leave before the socket closes.
        Thread.sleep(forTimeInterval: 0.2)
    }
}
