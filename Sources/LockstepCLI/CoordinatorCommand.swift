import ArgumentParser
import Foundation
import LockstepRuntime

/// `lockstep-coordinator`: the control plane of a multi-process or multi-host job.
public struct CoordinatorCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lockstep-coordinator",
        abstract: "Coordinate N lockstep-worker processes: ranks, peer table, liveness, progress, metrics, shutdown.")

    public init() {}

    @OptionGroup public var options: TrainingOptions
    @Option(help: "Control endpoint to bind, e.g. tcp://0.0.0.0:5555.") public var bind: String
    @Option(help: "Number of workers in the job.") public var workers: Int
    @Option(name: .customLong("join-timeout"), help: "Seconds to wait for all workers to join.") public var joinTimeout: Double = 120
    @Option(name: .customLong("job-spec"), help: .hidden) public var jobSpec: String?
    @Option(name: .customLong("parent-pid"), help: .hidden) public var parentPID: Int32?

    public func run() throws {
        try CommandLineErrors.report {
            var job = try jobSpec.map { try JobSpec.read(from: $0) } ?? options.jobSpec()
            options.security.apply(to: &job.config.security)
            let coordinator = try Coordinator(job: job, bind: bind, workers: workers)
            coordinator.joinTimeout = joinTimeout
            coordinator.parentPID = parentPID
            try coordinator.run()
        }
    }
}

/// `lockstep-worker`: one rank of a job; the settings come from the coordinator.
public struct WorkerCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lockstep-worker",
        abstract: "Join a coordinator as one rank and train, exchanging gradient shards directly with the other workers.")

    public init() {}

    @Option(help: "Config file; its model must match the coordinator's.") public var config: String?
    @Option(help: "Coordinator endpoint, e.g. tcp://coord-host:5555.") public var coordinator: String
    @Option(help: "Kernel-core threads of this worker.") public var threads: Int?
    @Option(help: "Data endpoint to bind (default: tcp://0.0.0.0:0, any free port; loopback when the coordinator is local). ipc://PATH for Unix sockets; shm://NAME for shared memory when every worker runs on this machine.")
    public var bind: String?
    @Option(help: "Host name or address the other workers should use to reach this one.") public var advertise: String?
    @Option(help: "Ask for this rank (granted when free).") public var rank: Int?
    @OptionGroup public var security: SecurityOptions
    @Option(name: .customLong("job-spec"), help: .hidden) public var jobSpec: String?
    @Option(name: .customLong("parent-pid"), help: .hidden) public var parentPID: Int32?
    @Option(name: .customLong("reached-step"), help: .hidden) public var reachedStep: Int?

    public func run() throws {
        try CommandLineErrors.report {
            var job: JobSpec
            if let jobSpec {
                job = try JobSpec.read(from: jobSpec)
            } else if let config {
                job = try JobSpec.load(configPath: config)
            } else {
                throw LockstepError("--config is required: the same config file as the coordinator's")
            }
            security.apply(to: &job.config.security)
            var options = WorkerProcess.Options(job: job, coordinator: coordinator, threads: threads, bind: bind,
                                                advertise: advertise, requestedRank: rank, parentPID: parentPID)
            options.reachedStep = reachedStep
            let worker = WorkerProcess(options: options)
            try worker.run()
        }
    }
}
