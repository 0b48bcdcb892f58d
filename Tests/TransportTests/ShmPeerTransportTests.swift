import Foundation
import XCTest
import TestSupport
import LockstepCollectives
@testable import LockstepTransport

/// The shared-memory data plane: collectives, streaming through small rings,
/// interleaved tags, deadlines and bad segments (one thread per rank here;
/// the multiprocess tests run it between real processes).
final class ShmPeerTransportTests: XCTestCase {
    static let jobID: UInt64 = 0x5EED_5117

    func makeGroup(_ worldSize: Int, timeout: Double = 10, ringBytes: Int? = nil, job: UInt64 = jobID) throws -> [ShmPeerTransport] {
        let stem = "lockstep-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let transports = try (0..<worldSize).map {
            try ShmPeerTransport(rank: $0, worldSize: worldSize, jobID: job, bindEndpoint: "shm://\(stem)-\($0)",
                                 timeoutSeconds: timeout, ringBytes: ringBytes)
        }
        let table = transports.map(\.boundEndpoint)
        for transport in transports { try transport.connect(peers: table) }
        return transports
    }

    func testEndpointPaths() {
        XCTAssertEqual(ShmPeerTransport.path(ofEndpoint: "shm://abc"), "/dev/shm/abc")
        XCTAssertEqual(ShmPeerTransport.path(ofEndpoint: "shm:///tmp/x"), "/tmp/x")
        XCTAssertNil(ShmPeerTransport.path(ofEndpoint: "shm://"))
        XCTAssertNil(ShmPeerTransport.path(ofEndpoint: "tcp://127.0.0.1:5"))
    }

    func testCollectivesMatchExactSums() throws {
        // A 4 KiB ring: every large message streams through it in pieces and
        // is assembled privately; larger rings take the in-place path (and
        // fillers where a record would wrap). At most 24 MiB of /dev/shm at a
        // time, as containers often give it only 64 MiB.
        for (n, ring) in [(2, 4096), (3, 4096), (4, 4096), (2, nil), (3, nil), (5, 1 << 20)] as [(Int, Int?)] {
            let transports = try makeGroup(n, ringBytes: ring)
            let counts = Array(Set([0, 1, n - 1, 1001, 300_001])).sorted()
            let results = runRanks(n, timeout: 60) { rank -> [[UInt32]] in
                var outputs: [[UInt32]] = []
                for count in counts {
                    let comm = Communicator(transport: transports[rank], chunkBytes: count > 10_000 ? 16_384 : 64)
                    for threshold in [0, Int.max] where !(threshold == Int.max && count > 5000) {
                        comm.smallMessageThreshold = threshold
                        var data = (0..<count).map { testValue($0, rank) }
                        try data.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: count) }
                        outputs.append(bitPatterns(data))
                    }
                    var gathered = (0..<count).map { comm.shardRange(count: count, rank: rank).contains($0) ? testValue($0, rank) : .nan }
                    try gathered.withUnsafeMutableBufferPointer { try comm.allGather($0.baseAddress!, count: count) }
                    outputs.append(bitPatterns(gathered))
                    try comm.barrier()
                }
                return outputs
            }
            guard let results else { return }
            for rank in 0..<n {
                var expected: [[UInt32]] = []
                for count in counts {
                    let sums = (0..<count).map { i in (0..<n).reduce(Float(0)) { $0 + testValue(i, $1) } }
                    for threshold in [0, Int.max] where !(threshold == Int.max && count > 5000) {
                        _ = threshold
                        expected.append(bitPatterns(sums))
                    }
                    expected.append(bitPatterns((0..<n).flatMap { owner in
                        Communicator.shardRange(count: count, rank: owner, worldSize: n).map { testValue($0, owner) }
                    }))
                }
                XCTAssertEqual(results[rank].count, expected.count)
                for (index, (got, want)) in zip(results[rank], expected).enumerated() where got != want {
                    XCTFail("n=\(n) ring \(ring ?? 0) rank \(rank): result #\(index) differs")
                }
            }
        }
    }

    func testEverybodySendsMoreThanTheRingThenReceives() throws {
        // Both ranks send 1 MiB through a 4 KiB ring before either receives:
        // a sender waiting for room must drain its own ring, or this deadlocks.
        let transports = try makeGroup(2, timeout: 10, ringBytes: 4096)
        let results = runRanks(2, timeout: 30) { rank -> [UInt8] in
            let peer = 1 - rank
            let outgoing = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ rank) }
            try outgoing.withUnsafeBytes { try transports[rank].send(to: peer, tag: 9, $0) }
            try [UInt8(rank)].withUnsafeBytes { try transports[rank].send(to: peer, tag: 10, $0) }
            // Receive out of order: the later tag first.
            var small = [UInt8](repeating: 0, count: 1)
            try small.withUnsafeMutableBytes { try transports[rank].receive(from: peer, tag: 10, into: $0) }
            var incoming = [UInt8](repeating: 0, count: 1 << 20)
            try incoming.withUnsafeMutableBytes { try transports[rank].receive(from: peer, tag: 9, into: $0) }
            return small + incoming
        }
        guard let results else { return }
        for rank in 0..<2 {
            let peer = 1 - rank
            XCTAssertEqual(results[rank][0], UInt8(peer))
            XCTAssertEqual(Array(results[rank].dropFirst()), (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ peer) })
        }
    }

    func testSizeMismatchAndTimeoutAreTyped() throws {
        let transports = try makeGroup(3, timeout: 0.5)
        try [Float](repeating: 1, count: 4).withUnsafeBytes { try transports[1].send(to: 0, tag: 3, $0) }
        var wrong = [UInt8](repeating: 0, count: 8)
        XCTAssertThrowsError(try wrong.withUnsafeMutableBytes { try transports[0].receive(from: 1, tag: 3, into: $0) }) {
            XCTAssertEqual($0 as? TransportError, .sizeMismatch(rank: 1, tag: 3, expected: 8, actual: 16))
        }
        let start = Date()
        XCTAssertThrowsError(try wrong.withUnsafeMutableBytes { try transports[0].receive(from: 2, tag: 1, into: $0) }) {
            guard case .peerTimeout(rank: 2, _, 0.5)? = $0 as? TransportError else { return XCTFail("got \($0)") }
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThanOrEqual(elapsed, 0.45)
        XCTAssertLessThan(elapsed, 1.5)
    }

    func testSendIntoAFullRingOfADeadPeerTimesOut() throws {
        let transports = try makeGroup(2, timeout: 0.3, ringBytes: 4096)
        let payload = [UInt8](repeating: 1, count: 10_000)
        XCTAssertThrowsError(try payload.withUnsafeBytes { try transports[0].send(to: 1, tag: 1, $0) }) {
            guard case .peerTimeout(rank: 1, _, _)? = $0 as? TransportError else { return XCTFail("got \($0)") }
        }
        // The ring now holds half a record: the transport refuses further use
        // at once rather than let the peer misparse what follows.
        let start = Date()
        XCTAssertThrowsError(try [UInt8(1)].withUnsafeBytes { try transports[0].send(to: 1, tag: 2, $0) }) {
            guard case .peerTimeout(rank: 1, _, _)? = $0 as? TransportError else { return XCTFail("got \($0)") }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 0.1)
    }

    func testForeignAndMissingSegmentsAreRefused() throws {
        let stem = "lockstep-test-\(getpid())-refuse"
        let a = try ShmPeerTransport(rank: 0, worldSize: 2, jobID: 1, bindEndpoint: "shm://\(stem)-0")
        let other = try ShmPeerTransport(rank: 1, worldSize: 2, jobID: 2, bindEndpoint: "shm://\(stem)-1")
        XCTAssertThrowsError(try a.connect(peers: [a.boundEndpoint, other.boundEndpoint])) {
            XCTAssertTrue("\($0)".contains("another job"), "\($0)")
        }
        XCTAssertThrowsError(try a.connect(peers: [a.boundEndpoint, "tcp://127.0.0.1:5555"])) {
            XCTAssertTrue("\($0)".contains("every worker on this machine"), "\($0)")
        }
        XCTAssertThrowsError(try a.connect(peers: [a.boundEndpoint, "shm://\(stem)-missing"])) {
            XCTAssertTrue("\($0)".contains("No such file"), "\($0)")
        }
        // Creating over an existing name is refused, never shared by accident.
        XCTAssertThrowsError(try ShmPeerTransport(rank: 0, worldSize: 2, jobID: 1, bindEndpoint: "shm://\(stem)-0")) {
            XCTAssertTrue("\($0)".contains("it exists"), "\($0)")
        }
        a.close()
        other.close()
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/dev/shm/\(stem)-0"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/dev/shm/\(stem)-1"))
    }
}
