import XCTest
import Synchronization
import LockstepKernels
@testable import LockstepNN

/// BatchNorm's reductions between model replicas on threads: every replica gets the same bits.
final class ReplicaReducerTests: XCTestCase {
    func testSumAndGatherAgreeOnEveryReplica() throws {
        let replicas = 3, count = 37
        let pool = ThreadPool(threads: replicas)
        let rendezvous = ReplicaRendezvous(replicas: replicas, capacity: count * replicas, timeoutSeconds: 10)
        let reducers = rendezvous.makeReducers()
        let out = Mutex<[Int: ([Float], [Float])]>([:])
        let failed = Atomic<Int>(0)
        let ran = pool.runOnEachThread { r in
            do {
                var sums = [Float](), gathered = [Float]()
                // Several rounds reuse both exchange buffers alternately.
                for round in 0..<5 {
                    var v = (0..<count).map { Float($0) * 0.1 + Float(r) + Float(round) * 0.01 }
                    try v.withUnsafeMutableBufferPointer { try reducers[r].sum($0.baseAddress!, count: count) }
                    let local = (0..<count).map { Float(r * 1000 + $0 + round) }
                    var g = [Float](repeating: 0, count: count * replicas)
                    try local.withUnsafeBufferPointer { l in
                        try g.withUnsafeMutableBufferPointer { try reducers[r].gather(l.baseAddress!, count: count, into: $0.baseAddress!) }
                    }
                    sums += v
                    gathered += g
                }
                out.withLock { $0[r] = (sums, gathered) }
            } catch { failed.add(1, ordering: .relaxed) }
        }
        XCTAssertTrue(ran)
        XCTAssertEqual(failed.load(ordering: .relaxed), 0)
        let results = out.withLock { $0 }
        XCTAssertEqual(results.count, replicas)
        for r in 1..<replicas {
            XCTAssertEqual(results[r]!.0.map(\.bitPattern), results[0]!.0.map(\.bitPattern), "sums differ on replica \(r)")
            XCTAssertEqual(results[r]!.1, results[0]!.1, "gathers differ on replica \(r)")
        }
        // Round 4's sum in replica order, and its gather in rank order.
        let sums = Array(results[0]!.0[(4 * count)...])
        for i in 0..<count {
            let expected = ((Float(i) * 0.1 + 0 + 0.04) + (Float(i) * 0.1 + 1 + 0.04)) + (Float(i) * 0.1 + 2 + 0.04)
            XCTAssertEqual(sums[i], expected, "sum \(i)")
        }
        let g = Array(results[0]!.1[(4 * count * replicas)...])
        for r in 0..<replicas { for i in 0..<count { XCTAssertEqual(g[r * count + i], Float(r * 1000 + i + 4)) } }
    }

    /// A replica whose partner never arrives gets an error, not a hang.
    func testMissingReplicaThrows() {
        let rendezvous = ReplicaRendezvous(replicas: 2, capacity: 8, timeoutSeconds: 0.2)
        let reducer = rendezvous.makeReducers()[0]
        var v: [Float] = [1, 2, 3]
        XCTAssertThrowsError(try v.withUnsafeMutableBufferPointer { try reducer.sum($0.baseAddress!, count: 3) }) { error in
            XCTAssertTrue(error is ReplicaGroupError)
        }
    }
}
