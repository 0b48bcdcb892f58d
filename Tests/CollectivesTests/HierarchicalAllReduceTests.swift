import XCTest
import TestSupport
@testable import LockstepCollectives

/// The hierarchical all-reduce (`Communicator.hierarchy`) over in-process ranks laid
/// out as hosts: every rank ends bitwise identical, the sums match a Float64
/// reference, and each rank's bytes to other hosts shrink by the workers per host.
final class HierarchicalAllReduceTests: XCTestCase {
    func testLayoutGroupsRanksByHost() {
        let layout = HostLayout(hostKeys: ["10.0.0.2", "10.0.0.3", "10.0.0.2", "10.0.0.3"])
        XCTAssertEqual(layout.hosts, [[0, 2], [1, 3]])
        XCTAssertEqual(layout.localRank(of: 2), 1)
        XCTAssertEqual(layout.crossHostPeers(of: 3), [2, 3])
        XCTAssertEqual(layout.crossHostPeers(of: 0), [0, 1])
        XCTAssertTrue(layout.isHierarchical)
        XCTAssertEqual(layout.summary, "2 hosts × 2 workers")
        XCTAssertFalse(HostLayout(hostKeys: ["a", "a", "a"]).isHierarchical, "one host: the flat ring")
        XCTAssertFalse(HostLayout(hostKeys: ["a", "b", "c"]).isHierarchical, "one worker per host: the flat ring")
        XCTAssertFalse(HostLayout(hostKeys: ["a", "a", "b"]).isHierarchical, "uneven hosts: the flat ring")
        XCTAssertEqual(HostLayout(hostKeys: ["a", "a", "b"]).summary, "[0,1] [2]")
    }

    /// Ranks of `keys` as hosts; returns every rank's result and its bytes sent to other hosts.
    private func allReduce(keys: [String], count: Int, wire: WireFormat, seed: UInt64)
        -> (results: [[Float]], crossBytes: [Int], inputs: [[Float]])? {
        let n = keys.count
        let layout = HostLayout(hostKeys: keys)
        let transports = InProcessTransport.makeGroup(worldSize: n, timeoutSeconds: 20)
        var random = TestRandom(seed: seed)
        let inputs = (0..<n).map { _ in random.floats(count) }
        guard let out = runRanks(n, { rank -> ([Float], Int) in
            let base = Communicator(transport: transports[rank], chunkBytes: 256)
            let local = Communicator(transport: GroupTransport(base: transports[rank], members: layout.hosts[layout.hostIndex[rank]], space: 2),
                                     chunkBytes: 256)
            let cross = Communicator(transport: GroupTransport(base: transports[rank], members: layout.crossHostPeers(of: rank), space: 1),
                                     chunkBytes: 256)
            base.hierarchy = CommunicatorHierarchy(local: local, cross: cross)
            var data = inputs[rank]
            try data.withUnsafeMutableBufferPointer { try base.allReduceSum($0.baseAddress!, count: count, wire: wire) }
            // A plain collective on the base communicator afterwards still meets its peers.
            try base.barrier()
            return (data, cross.bytesSent)
        }) else { return nil }
        return (out.map(\.0), out.map(\.1), inputs)
    }

    func testEveryRankBitwiseIdenticalAndSumsCorrect() throws {
        let layouts = [["a", "a", "b", "b"], ["a", "b", "a", "b"], ["a", "a", "a", "b", "b", "b"], ["a", "a", "b", "b", "c", "c"]]
        for keys in layouts {
            for count in [1, 3, 1000, 40_000, 150_001] {
                for wire in WireFormat.allCases {
                    let r = try XCTUnwrap(allReduce(keys: keys, count: count, wire: wire, seed: UInt64(count)))
                    for rank in 1..<keys.count {
                        XCTAssertEqual(bitPatterns(r.results[rank]), bitPatterns(r.results[0]),
                                       "\(keys) count \(count) \(wire): rank \(rank) differs bitwise")
                    }
                    let tolerance: Float = wire == .fp32 ? 1e-5 : wire == .fp16 ? 1e-2 : 8e-2
                    for i in stride(from: 0, to: count, by: max(1, count / 97)) {
                        let exact = r.inputs.reduce(0.0) { $0 + Double($1[i]) }
                        XCTAssertEqual(Double(r.results[0][i]), exact, accuracy: Double(tolerance) * Double(keys.count),
                                       "\(keys) count \(count) \(wire) element \(i)")
                    }
                }
            }
        }
    }

    /// 2 hosts × 2 workers, 1 MiB: the flat ring would send 2(N−1)/N = 1.5 buffers per
    /// rank, half of them across hosts; here each rank sends its half-slice across once
    /// each way of the cross all-reduce: 2(H−1)/H × 1/L = 1/2 buffer.
    func testCrossHostBytesAreTheSliceOnly() throws {
        let count = 1 << 18
        let r = try XCTUnwrap(allReduce(keys: ["a", "a", "b", "b"], count: count, wire: .fp32, seed: 7))
        for bytes in r.crossBytes { XCTAssertEqual(bytes, count * 4 / 2) }
    }
}
