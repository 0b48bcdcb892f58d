import Foundation
import XCTest
import TestSupport
import LockstepBench
import LockstepCollectives
import LockstepTransport

/// Benchmark over loopback TCP. Quick smoke by default; set
/// LOCKSTEP_BENCH=1 for the full size sweep (prints results).
final class AllReduceBenchmarkTests: XCTestCase {
    func testBenchmarkOverLoopback() throws {
        let full = ProcessInfo.processInfo.environment["LOCKSTEP_BENCH"] == "1"
        let sizes = full ? [4 << 10, 64 << 10, 1 << 20, 4 << 20, 16 << 20] : [4 << 10, 256 << 10]
        let chunk = Int(ProcessInfo.processInfo.environment["LOCKSTEP_CHUNK"] ?? "") ?? (1 << 20)
        for n in full ? [2, 3] : [2] {
            let context = try ZMQContext()
            let transports = try (0..<n).map {
                try ZMQPeerTransport(rank: $0, worldSize: n, jobID: 1, bindEndpoint: "tcp://127.0.0.1:0", context: context, timeoutSeconds: 20)
            }
            for transport in transports { try transport.connect(peers: transports.map(\.boundEndpoint)) }
            let benchmark = AllReduceBenchmark(sizesInBytes: sizes, warmupIterations: full ? 3 : 1, iterations: full ? 20 : 3)
            let results = runRanks(n, timeout: 120) { rank in
                try benchmark.run(on: Communicator(transport: transports[rank], chunkBytes: chunk)).map(\.description)
            }
            XCTAssertEqual(results?.first?.count, sizes.count * 3)
            if full { results?.first?.forEach { print("chunk \(chunk): \($0)") } }
        }
    }
}
