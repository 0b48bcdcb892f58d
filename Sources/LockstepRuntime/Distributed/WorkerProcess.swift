import Foundation
import LockstepCollectives
import LockstepData
import LockstepKernels
import LockstepTransport

/// One rank of a distributed job: joins the coordinator, binds its data endpoint,
/// exchanges gradient shards directly with its peers and trains in lockstep.
public final class WorkerProcess {
    public struct Options: Sendable {
        /// The job this worker was started with: read from its config file (by hand) or
        /// from the launcher's job spec. Only its model hash and deadlines are used before
        /// the coordinator's assignment, which carries the job everyone trains.
        public var job: JobSpec
        public var coordinator: String
        public var threads: Int?
        /// Data endpoint to bind, e.g. tcp://0.0.0.0:0 (port 0: any free port) or ipc:///tmp/x.
        public var bind: String?
        /// Host name or address peers should use to reach this worker.
        public var advertise: String?
        public var requestedRank: Int?
        /// The launching process (`lockstep train --workers N`): the worker stops when it exits.
        public var parentPID: Int32?
        /// Set by a restart (`--reached-step`): the step the process before this one had finished.
        public var reachedStep: Int?

        public init(job: JobSpec, coordinator: String, threads: Int? = nil, bind: String? = nil,
                    advertise: String? = nil, requestedRank: Int? = nil, parentPID: Int32? = nil) {
            self.job = job
            self.coordinator = coordinator
            self.threads = threads
            self.bind = bind
            self.advertise = advertise
            self.requestedRank = requestedRank
            self.parentPID = parentPID
        }
    }

    let options: Options

    public init(options: Options) { self.options = options }

    public func run() throws {
        let local = options.job.config
        if let t = options.threads, t < 1 || t > 256 { throw LockstepError("--threads \(t): must be between 1 and 256") }
        let security = try local.security.resolve(endpoints: [options.coordinator, dataBind], role: "worker")
        let control = try ControlClient(coordinator: options.coordinator, timeout: local.timeoutSeconds,
                                        heartbeat: local.heartbeatSeconds, parentPID: options.parentPID, security: security)
        control.start()
        do {
            try train(local: local, control: control, security: security)
        } catch {
            let note = control.ownSilence()
            control.send(.error(message: "\(error)\(note)", final: error is CheckpointFailure ? true : nil))
            control.finish()
            throw LockstepError("\(control.label): \(error)\(note)")
        }
    }

    /// The data endpoint to bind: `--bind`, else any free port, on loopback when the coordinator is local.
    private var dataBind: String {
        options.bind ?? (isLoopback(options.coordinator) ? "tcp://127.0.0.1:0" : "tcp://0.0.0.0:0")
    }

    private func train(local: TrainingConfig, control: ControlClient, security: JobSecurity?) throws {
        let host = localHostName()
        control.send(.hello(.init(protocolVersion: Int(WireFrame.protocolVersion), modelHash: options.job.modelHash,
                                  host: host, pid: Int(getpid()), requestedRank: options.requestedRank,
                                  publicKey: security?.curve.keys.publicKey, reachedStep: options.reachedStep)))

        // Joining may wait for the other workers: the coordinator's heartbeats keep the deadline fresh.
        let assignment: ControlMessage.Assignment
        switch try control.next([.assign, .reject], within: max(local.timeoutSeconds, 120)) {
        case .assign(let a): assignment = a
        case .reject(let reason): throw LockstepError("refused by the coordinator: \(reason)")
        default: throw LockstepError("malformed assignment from the coordinator")
        }
        let (rank, world, job) = (assignment.rank, assignment.worldSize, assignment.jobID)
        guard rank >= 0, rank < world else { throw LockstepError("malformed assignment from the coordinator: rank \(rank) of \(world)") }
        control.setJob(job, rank: rank, timeout: assignment.job.config.timeoutSeconds)
        var config = assignment.job.config
        if let t = options.threads { config.threads = t }
        let pool = ThreadPool(threads: config.threads)

        let context = try ZMQContext()
        let bind = dataBind
        try EndpointCheck.validate(bind, flag: "--bind")
        let refusals = RateLimitedLog()
        let transport: EndpointTransport
        do {
            // No collective sends more than a ring chunk or a small-message buffer at once.
            let largest = max(config.chunkBytes, Communicator.defaultSmallMessageThreshold(worldSize: world),
                              Communicator.defaultSmallGatherThreshold(worldSize: world))
            transport = try EndpointTransports.bind(bind, rank: rank, worldSize: world, jobID: job, context: context,
                                                    timeoutSeconds: config.timeoutSeconds, maximumPayloadBytes: largest,
                                                    security: security?.curve) { refusals.note($0) }
        } catch {
            throw LockstepError("--bind \(bind): cannot bind the data endpoint (\(error))")
        }
        let address = advertised(transport.boundEndpoint)
        let files = assignment.job.files
        let say: (String) -> Void = { logLine("\(control.label): \($0)") }
        let resumePath = try files.resumePath(log: say)
        control.send(.endpoint(.init(address: address, resumeFrom: resumePath.map { ($0 as NSString).lastPathComponent })))
        guard case .peers(let table) = try control.next([.peers], within: config.timeoutSeconds), table.addresses.count == world else {
            throw LockstepError("malformed peer table from the coordinator")
        }
        try transport.connect(peers: table.addresses, hosts: table.hosts, keys: table.keys)
        let communicator = Communicator(transport: transport, chunkBytes: config.chunkBytes)
        let hosts = try HostHierarchy.make(config: config, table: table, rank: rank, jobID: job, base: communicator,
                                           transport: transport) { logLine("\(control.label): \($0)") }
        communicator.hierarchy = hosts?.hierarchy

        let (trainSet, testSet) = try DatasetLoader.load(config)
        let trainer = try Trainer(config: config, train: trainSet, test: testSet, communicator: communicator, pool: pool,
                                  trace: files.trace != nil)
        if let path = files.initFrom { try Checkpoint.initialize(trainer, from: path) }
        if let path = resumePath { try Checkpoint.resume(trainer, from: path) }
        let checkpoints = try files.checkpointSchedule(log: say)
        if rank == 0, let store = checkpoints?.store {
            try store.prepare()
            store.removeTemporaries()
        }
        checkpoints?.lastWritten = trainer.globalStep
        trainer.afterStep = { t in
            try checkpoints?.afterStep(t)
            try files.saveIfDue(t, log: say)
        }
        files.removeSaveTemporaries()
        logLine("\(control.label): \(host) data endpoint \(address); \(config.threads) thread(s); step mode \(config.stepMode.rawValue); optimizer state \(trainer.optimizer.stateFloatCount) floats (\(trainer.optimizerRange.count) of \(trainer.model.parameterCount) parameters)")

        let forwarder = MetricsForwarder(control: control, rank: rank)
        trainer.observer = forwarder
        try communicator.barrier()
        transport.peersConnected()  // every peer is connected (a shared-memory segment's file name can go)
        hosts?.local.peersConnected()
        control.trainingStarted()
        let final = try trainer.run()
        var lost = control.lost
        if lost == nil {
            control.send(.final(.init(report: final, optimizerStateFloats: trainer.optimizer.stateFloatCount,
                                      dataBytesSent: communicator.bytesSent, trace: trainer.tracer?.events ?? [])))
            logLine("\(control.label): finished \(final.steps) steps; parameter hash \(final.parameterHash); sent \(communicator.bytesSent) data bytes to peers")
            do {
                _ = try control.next([.shutdown], within: config.timeoutSeconds)
            } catch {
                lost = control.lost ?? "coordinator \(options.coordinator) unreachable from \(control.label) for \(Int(config.timeoutSeconds)) s after the final report"
            }
        }
        if let lost {
            // Nobody else will write the results: rank 0 keeps them.
            if rank == 0 { try keepResults(final, trainer: trainer, files: files, epochs: forwarder.epochs, lost: lost,
                                           checkpoint: checkpoints?.lastWritten.map { checkpoints!.store.dataPath(step: $0) }) }
            logLine("\(control.label): finished \(final.steps) steps without the coordinator; parameter hash \(final.parameterHash)")
        }
        control.finish()
        trainer.stopCommunication()
        hosts?.local.close()
        transport.close()
        // Without a coordinator's shutdown, this rank's last frames to its peers may
        // still be queued: the context's termination waits for them (the linger).
        if !context.terminate(within: 5) {
            logLine("\(control.label): data sockets still open 5 s after closing; exiting anyway")
        }
    }

    /// Writes the final metrics (every epoch this rank saw, then the final line) to
    /// `--metrics`, and the final model where `--save`/`--checkpoint-dir` did not.
    private func keepResults(_ final: FinalReport, trainer: Trainer, files: RunFiles, epochs: [EpochReport], lost: String,
                             checkpoint: String?) throws {
        var kept: [String] = []
        if let path = files.metrics {
            let metrics = try MetricsWriter(path: path)
            for e in epochs { metrics.epoch(e, extra: ["workers": trainer.worldSize]) }
            metrics.final(final, extra: ["workers": trainer.worldSize, "coordinator": "lost: \(lost)", "written_by": "rank 0"])
            kept.append("metrics in \(path)")
        }
        if let checkpoint {
            kept.append("the final checkpoint \(checkpoint)")
        } else if let path = files.save {
            kept.append("the final checkpoint \(path)")
        } else {
            let path = "lockstep-final-\(getpid()).safetensors"
            let tensors = trainer.model.stateTensors.map { name, slot, _ in
                SafeTensors.Entry(name: name, shape: slot.shape, values: Array(UnsafeBufferPointer(start: slot.pointer, count: slot.count)))
            }
            try SafeTensors.write(entries: tensors, metadata: ["format": "pt"], to: path)
            kept.append("the final model \(path) (no --save or --checkpoint-dir was given)")
        }
        logLine("rank 0: the coordinator is gone (\(lost)); kept " + kept.joined(separator: " and "))
    }

    private func isLoopback(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") { return true }
        return RouteAddress.hostAndPort(of: endpoint).map { RouteAddress.isLoopback($0.host) } ?? false
    }

    /// The bound endpoint with a wildcard address replaced by the address peers
    /// should dial: `--advertise` if given, else the address of the interface that
    /// routes to the coordinator (never a loopback address when the coordinator is
    /// remote), else the host name.
    private func advertised(_ bound: String) -> String {
        guard let (host, port) = RouteAddress.hostAndPort(of: bound) else { return bound }
        if let a = options.advertise { return "tcp://\(a):\(port)" }
        guard host == "0.0.0.0" || host == "*" || host == "::" else { return bound }
        if let c = RouteAddress.hostAndPort(of: options.coordinator), let route = RouteAddress.towards(host: c.host, port: c.port),
           RouteAddress.isLoopback(c.host) || !RouteAddress.isLoopback(route) {
            return "tcp://\(route):\(port)"
        }
        return "tcp://\(localHostName()):\(port)"
    }
}

/// Forwards a worker's progress to the coordinator: every rank's step times and
/// rank 0's steps (at most twice a second), and rank 0's epochs.
final class MetricsForwarder: TrainingObserver {
    let control: ControlClient
    let rank: Int
    /// Every epoch report of this run (rank 0 writes them when the coordinator is gone).
    private(set) var epochs: [EpochReport] = []
    private var lastStep = Date.distantPast
    /// Step times since the last timing report.
    private var window = RankTiming(rank: 0, steps: 0, stepSeconds: 0, computeSeconds: 0, waitSeconds: 0, communicationSeconds: 0)

    init(control: ControlClient, rank: Int) {
        self.control = control
        self.rank = rank
    }

    func stepCompleted(_ report: StepReport) {
        control.noteStep(report.globalStep)
        window.steps += 1
        window.stepSeconds += report.seconds
        window.computeSeconds += report.computeSeconds
        window.waitSeconds += report.waitSeconds
        window.communicationSeconds += report.communicationSeconds
        guard Date().timeIntervalSince(lastStep) >= 0.5 else { return }
        lastStep = Date()
        let n = Double(window.steps)
        control.send(.timing(RankTiming(rank: rank, steps: window.steps, stepSeconds: window.stepSeconds / n,
                                        computeSeconds: window.computeSeconds / n, waitSeconds: window.waitSeconds / n,
                                        communicationSeconds: window.communicationSeconds / n)))
        window = RankTiming(rank: rank, steps: 0, stepSeconds: 0, computeSeconds: 0, waitSeconds: 0, communicationSeconds: 0)
        if rank == 0 { control.send(.step(report)) }
    }

    func epochCompleted(_ report: EpochReport) {
        guard rank == 0 else { return }
        epochs.append(report)
        control.send(.epoch(report))
    }
}
