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
    public var transport: String = "tcp"

    public func run() throws {
        try CommandLineErrors.report {
            let config = try options.effectiveConfig()
            if let workers {
                // Before any process starts (the coordinator checks the outputs again for itself).
                try options.runFiles.checkInputs()
                try options.runFiles.checkOutputs()
                guard workers >= 1, workers <= LocalLauncher.maxWorkers else {
                    throw LockstepError("--workers \(workers): must be between 1 and \(LocalLauncher.maxWorkers) on one machine")
                }
                try LocalLauncher.run(arguments: Array(CommandLine.arguments.dropFirst(2)), workers: workers, transport: transport)
            } else {
                guard transport == "tcp" else {
                    throw LockstepError("--transport \(transport): only applies with --workers N (use tcp, ipc or shm there)")
                }
                _ = try SingleProcessRun.run(config: config, files: options.runFiles)
            }
        }
    }
}

/// Turns a `LockstepError` (or any error) into one line on stderr and exit status 1.
public enum CommandLineErrors {
    public static func report(_ body: () throws -> Void) throws {
        do {
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
