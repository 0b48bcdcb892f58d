import Foundation
import LockstepBench
import LockstepTransport

/// Formats `lockstep bench allreduce` results: a Markdown table with
/// nccl-tests columns, or JSON with the same fields.
struct BenchReport: Encodable {
    var machine: MachineInfo
    var workers: Int
    var security: String
    var transport: String
    var chunkBytes: Int
    var smallMessageThreshold: Int
    var smallGatherThreshold: Int
    var results: [Row]
    /// With `--algorithm both` or `all`: the largest measured size at which recursive
    /// doubling (the small-message path) beat the ring (nil: it never did).
    var recursiveDoublingFasterUpToBytes: Int?
    /// With `--algorithm both` or `all`: the smallest measured size above that one at which the ring won.
    var ringFasterFromBytes: Int?

    struct Row: Encodable {
        var op: String
        var algorithm: String
        var bytes: Int
        var count: Int
        var timeMicroseconds: Double
        var algbwGBps: Double
        var busbwGBps: Double
        var iterations: Int
    }

    init(machine: MachineInfo, plan: BenchPlan, outcome: BenchLauncher.Outcome) {
        self.machine = machine
        workers = plan.workers
        transport = plan.transport.rawValue
        security = plan.curve ? "curve" : "plain"
        chunkBytes = outcome.chunkBytes
        smallMessageThreshold = outcome.smallMessageThreshold
        smallGatherThreshold = outcome.smallGatherThreshold
        results = outcome.results.map {
            Row(op: Self.opName($0.operation), algorithm: $0.algorithm, bytes: $0.bytes, count: $0.bytes / 4,
                timeMicroseconds: $0.seconds * 1e6, algbwGBps: $0.algorithmBandwidth / 1e9, busbwGBps: $0.busBandwidth / 1e9,
                iterations: $0.iterations)
        }
        // Crossover: compare the two forced all-reduce algorithms `auto` chooses between, size by size.
        let allReduce = outcome.results.filter { $0.operation == .allReduce }
        let sizes = Array(Set(allReduce.map(\.bytes))).sorted()
        var doublingWins: [Int] = [], ringWins: [Int] = []
        for size in sizes {
            guard let ring = allReduce.first(where: { $0.bytes == size && $0.algorithm == "ring" }),
                  let doubling = allReduce.first(where: { $0.bytes == size && $0.algorithm == "recursive-doubling" }) else { continue }
            if doubling.seconds <= ring.seconds { doublingWins.append(size) } else { ringWins.append(size) }
        }
        if !doublingWins.isEmpty || !ringWins.isEmpty {
            recursiveDoublingFasterUpToBytes = doublingWins.max()
            ringFasterFromBytes = ringWins.filter { $0 > (doublingWins.max() ?? 0) }.min()
        }
    }

    static func opName(_ op: AllReduceBenchmark.Operation) -> String {
        switch op {
        case .allReduce: return "allreduce"
        case .reduceScatter: return "reducescatter"
        case .allGather: return "allgather"
        }
    }

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func markdown() -> String {
        var lines: [String] = []
        lines.append("lockstep bench allreduce: \(workers) processes over \(transport == "shm" ? "shared memory" : transport)\(security == "curve" ? " with CurveZMQ" : ""), ZeroMQ \(machine.libzmq), "
            + "chunk \(chunkBytes) B; recursive-doubling all-reduce up to \(smallMessageThreshold) B, "
            + "Bruck all-gather up to \(smallGatherThreshold) B")
        lines.append("machine: \(machine.cpu), \(machine.cores) logical cores; CRC-32C in hardware: \(machine.crc32cHardware ? "yes" : "no")")
        lines.append("time = median per call (rank 0, calls started together after a barrier); algbw = bytes/time; "
            + "busbw = algbw·2(N-1)/N (all-reduce), algbw·(N-1)/N (reduce-scatter, all-gather)")
        lines.append("")
        lines.append("| size (B) | count (floats) | op | algorithm | time (µs) | algbw (GB/s) | busbw (GB/s) |")
        lines.append("|---:|---:|---|---|---:|---:|---:|")
        for r in results {
            lines.append("| \(r.bytes) | \(r.count) | \(r.op) | \(r.algorithm) | \(String(format: "%.1f", r.timeMicroseconds)) | "
                + "\(String(format: "%.3f", r.algbwGBps)) | \(String(format: "%.3f", r.busbwGBps)) |")
        }
        if recursiveDoublingFasterUpToBytes != nil || ringFasterFromBytes != nil {
            lines.append("")
            let doubling = recursiveDoublingFasterUpToBytes.map { "\($0) B" } ?? "no measured size"
            let ring = ringFasterFromBytes.map { "\($0) B" } ?? "no larger measured size"
            lines.append("crossover: recursive doubling faster up to \(doubling); ring faster from \(ring)")
        }
        return lines.joined(separator: "\n")
    }
}
