import ArgumentParser
import Foundation
import LockstepRuntime

/// `lockstep train`: one process, or `--workers N` processes on this machine.
public struct TrainCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a model: in this process, or with --workers N as a coordinator and N worker processes on this machine.")

    public init() {}

    @OptionGroup public var options: TrainingOptions
    @Option(parsing: .unconditional, help: "Run a coordinator and this many worker processes on this machine (multiprocess mode).")
    public var workers: Int?
    @Option(help: "Data plane between the local workers: tcp (ZeroMQ over loopback TCP), ipc (ZeroMQ over Unix sockets) or shm (shared memory).")
    public var transport: DataPlane?

    public func run() throws {
        try CommandLineErrors.report {
            var job = try options.jobSpec()
            if let workers, workers > 1, options.threads == nil {
                // As torchrun (OMP_NUM_THREADS=1 for several processes a node): the config's
                // threads are per process, so N workers on this machine share its cores
                // instead of oversubscribing them; --threads sets them explicitly.
                let cores = ProcessInfo.processInfo.activeProcessorCount
                job.config.threads = min(job.config.threads, max(1, cores / workers))
            }
            // Before any process starts (the coordinator checks the outputs again for itself).
            try job.files.checkInputs()
            try job.files.checkOutputs()
            if let workers {
                try LocalLauncher.run(job: job, workers: workers, transport: transport ?? .tcp)
            } else {
                if let transport, transport != .tcp {
                    throw LockstepError("--transport \(transport.rawValue): only applies with --workers N (use tcp, ipc or shm there)")
                }
                _ = try SingleProcessRun.run(job)
            }
        }
    }
}

extension DataPlane: ExpressibleByArgument {}

/// Runs a command's body after the start-up checks (`StartUp`), turning a
/// `LockstepError` (or any error) into one line on stderr and exit status 1.
public enum CommandLineErrors {
    public static func report(_ body: () throws -> Void) throws {
        do {
            try StartUp.prepare()
            try body()
        } catch let e as LockstepError {
            FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
            throw ExitCode(1)
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
