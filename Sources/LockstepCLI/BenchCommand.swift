import ArgumentParser
import LockstepBench
import Foundation
import LockstepKernels

/// `lockstep bench …`: benchmarks that check results first, then time, and print tables.
public struct BenchCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks: gemm, allreduce, train, scaling, cluster.",
        subcommands: [GemmBench.self, AllReduceBench.self, TrainBench.self, ScalingBench.self, ClusterBench.self, SoakBench.self])
    public init() {}
}

public struct GemmBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "SGEMM GFLOP/s per shape (square 128-2048 and the MLP's training shapes), each checked against the reference first.")
    public init() {}

    @Option(help: "Threads.") public var threads: Int = 1
    @Flag(help: "Print JSON instead of a table.") public var json = false
    @Option(name: .customLong("peak-per-core"), help: ArgumentHelp(
        "FMA peak per core in GFLOP/s for the %peak column. Default: measured at start, FMA throughput of one core at the vector width of the kernel that runs (= 64 FLOP/cycle for avx512, 32 for avx2, × the clock)."))
    public var peakPerCore: Double?
    @Option(name: .customLong("shape"), help: ArgumentHelp(
        "Only this shape, M×K×N as MxKxN, with optional :At / :Bt for a transposed operand (e.g. 784x128x512:At). Repeatable.", valueName: "shape"))
    public var shapes: [String] = []
    @Option(help: "Timing clock: wall (default) or thread (CPU time of the calling thread; steadier on a shared machine, for one thread only).")
    public var clock: String = "wall"

    public func run() throws {
        try CommandLineErrors.report {
            let list = try shapes.map(Self.parseShape)
            guard threads >= 1, threads <= 256 else { throw ValidationError("--threads \(threads): must be between 1 and 256") }
            if let p = peakPerCore, !(p > 0 && p.isFinite) {
                throw ValidationError("--peak-per-core \(p): must be a positive number of GFLOP/s")
            }
            guard let chosen = GemmBenchmark.Clock(rawValue: clock) else { throw ValidationError("--clock \(clock): expected wall or thread") }
            let peak = peakPerCore ?? GemmBenchmark.defaultPeakPerCoreGflops()
            let results = try GemmBenchmark.run(gemmShapes: list.isEmpty ? nil : list, threads: threads, peakPerCoreGflops: peak, clock: chosen)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(results), as: UTF8.self))
            } else {
                print(GemmBenchmark.kernelLine)
                print(GemmBenchmark.peakLine(peak, measured: peakPerCore == nil))
                print(GemmBenchmark.markdownTable(results))
            }
        }
    }

    static func parseShape(_ text: String) throws -> GemmShape {
        let parts = text.split(separator: ":")
        let dims = parts.first.map { $0.split(separator: "x").compactMap { Int($0) } } ?? []
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--shape \(text): expected MxKxN with positive integers, optionally :At and/or :Bt")
        }
        // A, B, C and the reference's C: at most 4 GiB of floats in all.
        let floats = dims[0].multipliedReportingOverflow(by: dims[1]).partialValue
            + dims[1].multipliedReportingOverflow(by: dims[2]).partialValue
            + 2 * dims[0].multipliedReportingOverflow(by: dims[2]).partialValue
        guard dims.allSatisfy({ $0 <= 1 << 20 }), floats <= 1 << 30 else {
            throw ValidationError("--shape \(text): too large; A, B and C together must fit in 4 GiB")
        }
        var shape = GemmShape(m: dims[0], k: dims[1], n: dims[2])
        for flag in parts.dropFirst() {
            switch flag.lowercased() {
            case "at": shape.transA = true
            case "bt": shape.transB = true
            default: throw ValidationError("--shape \(text): unknown flag :\(flag) (At or Bt)")
            }
        }
        return shape
    }
}
