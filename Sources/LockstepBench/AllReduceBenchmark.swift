import LockstepBase
import LockstepKernels
import LockstepRuntime
import LockstepTransport
import Glibc
import LockstepCollectives

/// Times all-reduce, reduce-scatter and all-gather over a `Communicator`,
/// nccl-tests conventions: algbw = bytes / time; busbw = algbw · 2(N-1)/N for
/// all-reduce and algbw · (N-1)/N for reduce-scatter and all-gather.
///
/// Every rank runs the same benchmark (it calls collectives). Correctness is
/// checked first, with exactly representable values, before anything is timed.
public struct AllReduceBenchmark: Sendable {
    public enum Operation: String, CaseIterable, Codable, Sendable { case allReduce, reduceScatter, allGather }

    /// How an all-reduce is carried out. `auto` is what training uses
    /// (`Communicator.allReduceSum`: recursive doubling up to `smallMessageThreshold`,
    /// else ring); `ring`, `recursiveDoubling` and `small` (the direct exchange) force
    /// one algorithm, to measure the crossovers. Reduce-scatter is always the ring;
    /// all-gather is Bruck up to `smallGatherThreshold`, else the ring.
    public enum Algorithm: String, CaseIterable, Codable, Sendable {
        case auto, ring, small
        case recursiveDoubling = "recursive-doubling"
    }

    public struct Result: Codable, Sendable, CustomStringConvertible {
        public var operation: Operation
        /// The algorithm that actually ran: `ring`, `recursive-doubling` or `small`.
        public var algorithm: String
        public var bytes: Int
        public var worldSize: Int
        /// Median seconds per call over the timed iterations.
        public var seconds: Double
        public var iterations: Int
        public var algorithmBandwidth: Double { Double(bytes) / seconds }
        public var busBandwidth: Double {
            let n = Double(worldSize)
            return algorithmBandwidth * (operation == .allReduce ? 2 * (n - 1) / n : (n - 1) / n)
        }
        public var description: String {
            func gb(_ x: Double) -> String { String(format: "%.3f", x / 1e9) }
            return "\(operation.rawValue) (\(algorithm)) \(bytes) B N=\(worldSize): \(String(format: "%.3f", seconds * 1e3)) ms, "
                + "algbw \(gb(algorithmBandwidth)) GB/s, busbw \(gb(busBandwidth)) GB/s"
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case wrongResult(Operation, bytes: Int, index: Int, got: Float, expected: Float)
        public var description: String {
            switch self {
            case let .wrongResult(op, bytes, index, got, expected):
                return "\(op.rawValue) of \(bytes) bytes is wrong at element \(index): \(got), expected \(expected)"
            }
        }
    }

    public var sizesInBytes: [Int]
    public var operations: [Operation]
    public var algorithms: [Algorithm]
    public var warmupIterations: Int
    /// Timed calls per (operation, size), or, with `adaptiveVolumeBytes`, the most.
    public var iterations: Int
    /// When set, small sizes get more timed calls: `volume / bytes`, clamped to
    /// `5...iterations` (as the gloo anchor does), so every size takes similar time.
    public var adaptiveVolumeBytes: Int?

    public init(sizesInBytes: [Int], operations: [Operation] = Operation.allCases, algorithms: [Algorithm] = [.auto],
                warmupIterations: Int = 2, iterations: Int = 10, adaptiveVolumeBytes: Int? = nil) {
        self.sizesInBytes = sizesInBytes
        self.operations = operations
        self.algorithms = algorithms
        self.warmupIterations = warmupIterations
        self.iterations = iterations
        self.adaptiveVolumeBytes = adaptiveVolumeBytes
    }

    func timedIterations(bytes: Int) -> Int {
        guard let volume = adaptiveVolumeBytes else { return iterations }
        return min(iterations, max(5, volume / max(bytes, 1)))
    }

    /// The algorithm `execute` runs for this operation, size and choice.
    static func resolved(_ operation: Operation, _ algorithm: Algorithm, bytes: Int, comm: Communicator) -> String {
        switch (operation, algorithm) {
        case (.allReduce, .auto): return bytes <= comm.smallMessageThreshold ? Algorithm.recursiveDoubling.rawValue : Algorithm.ring.rawValue
        case (.allReduce, _): return algorithm.rawValue
        case (.allGather, _): return bytes <= comm.smallGatherThreshold ? "bruck" : Algorithm.ring.rawValue
        default: return Algorithm.ring.rawValue
        }
    }

    public func run(on comm: Communicator) throws -> [Result] {
        var results: [Result] = []
        for bytes in sizesInBytes {
            let count = bytes / MemoryLayout<Float>.stride
            let data = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            defer { data.deallocate() }
            for operation in operations {
                // Reduce-scatter and all-gather have one algorithm: run them once.
                for algorithm in operation == .allReduce ? algorithms : [.auto] {
                    try check(operation, algorithm, comm: comm, data: data, count: count, bytes: bytes)
                    for _ in 0..<warmupIterations { try execute(operation, algorithm, comm: comm, data: data, count: count) }
                    let runs = timedIterations(bytes: count * 4)
                    var times: [Double] = []
                    for _ in 0..<runs {
                        // Synchronization point: start every timed call together.
                        try comm.barrier()
                        let start = MonotonicClock.now()
                        try execute(operation, algorithm, comm: comm, data: data, count: count)
                        times.append(MonotonicClock.now() - start)
                    }
                    times.sort()
                    results.append(Result(operation: operation, algorithm: Self.resolved(operation, algorithm, bytes: count * 4, comm: comm),
                                          bytes: count * 4, worldSize: comm.worldSize, seconds: times[times.count / 2], iterations: runs))
                }
            }
        }
        return results
    }

    private func execute(_ operation: Operation, _ algorithm: Algorithm, comm: Communicator, data: UnsafeMutablePointer<Float>, count: Int) throws {
        switch operation {
        case .allReduce:
            switch algorithm {
            case .auto: try comm.allReduceSum(data, count: count)
            case .small: try comm.smallAllReduceSum(data, count: count)
            case .recursiveDoubling: try comm.recursiveDoublingAllReduceSum(data, count: count)
            case .ring:
                try comm.reduceScatterSum(data, count: count)
                try comm.allGather(data, count: count)
            }
        case .reduceScatter: try comm.reduceScatterSum(data, count: count)
        case .allGather: try comm.allGather(data, count: count)
        }
    }

    /// Small integers: every sum is exact, so any wrong element is a bug.
    private func check(_ operation: Operation, _ algorithm: Algorithm, comm: Comm, data: UnsafeMutablePointer<Float>, count: Int, bytes: Int) throws {
        let n = comm.worldSize, rank = comm.rank
        for i in 0..<count { data[i] = Float(i % 251 + rank) }
        try execute(operation, algorithm, comm: comm, data: data, count: count)
        let rankSum = Float(n * (n - 1) / 2)
        let mine = comm.shardRange(count: count, rank: rank)
        for i in 0..<count {
            let expected: Float
            switch operation {
            case .allReduce: expected = Float(n * (i % 251)) + rankSum
            case .reduceScatter:
                guard mine.contains(i) else { continue }
                expected = Float(n * (i % 251)) + rankSum
            case .allGather:
                let owner = (0..<n).first { comm.shardRange(count: count, rank: $0).contains(i) }!
                expected = Float(i % 251 + owner)
            }
            if data[i] != expected { throw Failure.wrongResult(operation, bytes: bytes, index: i, got: data[i], expected: expected) }
        }
    }
    private typealias Comm = Communicator

}
