import ArgumentParser
import Foundation
import LockstepKernels

/// `lockstep bench …`: benchmarks that check results first, then time, and print tables.
public struct BenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks: gemm, allreduce, train, scaling.",
        subcommands: [GemmBench.self, AllReduceBench.self, TrainBench.self, ScalingBench.self, AllReduceRankBench.self])
    public init() {}
}

public struct GemmBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "SGEMM GFLOP/s per shape (square 128-2048 and the MLP's training shapes), each checked against the reference first.")
    public init() {}

    @Option(help: "Threads.") public var threads: Int = 1
    @Flag(help: "Print JSON instead of a table.") public var json = false
    @Option(name: .customLong("peak-per-core"), help: "FMA peak per core in GFLOP/s for the %peak column (32 FLOP/cycle × clock).")
    public var peakPerCore: Double = 99.2

    public func run() throws {
        try CommandLineErrors.report {
            let results = try GemmBenchmark.run(shapes: nil, threads: threads, peakPerCoreGflops: peakPerCore)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(results), as: UTF8.self))
            } else {
                print(GemmBenchmark.markdownTable(results))
            }
        }
    }
}
