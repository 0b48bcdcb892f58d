import Foundation
import LockstepCollectives
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
            control.send(.error(message: "\(error)"))
            control.finish()
            throw LockstepError("\(control.label): \(error)")
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
                                  publicKey: security?.curve.keys.publicKey)))

        // Joining may wait for the other workers: the coordinator's heartbeats keep the deadline fresh.
        let assignment: ControlMessage.Assignment
        switch try control.next([.assign, .reject], within: max(local.timeoutSeconds, 120)) {
        case .assign(let a): assignment = a
        case .reject(let reason): throw LockstepError("refused by the coordinator: \(reason)")
        default: throw LockstepError("malformed assignment from the coordinator")
        }
        let (rank, world, job) = (assignment.rank, assignment.worldSize, assignment.jobID)
        guard rank >= 0, rank < world else { throw LockstepError("malformed assignment from the coordinator: rank \(rank) of \(world)") }
        control.setJob(job, rank: rank)
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
        control.send(.endpoint(.init(address: address)))
        guard case .peers(let table) = try control.next([.peers], within: config.timeoutSeconds), table.addresses.count == world else {
            throw LockstepError("malformed peer table from the coordinator")
        }
        try transport.connect(peers: table.addresses, hosts: table.hosts, keys: table.keys)
        let communicator = Communicator(transport: transport, chunkBytes: config.chunkBytes)
        let hosts = try HostHierarchy.make(config: config, table: table, rank: rank, jobID: job, base: communicator,
                                           transport: transport) { logLine("\(control.label): \($0)") }
        communicator.hierarchy = hosts?.hierarchy

        let files = assignment.job.files
        let (trainSet, testSet) = try DatasetLoader.load(config)
        let trainer = try Trainer(config: config, train: trainSet, test: testSet, communicator: communicator, pool: pool,
                                  trace: files.trace != nil)
        if let path = files.initFrom { try Checkpoint.initialize(trainer, from: path) }
        let say: (String) -> Void = { logLine("\(control.label): \($0)") }
        if let path = try files.resumePath(log: say) { try Checkpoint.resume(trainer, from: path) }
        let checkpoints = try files.checkpointSchedule(log: say)
        if rank == 0, let store = checkpoints?.store {
            try store.prepare()
            store.removeTemporaries()
        }
        checkpoints?.lastWritten = trainer.globalStep
        trainer.afterStep = { try checkpoints?.afterStep($0) }
        logLine("\(control.label): \(host) data endpoint \(address); \(config.threads) thread(s); step mode \(config.stepMode.rawValue); optimizer state \(trainer.optimizer.stateFloatCount) floats (\(trainer.optimizerRange.count) of \(trainer.model.parameterCount) parameters)")

        let forwarder = MetricsForwarder(control: control, rank: rank)
        var saveError: Error?
        forwarder.onEpoch = { report in
            if let path = files.save {
                do { try Checkpoint.save(trainer, to: path, epoch: report.epoch) } catch { saveError = error }
            }
        }
        trainer.observer = forwarder
        try communicator.barrier()
        transport.peersConnected()  // every peer is connected (a shared-memory segment's file name can go)
        hosts?.local.peersConnected()
        let final = try trainer.run()
        if let saveError { throw saveError }
        control.send(.final(.init(report: final, optimizerStateFloats: trainer.optimizer.stateFloatCount,
                                  dataBytesSent: communicator.bytesSent, trace: trainer.tracer?.events ?? [])))
        logLine("\(control.label): finished \(final.steps) steps; parameter hash \(final.parameterHash); sent \(communicator.bytesSent) data bytes to peers")
        _ = try control.next([.shutdown], within: config.timeoutSeconds)
        control.finish()
        hosts?.local.close()
        transport.close()
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

/// Forwards a worker's progress to the coordinator: rank 0's steps (at most
/// twice a second) and epochs. Runs the epoch hook (checkpoints) on every rank.
final class MetricsForwarder: TrainingObserver {
    let control: ControlClient
    let rank: Int
    var onEpoch: ((EpochReport) -> Void)?
    private var lastStep = Date.distantPast

    init(control: ControlClient, rank: Int) {
        self.control = control
        self.rank = rank
    }

    func stepCompleted(_ report: StepReport) {
        guard rank == 0, Date().timeIntervalSince(lastStep) >= 0.5 else { return }
        lastStep = Date()
        control.send(.step(report))
    }

    func epochCompleted(_ report: EpochReport) {
        onEpoch?(report)
        guard rank == 0 else { return }
        control.send(.epoch(report))
    }
}
