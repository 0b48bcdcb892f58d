import ArgumentParser
import Foundation
import LockstepRuntime
import Synchronization

/// `lockstep run`: one task of a job that an engine started, one command per task
/// (`srun lockstep run --config …`, a Kubernetes Indexed Job, torchrun's
/// variables). The task finds its rank, the world size and the coordinator in the
/// environment (`Placement`; flags win); the task of rank 0 also runs the coordinator.
public struct RunCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "One task of a multi-host job: rank, world size and coordinator from the flags or from the environment of Slurm, a Kubernetes Indexed Job or torchrun; rank 0 also runs the coordinator.")

    public init() {}

    @OptionGroup public var options: TrainingOptions
    @Option(help: "This task's rank (default: RANK, SLURM_PROCID or JOB_COMPLETION_INDEX).") public var rank: Int?
    @Option(name: .customLong("world-size"), help: "Tasks in the job (default: WORLD_SIZE or SLURM_NTASKS).") public var worldSize: Int?
    @Option(name: .customLong("local-rank"), help: "This task's rank on its host (default: LOCAL_RANK or SLURM_LOCALID).") public var localRank: Int?
    @Option(help: "The coordinator, HOST:PORT (default: MASTER_ADDR:MASTER_PORT, or under Slurm the job's first node).")
    public var coordinator: String?
    @Option(help: "Data endpoint to bind (default: tcp://0.0.0.0:0, any free port).") public var bind: String?
    @Option(help: "Address the other workers dial to reach this one (default: this host's address on the route to the coordinator).")
    public var advertise: String?
    @Option(name: .customLong("join-timeout"), help: "Seconds rank 0's coordinator waits for every task to join.") public var joinTimeout: Double = 120
    @Option(name: .customLong("reached-step"), help: .hidden) public var reachedStep: Int?

    public func run() throws {
        try CommandLineErrors.report {
            let placement: Placement
            do {
                placement = try Placement.resolve(rank: rank, worldSize: worldSize, localRank: localRank, coordinator: coordinator,
                                                  environment: ProcessInfo.processInfo.environment)
            } catch let e as PlacementError {
                throw LockstepError(e.description)
            }
            let job = try options.jobSpec()
            let host = placement.coordinatorHost.contains(":") ? "[\(placement.coordinatorHost)]" : placement.coordinatorHost
            let endpoint = "tcp://\(host):\(placement.coordinatorPort)"
            FileHandle.standardError.write(Data("lockstep run: rank \(placement.rank) of \(placement.worldSize) (from \(placement.source)); coordinator \(endpoint)\n".utf8))
            let coordinator = placement.rank == 0
                ? try CoordinatorThread.start(job: job, port: placement.coordinatorPort, workers: placement.worldSize,
                                              loopback: RouteAddress.isLoopback(placement.coordinatorHost), joinTimeout: joinTimeout)
                : nil
            var workerError: Error?
            do {
                if coordinator != nil, job.config.restartsAllowed(workers: placement.worldSize) > 0 {
                    // A restart starts the worker's process afresh: here it must not take the coordinator with it.
                    try runWorkerChild(job: job, endpoint: endpoint)
                } else {
                    var worker = WorkerProcess.Options(job: job, coordinator: endpoint, bind: bind, advertise: advertise,
                                                       requestedRank: placement.rank)
                    worker.reachedStep = reachedStep
                    try WorkerProcess(options: worker).run()
                }
            } catch {
                workerError = error
            }
            // The coordinator ends once every worker reported (or aborted): its deadlines bound this wait.
            let coordinatorError = coordinator?.wait(seconds: job.config.timeoutSeconds + joinTimeout)
            if let workerError { throw workerError }
            if let coordinatorError { throw coordinatorError }
        }
    }
}

extension RunCommand {
    /// Rank 0 of an elastic job: its worker runs as a `lockstep-worker` child process.
    func runWorkerChild(job: JobSpec, endpoint: String) throws {
        let spec = NSTemporaryDirectory() + "lockstep-\(getpid())-rank0.json"
        try job.write(to: spec)
        defer { unlink(spec) }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent("lockstep-worker")
        var args = ["--job-spec", spec, "--coordinator", endpoint, "--rank", "0", "--parent-pid", String(getpid())]
        if let bind { args += ["--bind", bind] }
        if let advertise { args += ["--advertise", advertise] }
        let child = Process()
        child.executableURL = exe
        child.arguments = args
        try child.run()
        child.waitUntilExit()
        guard child.terminationStatus == 0 else {
            throw LockstepError("rank 0's worker process ended with status \(child.terminationStatus)")
        }
    }
}

/// Rank 0's coordinator on a thread of its own: bound before the worker starts
/// (a port in use is an error at once), then run to the job's end.
final class CoordinatorThread: Sendable {
    private let outcome = Mutex<Result<Void, Error>?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    static func start(job: JobSpec, port: Int, workers: Int, loopback: Bool, joinTimeout: Double) throws -> CoordinatorThread {
        let t = CoordinatorThread()
        let bound = DispatchSemaphore(value: 0)
        let bindError = Mutex<Error?>(nil)
        let bind = loopback ? "tcp://127.0.0.1:\(port)" : "tcp://0.0.0.0:\(port)"
        let thread = Thread {
            let coordinator: Coordinator
            do {
                coordinator = try Coordinator(job: job, bind: bind, workers: workers)
                coordinator.joinTimeout = joinTimeout
            } catch {
                bindError.withLock { $0 = error }
                bound.signal()
                t.finished.signal()
                return
            }
            bound.signal()
            let result = Result { try coordinator.run() }
            t.outcome.withLock { $0 = result }
            t.finished.signal()
        }
        thread.name = "lockstep-coordinator"
        thread.start()
        guard bound.wait(timeout: .now() + 30) == .success else {
            throw LockstepError("the coordinator could not bind \(bind) within 30 s")
        }
        if let error = bindError.withLock({ $0 }) { throw error }
        return t
    }

    /// The coordinator's error, if it failed; waits at most `seconds` for it to end.
    func wait(seconds: Double) -> Error? {
        guard finished.wait(timeout: .now() + seconds) == .success else {
            return LockstepError("the coordinator did not finish within \(Int(seconds)) s after this worker")
        }
        if case .failure(let e)? = outcome.withLock({ $0 }) { return e }
        return nil
    }
}
