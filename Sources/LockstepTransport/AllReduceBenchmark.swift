import Glibc
import LockstepCollectives

/// Times all-reduce, reduce-scatter and all-gather over a `Communicator`,
/// nccl-tests conventions: algbw = bytes / time; busbw = algbw · 2(N-1)/N for
/// all-reduce and algbw · (N-1)/N for reduce-scatter and all-gather.
///
/// Every rank runs the same benchmark (it calls collectives). Correctness is
/// checked first, with exactly representable values, before anything is timed.
public struct AllReduceBenchmark: Sendable {
    public enum Operation: String, CaseIterable, Sendable { case allReduce, reduceScatter, allGather }

    public struct Result: Sendable, CustomStringConvertible {
        public var operation: Operation
        public var bytes: Int
        public var worldSize: Int
        /// Median seconds per call over the timed iterations.
        public var seconds: Double
        public var algorithmBandwidth: Double { Double(bytes) / seconds }
        public var busBandwidth: Double {
            let n = Double(worldSize)
            return algorithmBandwidth * (operation == .allReduce ? 2 * (n - 1) / n : (n - 1) / n)
        }
        public var description: String {
            func gb(_ x: Double) -> String { String(format: "%.3f", x / 1e9) }
            return "\(operation.rawValue) \(bytes) B N=\(worldSize): \(String(format: "%.3f", seconds * 1e3)) ms, "
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
    public var warmupIterations: Int
    public var iterations: Int

    public init(sizesInBytes: [Int], operations: [Operation] = Operation.allCases, warmupIterations: Int = 2, iterations: Int = 10) {
        self.sizesInBytes = sizesInBytes
        self.operations = operations
        self.warmupIterations = warmupIterations
        self.iterations = iterations
    }

    public func run(on comm: Communicator) throws -> [Result] {
        var results: [Result] = []
        for bytes in sizesInBytes {
            let count = bytes / MemoryLayout<Float>.stride
            let data = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            defer { data.deallocate() }
            for operation in operations {
                try check(operation, comm: comm, data: data, count: count, bytes: bytes)
                for _ in 0..<warmupIterations { try execute(operation, comm: comm, data: data, count: count) }
                var times: [Double] = []
                for _ in 0..<iterations {
                    // Synchronization point: start every timed call together.
                    try comm.barrier()
                    let start = Self.now()
                    try execute(operation, comm: comm, data: data, count: count)
                    times.append(Self.now() - start)
                }
                times.sort()
                results.append(Result(operation: operation, bytes: count * 4, worldSize: comm.worldSize, seconds: times[times.count / 2]))
            }
        }
        return results
    }

    private func execute(_ operation: Operation, comm: Communicator, data: UnsafeMutablePointer<Float>, count: Int) throws {
        switch operation {
        case .allReduce: try comm.allReduceSum(data, count: count)
        case .reduceScatter: try comm.reduceScatterSum(data, count: count)
        case .allGather: try comm.allGather(data, count: count)
        }
    }

    /// Small integers: every sum is exact, so any wrong element is a bug.
    private func check(_ operation: Operation, comm: Comm, data: UnsafeMutablePointer<Float>, count: Int, bytes: Int) throws {
        let n = comm.worldSize, rank = comm.rank
        for i in 0..<count { data[i] = Float(i % 251 + rank) }
        try execute(operation, comm: comm, data: data, count: count)
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

    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
