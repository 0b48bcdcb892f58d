import ArgumentParser
import LockstepCLI

@main
struct Lockstep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockstep",
        abstract: "Data-parallel neural-network training on CPUs, in lockstep over ZeroMQ.",
        subcommands: [TrainCommand.self, RunCommand.self, BenchCommand.self, KeygenCommand.self, FuzzCommand.self, PlotCommand.self, EvalCommand.self, PredictCommand.self])
}
