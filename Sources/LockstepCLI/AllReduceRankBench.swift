import ArgumentParser
import LockstepBench
import Foundation
import LockstepRuntime

/// `lockstep bench allreduce-rank`: one rank of the all-reduce timing behind `bench scaling` (started by it).
public struct AllReduceRankBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "allreduce-rank", abstract: "One rank of bench scaling's all-reduce timing (internal).", shouldDisplay: false)
    public init() {}

    @Option public var rank: Int
    @Option(help: "Every rank's tcp:// endpoint, comma-separated, in rank order.") public var endpoints: String
    @Option public var sizes: String
    @Option(name: .customLong("chunk-bytes")) public var chunkBytes = 1 << 20
    @Option public var iterations = 15

    public func run() throws {
        try CommandLineErrors.report {
            let list = endpoints.split(separator: ",").map(String.init)
            guard rank >= 0, rank < list.count else { throw LockstepError("--rank \(rank): outside 0..<\(list.count)") }
            let samples = try AllReduceProbe.runRank(rank: rank, endpoints: list, sizes: try WorkerList.parse(sizes),
                                                     chunkBytes: chunkBytes, iterations: iterations)
            if rank == 0 {
                let enc = JSONEncoder()
                for s in samples { print(String(decoding: try enc.encode(s), as: UTF8.self)) }
            }
        }
    }
}
