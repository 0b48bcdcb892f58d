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
        /// The checkpoint file it resumes from ("" before it says).
        var resumeFrom: String? = ""
        /// After a restart: the step its previous process had finished.
        var reachedStep: Int?

        /// "rank 1 (n3, 10.88.0.3:6001)": rank, host, and the data address peers dial
        /// (before the table: where its control connection comes from, or its pid).
        var label: String {
            let address = endpoint.map { $0.hasPrefix("tcp://") ? String($0.dropFirst(6)) : $0 } ?? controlAddress ?? "pid \(pid)"
            return (rank >= 0 ? "rank \(rank)" : "worker") + " (\(host), \(address))"
        }
    }

    /// A member of the running job is gone: a restart (or the end of the job) follows.
    struct Lost: Error, CustomStringConvertible {
        var member: Member
        var cause: String
        var description: String { "worker \(member.label) \(cause)" }
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
    /// Changes with every restart: frames of an earlier round are ignored.
    private var jobID: UInt64
    /// Workers in the current round (`workers`, or fewer after losing some).
    private var worldSize: Int
    /// Restarts so far, and the loss that caused the latest (logged once the job resumes).
    private var restarts = 0
    private var lastLoss: Lost?
    /// New workers are admitted only while (re)forming the job.
    private var admitting = true
    /// Workers that said hello while the job ran (a replacement faster than the news of
    /// the loss): they join at the next restart.
    private var parked: [Member] = []
    private var stragglers: StragglerMonitor
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
        worldSize = workers
        stragglers = StragglerMonitor(factor: job.config.stragglerFactor)
        modelHash = job.modelHash
        if job.config.restartsAllowed(workers: workers) > 0, job.files.checkpointDir == nil {
            throw LockstepError("--max-restarts/--min-workers need --checkpoint-dir DIR (a directory every host shares): a restart resumes from the last checkpoint")
        }
        if let m = job.config.minWorkers, m > workers {
            throw LockstepError("--min-workers \(m): more than the job's \(workers) workers")
        }
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
        figures["workers"] = Double(worldSize)
        figures["restarts"] = Double(restarts)
        prometheus.update(figures.keys.sorted().map { ($0, Self.figureHelp[String($0.prefix { $0 != "{" })] ?? $0, figures[$0]!) })
    }

    private static let figureHelp = [
        "workers": "Workers in the job now.", "restarts": "Restarts after a lost worker.", "step": "Optimizer steps done.", "epoch": "Epochs done.",
        "loss": "Training loss (rank 0's slice, last step).", "learning_rate": "Learning rate of the last step.",
        "epoch_loss": "Mean training loss of the last epoch.", "train_accuracy": "Training accuracy of the last epoch.",
        "test_accuracy": "Test accuracy after the last epoch.",
        "rank_step_seconds": "A rank's mean step time over its last report.",
        "rank_compute_seconds": "A rank's mean forward and backward time per step.",
        "rank_wait_seconds": "A rank's mean time per step waiting for gradient synchronization (its peers).",
        "rank_communication_seconds": "A rank's mean communication-thread busy time per step.", "samples_per_second": "Training throughput of the last epoch.",
    ]

    /// The address workers connect to (the bound one, with port 0 resolved).
    public var endpoint: String { (try? socket.lastEndpoint) ?? bindEndpoint }

    /// Runs the job to its end. Throws on any failure after telling every worker to stop.
    /// A lost worker, while restarts are left, restarts the job instead (`restart(after:)`).
    public func run() throws {
        if let prometheus { logLine("coordinator: Prometheus metrics on http://0.0.0.0:\(prometheus.port)/metrics") }
        publish([:])
        logLine("coordinator: listening on \(endpoint), waiting for \(workers) worker(s); job \(String(jobID, radix: 16))")
        while true {
            do {
                try rendezvous()
                try supervise()
                return
            } catch let lost as Lost {
                let allowed = config.restartsAllowed(workers: workers)
                guard restarts < allowed else {
                    let reason = "\(lost); the job is stopped" + (allowed > 0 ? " (all \(allowed) restarts are used)" : "")
                    broadcast(abortWith: reason)
                    throw LockstepError(reason)
                }
                restart(after: lost)
            } catch {
                broadcast(abortWith: "\(error)")
                throw error
            }
        }
    }

    // MARK: Phases

    /// Admits workers, assigns ranks and sends the peer table. The first time it waits
    /// `joinTimeout` for all of them; after a restart `rejoinTimeoutSeconds`, then goes
    /// on with the workers there if they are at least `minWorkers`.
    private func rendezvous() throws {
        let start = Date()
        let first = restarts == 0
        let limit = first ? joinTimeout : config.rejoinTimeoutSeconds
        let minimum = first ? workers : (config.minWorkers ?? workers)
        admitting = true
        try checkConnections()
        for m in parked where members.count < workers { members.append(m) }
        parked.removeAll()
        // 1. hello from every worker.
        while members.count < workers {
            if Date().timeIntervalSince(start) >= limit {
                if members.count >= minimum { break }
                if first {
                    throw LockstepError("only \(members.count) of \(workers) workers joined within \(Int(joinTimeout)) s; start the missing lockstep-worker processes with --coordinator \(endpoint)")
                }
                throw LockstepError("after restart \(restarts), only \(members.count) of \(workers) workers rejoined within \(Int(limit)) s, fewer than --min-workers \(minimum); the job is stopped (its last checkpoint is in \(files.checkpointDir ?? "?"))")
            }
            try pump()
        }
        admitting = false
        worldSize = members.count
        // Ranks: requested ones where free and unique, the rest in join order.
        var taken = Set<Int>()
        for i in members.indices {
            if let r = members[i].requestedRank, r >= 0, r < worldSize, !taken.contains(r) {
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
        if !first { shared.files.resume = RunFiles.resumeAuto }  // checked: restarts need a checkpoint directory
        for m in members {
            send(.assign(.init(rank: m.rank, worldSize: worldSize, jobID: jobID, job: shared)), to: m.identity)
            logLine("coordinator: rank \(m.rank) is \(m.host) (pid \(m.pid)\(m.controlAddress.map { ", from \($0)" } ?? ""))")
        }
        // 2. every worker's data endpoint, then the table.
        while members.contains(where: { $0.endpoint == nil }) { try pump() }
        let resumes = members.map { $0.resumeFrom ?? "none" }
        guard Set(resumes).count == 1 else {
            throw LockstepError("the workers would resume from different checkpoints (" + members.map { "rank \($0.rank): \($0.resumeFrom ?? "none")" }.joined(separator: ", ") + "); --checkpoint-dir must be one directory that every host shares")
        }
        let table = ControlMessage.peers(.init(addresses: members.map { $0.endpoint! }, hosts: members.map(\.host),
                                               keys: security == nil ? nil : members.map { $0.publicKey ?? "" }))
        for m in members { send(table, to: m.identity) }
        logLine("coordinator: peers: " + members.map(\.label).joined(separator: ", "))
        if let loss = lastLoss { resumed(after: loss, from: members[0].resumeFrom) }
        stragglers = StragglerMonitor(factor: config.stragglerFactor)
        progress = ConsoleProgress(totalSteps: plannedSteps(), prefix: "")
        progress?.onStep = { [weak self] r in
            self?.lastStep = r.globalStep
            self?.board?.step(r)
            self?.publish(["step": Double(r.globalStep), "loss": r.loss, "learning_rate": Double(r.learningRate)])
        }
        progress?.onEpoch = { [weak self] r in
            guard let self else { return }
            var extra: [String: Any] = ["workers": worldSize, "restarts": restarts]
            extra.merge(stragglers.metricsFields) { _, new in new }
            metrics?.epoch(r, extra: extra)
            board?.epoch(r, step: lastStep)
            publish(["epoch": Double(r.epoch), "epoch_loss": r.loss, "train_accuracy": r.trainAccuracy,
                     "test_accuracy": r.testAccuracy, "samples_per_second": r.samplesPerSecond])
        }
    }

    /// A member is gone and restarts are left: the survivors start again and rejoin
    /// (`rendezvous`), then resume from the last checkpoint.
    private func restart(after lost: Lost) {
        restarts += 1
        let allowed = config.restartsAllowed(workers: workers)
        let survivors = members.filter { $0.identity != lost.member.identity }
        logLine("coordinator: restart \(restarts) of \(allowed): \(lost); last step reported \(lastStep); the \(survivors.count) other worker(s) restart, and the job waits up to \(Int(config.rejoinTimeoutSeconds)) s for \(workers) workers (at least \(config.minWorkers ?? workers))")
        for m in survivors { send(.restart(reason: "\(lost) (seen by the coordinator)"), to: m.identity) }
        // A frozen worker reads this when it runs again.
        send(.abort(reason: "this worker was removed from the job: \(lost.cause)"), to: lost.member.identity)
        members.removeAll()
        lastLoss = lost
        jobID = UInt64.random(in: 1...UInt64.max)
        progress = nil
        publish(["restarts": Double(restarts)])
    }

    /// Logs and records a restart once the job runs again: cause, whom, steps lost.
    private func resumed(after loss: Lost, from checkpoint: String?) {
        let name = checkpoint ?? "none"
        let step = name.hasPrefix("step-") ? Int(name.dropFirst(5).prefix(8)) ?? 0 : 0
        let reached = max(lastStep, members.compactMap(\.reachedStep).max() ?? 0)
        let lostSteps = max(0, reached - step)
        logLine("coordinator: restart \(restarts): resumed with \(worldSize) workers from step \(step) (\(name)); \(lostSteps) step(s) lost (the job had reached step \(reached))")
        metrics?.write(["event": "restart", "restart": restarts, "cause": loss.cause, "rank": loss.member.rank, "host": loss.member.host,
                        "address": loss.member.endpoint ?? "", "resumed_from_step": step, "steps_lost": lostSteps, "workers": worldSize])
        lastLoss = nil
        publish(["restarts": Double(restarts), "workers": Double(worldSize)])
    }

    private func supervise() throws {
        while members.contains(where: { $0.final == nil }) { try pump() }
        let hashes = members.map { $0.final!.parameterHash }
        let identical = Set(hashes).count == 1
        let final = members[0].final!
        let perStep = Double(controlBytes) / Double(max(final.steps, 1))
        var extra: [String: Any] = [
            "workers": worldSize, "parameter_hashes": hashes, "parameters_identical": identical,
            "coordinator_bytes_per_step": perStep, "step_mode": config.stepMode.rawValue,
            "optimizer_state_floats_per_worker": members.map { $0.optimizerStateFloats ?? 0 }, "restarts": restarts,
        ]
        extra.merge(stragglers.metricsFields) { _, new in new }
        metrics?.final(final, extra: extra)
        broadcast(.shutdown)
        for m in parked { send(.reject(reason: "the job has finished"), to: m.identity) }
        if let path = files.trace { try Tracer.write(members.flatMap(\.trace), workers: worldSize, to: path) }
        logLine(String(format: "coordinator: done: test accuracy %.2f%%, %.0f samples/s, %d steps, coordinator traffic %.0f bytes/step",
                       100 * final.testAccuracy, final.samplesPerSecond, final.steps, perStep))
        guard identical else {
            throw LockstepError("parameters differ between workers after the run: hashes \(hashes.joined(separator: ", "))")
        }
        logLine("coordinator: parameters bitwise identical on all \(worldSize) workers (hash \(hashes[0]))" + (restarts > 0 ? " after \(restarts) restart(s)" : ""))
    }

    private func plannedSteps() -> Int {
        // The workers compute the exact figure; this is for the ETA only.
        let perWorker = config.batchSize == 0 ? 1 : max(1, config.batchSize * worldSize)
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
        let silent = members.indices.filter { members[$0].final == nil && now.timeIntervalSince(members[$0].lastSeen) > config.timeoutSeconds }
        if !silent.isEmpty {
            let seconds = Int(config.timeoutSeconds)
            // Silences end a heartbeat apart: every member silent for half the deadline is this process's own link.
            let half = members.allSatisfy { $0.final != nil || now.timeIntervalSince($0.lastSeen) > config.timeoutSeconds / 2 }
            if half, members.count > 1 {
                throw LockstepError("nothing heard from any of the \(members.count) workers for \(seconds) s: this coordinator's own network link is likely down (or every worker host froze); the job is stopped")
            }
            try memberLost(silent[0], "was silent for \(seconds) s (nothing heard from it): it is frozen or stopped, or its network link is down")
        }
    }

    /// A member is gone: while the job is (re)forming it is dropped; while it runs, `Lost` ends the round.
    private func memberLost(_ index: Int, _ cause: String) throws {
        let lost = Lost(member: members[index], cause: cause)
        guard admitting else { throw lost }
        logLine("coordinator: \(lost); it is dropped before the job starts")
        members.remove(at: index)
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
            parked.removeAll { $0.controlDescriptor == Int32(bitPattern: event.value) }
            if let i = members.firstIndex(where: { $0.controlDescriptor == Int32(bitPattern: event.value) }), members[i].final == nil {
                try memberLost(i, "closed its connection (its process ended or its host went down)")
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
            if security != nil, key == nil || hello.publicKey != key {
                reject(identity, "its hello names public key \(hello.publicKey ?? "none"), but its connection authenticated as \(key ?? "none"); start every worker with its own --key")
                return
            }
            let newcomer = Member(identity: identity, host: hello.host, pid: hello.pid, requestedRank: hello.requestedRank,
                                  lastSeen: Date(), controlAddress: address, controlDescriptor: descriptor, publicKey: key,
                                  reachedStep: hello.reachedStep)
            let parking = restarts < config.restartsAllowed(workers: workers) && parked.count < workers
            do {
                try checkConnections()  // before `descriptor` is taken as this worker's
            } catch let lost as Lost {
                // A replacement faster than the news of the loss it replaces: it joins the restart.
                if parking { parked.append(newcomer) }
                throw lost
            }
            if !admitting, parking {
                parked.append(newcomer)
                logLine("coordinator: a worker from \(hello.host) (pid \(hello.pid)) waits for the next restart to join")
                return
            }
            guard admitting, members.count < workers else {
                reject(identity, admitting ? "the job already has its \(workers) workers"
                       : "the job already has its \(worldSize) workers and runs; a worker joins only while the job forms or restarts")
                return
            }
            members.append(newcomer)
            logLine("coordinator: worker \(members.count)/\(workers) joined from \(hello.host) (pid \(hello.pid))" + (restarts > 0 ? " (restart \(restarts))" : ""))
        case .endpoint(let e):
            guard let index else { return }
            members[index].endpoint = e.address
            members[index].resumeFrom = e.resumeFrom
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
        case .error(let message, let final):
            // Only members of the job can stop it: a refused worker's or a stranger's error is logged.
            guard let index else {
                refusals.note("coordinator: an error message from \(address ?? "a process") that is not in the job: \(message.prefix(200)); ignored")
                return
            }
            if final == true { throw LockstepError("worker \(members[index].label) failed: \(message)") }
            try memberLost(index, "failed: \(message)")
        case .timing(let t):
            guard let index, t.rank == members[index].rank else { return }
            if let warning = stragglers.record(t, label: members[index].label) { logLine("coordinator: warning: \(warning)") }
            if members[index].rank == 0 { progress?.rankTimes = stragglers.summary }
            publish(stragglers.figures)
            for (name, value) in [("step_ms", t.stepSeconds), ("compute_ms", t.computeSeconds), ("wait_ms", t.waitSeconds),
                                  ("communication_ms", t.communicationSeconds)] {
                board?.scalar("rank\(t.rank)/\(name)", 1000 * value, step: lastStep)
            }
        case .assign, .reject, .peers, .abort, .shutdown, .restart:
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
        for m in parked { send(.abort(reason: reason), to: m.identity) }
        // Give the abort a moment to leave before the socket closes.
        Thread.sleep(forTimeInterval: 0.2)
    }
}
