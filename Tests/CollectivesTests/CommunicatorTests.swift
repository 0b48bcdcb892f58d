import XCTest
import TestSupport
@testable import LockstepCollectives

final class CommunicatorTests: XCTestCase {
    func testShardRangesTileAndBalance() {
        for n in 1...8 {
            for count in [0, 1, 5, 7, 8, 9, 1001] {
                let ranges = (0..<n).map { Communicator.shardRange(count: count, rank: $0, worldSize: n) }
                XCTAssertEqual(ranges.first?.lowerBound, 0)
                XCTAssertEqual(ranges.last?.upperBound, count)
                for k in 1..<n { XCTAssertEqual(ranges[k - 1].upperBound, ranges[k].lowerBound) }
                let sizes = ranges.map(\.count)
                XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1)
            }
        }
    }

    func testRingPlanChunksTileShards() {
        let plan = RingPlan(count: 1001, worldSize: 3, chunkBytes: 64)
        for shard in 0..<3 {
            let range = Communicator.shardRange(count: 1001, rank: shard, worldSize: 3)
            XCTAssertEqual(plan.chunks[shard].first?.lowerBound, range.lowerBound)
            XCTAssertEqual(plan.chunks[shard].last?.upperBound, range.upperBound)
            XCTAssertTrue(plan.chunks[shard].allSatisfy { $0.count <= 16 })
        }
    }

    func testVectorAddMatchesNaive() {
        for count in [0, 1, 7, 15, 16, 17, 33, 1000] {
            let a = (0..<count).map { Float($0) * 0.37 }
            let b = (0..<(count + 1)).map { Float($0) * -1.21 + 3 }
            var fast = a, naive = a
            // Misaligned source: one byte into a raw copy of b.
            let raw = UnsafeMutableRawPointer.allocate(byteCount: (count + 1) * 4 + 1, alignment: 16)
            defer { raw.deallocate() }
            b.withUnsafeBytes { (raw + 1).copyMemory(from: $0.baseAddress!, byteCount: count * 4) }
            fast.withUnsafeMutableBufferPointer { addInPlace($0.baseAddress!, raw + 1, count: count) }
            naive.withUnsafeMutableBufferPointer { dst in b.withUnsafeBufferPointer { addInPlaceNaive(dst.baseAddress!, $0.baseAddress!, count: count) } }
            XCTAssertEqual(bitPatterns(fast), bitPatterns(naive), "count \(count)")
        }
    }

    func testBroadcastFromEveryRoot() {
        for n in 1...4 {
            for root in 0..<n {
                let transports = InProcessTransport.makeGroup(worldSize: n, timeoutSeconds: 10)
                let out = runRanks(n) { rank -> [UInt8] in
                    let comm = Communicator(transport: transports[rank], chunkBytes: 100)
                    var bytes = (0..<1001).map { UInt8(truncatingIfNeeded: rank == root ? $0 &* 31 : 0) }
                    try bytes.withUnsafeMutableBytes { try comm.broadcast($0, root: root) }
                    return bytes
                }
                let expected = (0..<1001).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                XCTAssertEqual(out, Array(repeating: expected, count: n), "n=\(n) root=\(root)")
            }
        }
    }

    func testBarrierWaitsForEveryRank() {
        for n in 1...5 {
            let transports = InProcessTransport.makeGroup(worldSize: n, timeoutSeconds: 10)
            let arrived = ResultBox<Int>(count: n)
            let seen = runRanks(n) { rank -> Int in
                if rank == n - 1 { Thread.sleep(forTimeInterval: 0.05) }
                arrived.set(rank, .success(rank))
                try Communicator(transport: transports[rank]).barrier()
                // Everybody must have arrived before anybody leaves.
                return arrived.all().compactMap { $0 }.count
            }
            XCTAssertEqual(seen, Array(repeating: n, count: n), "n=\(n)")
        }
    }

    func testReceiveTimeoutNamesPeer() throws {
        let transports = InProcessTransport.makeGroup(worldSize: 2, timeoutSeconds: 0.3)
        let start = Date()
        var buffer = [UInt8](repeating: 0, count: 4)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try transports[0].receive(from: 1, tag: 1, into: $0) }) { error in
            XCTAssertEqual(error as? TransportError, .peerTimeout(rank: 1, host: "in-process", seconds: 0.3))
            XCTAssertTrue("\(error)".contains("rank 1"))
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2)
    }

    func testSizeMismatchIsTyped() throws {
        let transports = InProcessTransport.makeGroup(worldSize: 2, timeoutSeconds: 1)
        try [UInt8](repeating: 1, count: 8).withUnsafeBytes { try transports[1].send(to: 0, tag: 7, $0) }
        var buffer = [UInt8](repeating: 0, count: 4)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try transports[0].receive(from: 1, tag: 7, into: $0) }) {
            XCTAssertEqual($0 as? TransportError, .sizeMismatch(rank: 1, tag: 7, expected: 4, actual: 8))
        }
    }
}
