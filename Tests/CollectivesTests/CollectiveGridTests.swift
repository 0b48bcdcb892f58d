import XCTest
import TestSupport
@testable import LockstepCollectives

/// Collectives over `InProcessTransport` on a grid of world sizes × lengths,
/// with a 64-byte chunk to force the multi-chunk, pipelined path.
final class CollectiveGridTests: XCTestCase {
    static let worldSizes = 1...5
    static func lengths(_ n: Int) -> [Int] { Array(Set([0, 1, max(n - 1, 0), 1001, 300_001])).sorted() }

    /// Runs `op` on every rank with fresh communicators; returns each rank's buffer.
    func run(
        worldSize: Int, count: Int, chunkBytes: Int? = nil, smallThreshold: Int? = nil,
        fill: @escaping @Sendable (Int, Int) -> Float,
        _ op: @escaping @Sendable (Communicator, UnsafeMutablePointer<Float>) throws -> Void
    ) -> [[Float]]? {
        let transports = InProcessTransport.makeGroup(worldSize: worldSize, timeoutSeconds: 20)
        return runRanks(worldSize) { rank in
            // Tiny chunks force the multi-chunk path; 4 KiB keeps the large case quick
            // while still cutting every shard into dozens of chunks.
            let comm = Communicator(transport: transports[rank], chunkBytes: chunkBytes ?? (count > 10_000 ? 4096 : 64))
            if let smallThreshold { comm.smallMessageThreshold = smallThreshold }
            var data = (0..<count).map { fill($0, rank) }
            try data.withUnsafeMutableBufferPointer { try op(comm, $0.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!) }
            if worldSize == 1 { XCTAssertEqual(comm.bytesSent, 0) }
            return data
        }
    }

    func expectedSum(_ index: Int, worldSize n: Int) -> Float {
        (0..<n).reduce(Float(0)) { $0 + testValue(index, $1) }
    }

    func testAllReduceRingAndSmallPaths() {
        for n in Self.worldSizes {
            for count in Self.lengths(n) {
                // threshold 0: always ring; Int.max: always the direct exchange.
                for threshold in [0, Int.max] where !(threshold == Int.max && count > 5000) {
                    guard let out = run(worldSize: n, count: count, smallThreshold: threshold, fill: testValue, {
                        try $0.allReduceSum($1, count: count)
                    }) else { return }
                    let expected = (0..<count).map { expectedSum($0, worldSize: n) }
                    for rank in 0..<n where out[rank] != expected {
                        XCTFail("allReduce n=\(n) count=\(count) threshold=\(threshold) rank \(rank) wrong")
                        return
                    }
                }
            }
        }
    }

    /// Recursive doubling on every world size up to 8: powers of two, and 1-3 extra
    /// ranks folded in and served the result. Exact sums, every rank the same bits.
    func testRecursiveDoublingAllReduce() {
        for n in 1...8 {
            for count in [0, 1, 7, 1001, 20_001] {
                guard let out = run(worldSize: n, count: count, fill: testValue, {
                    try $0.recursiveDoublingAllReduceSum($1, count: count)
                }) else { return }
                let expected = (0..<count).map { expectedSum($0, worldSize: n) }
                for rank in 0..<n where out[rank] != expected {
                    XCTFail("recursive doubling n=\(n) count=\(count) rank \(rank) wrong")
                    return
                }
            }
            let fill: @Sendable (Int, Int) -> Float = { i, r in
                Float(sin(Double(i &* 7919 &+ r &* 104_729))) * 1e3 / Float(i % 17 + 1)
            }
            guard let out = run(worldSize: n, count: 3001, fill: fill, {
                try $0.recursiveDoublingAllReduceSum($1, count: 3001)
            }) else { return }
            for rank in 1..<max(n, 1) {
                XCTAssertEqual(bitPatterns(out[rank]), bitPatterns(out[0]), "recursive doubling n=\(n): rank \(rank) differs bitwise")
            }
            if n == 4 {
                // ((x0 + x1) + (x2 + x3)), not the rank-order sum.
                let i = 5
                XCTAssertEqual(out[0][i].bitPattern, ((fill(i, 0) + fill(i, 1)) + (fill(i, 2) + fill(i, 3))).bitPattern)
            }
        }
    }

    func testReduceScatter() {
        for n in Self.worldSizes {
            for count in Self.lengths(n) {
                guard let out = run(worldSize: n, count: count, fill: testValue, {
                    try $0.reduceScatterSum($1, count: count)
                }) else { return }
                for rank in 0..<n {
                    let shard = Communicator.shardRange(count: count, rank: rank, worldSize: n)
                    let expected = shard.map { expectedSum($0, worldSize: n) }
                    XCTAssertEqual(Array(out[rank][shard]), expected, "reduceScatter n=\(n) count=\(count) rank \(rank)")
                }
            }
        }
    }

    /// Both all-gathers (and the automatic choice) on world sizes up to 8, powers of two or not.
    func testAllGather() {
        let algorithms: [(String, @Sendable (Communicator, UnsafeMutablePointer<Float>, Int) throws -> Void)] = [
            ("auto", { try $0.allGather($1, count: $2) }),
            ("ring", { try $0.ringAllGather($1, count: $2) }),
            ("bruck", { try $0.bruckAllGather($1, count: $2) }),
        ]
        for n in 1...8 {
            for count in Self.lengths(n) {
                for (name, gather) in algorithms where !(name == "bruck" && count > 5000) {
                    // Each rank owns its shard; everything else is NaN garbage.
                    guard let out = run(worldSize: n, count: count, fill: { index, rank in
                        Communicator.shardRange(count: count, rank: rank, worldSize: n).contains(index)
                            ? testValue(index, rank) : .nan
                    }, { try gather($0, $1, count) }) else { return }
                    let expected = (0..<n).flatMap { owner in
                        Communicator.shardRange(count: count, rank: owner, worldSize: n).map { testValue($0, owner) }
                    }
                    for rank in 0..<n where out[rank] != expected {
                        XCTFail("\(name) allGather n=\(n) count=\(count) rank \(rank) wrong")
                        return
                    }
                }
            }
        }
    }

    /// Inexact values: summation order matters, yet every rank must hold the
    /// same bits, and the result must be close to a float64 reference.
    func testAllReduceBitwiseIdenticalWithRoundingValues() {
        for n in 2...5 {
            for (count, threshold) in [(1001, 0), (1001, Int.max), (30_001, 0)] {
                let fill: @Sendable (Int, Int) -> Float = { i, r in
                    Float(sin(Double(i &* 7919 &+ r &* 104_729))) * 1e3 / Float(i % 17 + 1)
                }
                guard let out = run(worldSize: n, count: count, chunkBytes: 256, smallThreshold: threshold, fill: fill, {
                    try $0.allReduceSum($1, count: count)
                }) else { return }
                for rank in 1..<n {
                    XCTAssertEqual(bitPatterns(out[rank]), bitPatterns(out[0]), "n=\(n) count=\(count) rank \(rank) differs bitwise")
                }
                // Error relative to the sum of magnitudes (cancellation-safe bound).
                var maxError = 0.0
                for i in 0..<count {
                    let reference = (0..<n).reduce(0.0) { $0 + Double(fill(i, $1)) }
                    let magnitude = (0..<n).reduce(0.0) { $0 + abs(Double(fill(i, $1))) }
                    maxError = max(maxError, abs(Double(out[0][i]) - reference) / max(1e-30, magnitude))
                }
                XCTAssertLessThan(maxError, Double(n) * 1.2e-7, "n=\(n) count=\(count)")
            }
        }
    }

    /// Same inputs, same world size → same bits, run after run.
    func testRingIsDeterministicAcrossRuns() {
        let fill: @Sendable (Int, Int) -> Float = { i, r in Float(i % 97) * 0.1 + Float(r) * 0.3 }
        let first = run(worldSize: 3, count: 5000, chunkBytes: 512, smallThreshold: 0, fill: fill) { try $0.allReduceSum($1, count: 5000) }
        let second = run(worldSize: 3, count: 5000, chunkBytes: 128, smallThreshold: 0, fill: fill) { try $0.allReduceSum($1, count: 5000) }
        XCTAssertEqual(first.map { $0.map(bitPatterns) }, second.map { $0.map(bitPatterns) })
    }

    func testConsecutiveCollectivesDoNotMix() {
        guard let out = run(worldSize: 4, count: 2000, smallThreshold: 0, fill: testValue, { comm, data in
            try comm.allReduceSum(data, count: 1000)
            try comm.barrier()
            try comm.reduceScatterSum(data + 1000, count: 1000)
            try comm.allGather(data + 1000, count: 1000)
            try comm.smallAllReduceSum(data, count: 10)
        }) else { return }
        for rank in 0..<4 {
            XCTAssertEqual(out[rank][5], expectedSum(5, worldSize: 4) * 4)
            XCTAssertEqual(out[rank][500], expectedSum(500, worldSize: 4))
            XCTAssertEqual(Array(out[rank][1000...]), (1000..<2000).map { expectedSum($0, worldSize: 4) })
        }
    }
}
