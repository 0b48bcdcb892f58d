import Foundation
import XCTest
import TestSupport
import LockstepCollectives
@testable import LockstepTransport
import CZeroMQ

/// Collectives and failure handling over real ZeroMQ sockets on loopback TCP
/// (one thread per rank in this process).
final class ZMQPeerTransportTests: XCTestCase {
    static let jobID: UInt64 = 0x1057_57E9

    func makeGroup(_ worldSize: Int, context: ZMQContext, timeout: Double = 10) throws -> [ZMQPeerTransport] {
        let transports = try (0..<worldSize).map {
            try ZMQPeerTransport(rank: $0, worldSize: worldSize, jobID: Self.jobID, bindEndpoint: "tcp://127.0.0.1:0",
                                 context: context, timeoutSeconds: timeout)
        }
        let table = transports.map(\.boundEndpoint)
        for transport in transports { try transport.connect(peers: table) }
        return transports
    }

    func testBoundEndpointIsResolved() throws {
        let context = try ZMQContext()
        let transport = try ZMQPeerTransport(rank: 0, worldSize: 1, jobID: 1, bindEndpoint: "tcp://127.0.0.1:0", context: context)
        XCTAssertTrue(transport.boundEndpoint.hasPrefix("tcp://127.0.0.1:"))
        XCTAssertNotEqual(transport.boundEndpoint, "tcp://127.0.0.1:0")
        XCTAssertEqual(transport.host(ofRank: 0), "127.0.0.1")
    }

    func testCollectivesOverLoopbackTCP() throws {
        let context = try ZMQContext()
        // Every payload copied, then every payload sent in place (two-part frames).
        for (n, zeroCopyMinimum) in [(2, Int.max), (3, Int.max), (4, Int.max), (2, 1), (3, 1), (4, 1)] {
            let transports = try makeGroup(n, context: context)
            transports.forEach { $0.zeroCopyMinimumBytes = zeroCopyMinimum }
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
                    var scattered = (0..<count).map { testValue($0, rank) }
                    try scattered.withUnsafeMutableBufferPointer { try comm.reduceScatterSum($0.baseAddress!, count: count) }
                    let mine = comm.shardRange(count: count, rank: rank)
                    outputs.append(bitPatterns(Array(scattered[mine])))
                    var gathered = (0..<count).map { mine.contains($0) ? testValue($0, rank) : .nan }
                    try gathered.withUnsafeMutableBufferPointer { try comm.allGather($0.baseAddress!, count: count) }
                    outputs.append(bitPatterns(gathered))
                    try comm.barrier()
                }
                return outputs
            }
            guard let results else { return }
            // Recompute the expectations in the same order as the ranks ran.
            var expected: [[[UInt32]]] = Array(repeating: [], count: n)
            for count in counts {
                let sums = (0..<count).map { i in (0..<n).reduce(Float(0)) { $0 + testValue(i, $1) } }
                for rank in 0..<n {
                    for threshold in [0, Int.max] where !(threshold == Int.max && count > 5000) {
                        _ = threshold
                        expected[rank].append(bitPatterns(sums))
                    }
                    let mine = Communicator.shardRange(count: count, rank: rank, worldSize: n)
                    expected[rank].append(bitPatterns(Array(sums[mine])))
                    expected[rank].append(bitPatterns((0..<n).flatMap { owner in
                        Communicator.shardRange(count: count, rank: owner, worldSize: n).map { testValue($0, owner) }
                    }))
                }
            }
            for rank in 0..<n {
                XCTAssertEqual(results[rank].count, expected[rank].count)
                for (index, (got, want)) in zip(results[rank], expected[rank]).enumerated() where got != want {
                    XCTFail("n=\(n) rank \(rank): result #\(index) differs")
                }
                XCTAssertEqual(transports[rank].rejectedFrames, 0)
            }
        }
    }

    func testMalformedFramesAreRejectedAndTransportKeepsWorking() throws {
        let context = try ZMQContext()
        let transports = try makeGroup(2, context: context)
        transports[0].logsRejections = false
        let intruder = try ZMQSocket(context: context, kind: .push, lingerMilliseconds: 1000)
        try intruder.connect(transports[0].boundEndpoint)
        // Garbage, a corrupted frame, a foreign job's frame, a frame claiming to be rank 0 itself, a control frame.
        try intruder.send([UInt8](repeating: 0xEE, count: 100))
        var corrupted = WireFrame(kind: .data, jobID: Self.jobID, step: 1, senderRank: 1, payload: [UInt8](repeating: 0, count: 16)).encoded()
        corrupted[60] ^= 1
        try intruder.send(corrupted)
        try intruder.send(WireFrame(kind: .data, jobID: 999, step: 1, senderRank: 1, payload: [UInt8](repeating: 0, count: 16)).encoded())
        try intruder.send(WireFrame(kind: .data, jobID: Self.jobID, step: 1, senderRank: 0, payload: []).encoded())
        try intruder.send(WireFrame(kind: .heartbeat, jobID: Self.jobID, senderRank: 1).encoded())
        try intruder.sendMultipart([[1], [2]])

        assertRingAllReduceIsExact(transports)
        // The intruder's frames may still be in flight when the collective ends; wait, bounded.
        let start = Date()
        while transports[0].rejectedFrames < 6 && Date().timeIntervalSince(start) < 5 {
            var nothing: [UInt8] = []
            _ = try? nothing.withUnsafeMutableBytes { try transports[0].receive(from: 1, tag: 0xFFFF, into: $0) }
            transports[0].timeoutSeconds = 0.05
        }
        XCTAssertEqual(transports[0].rejectedFrames, 6)
        XCTAssertEqual(transports[1].rejectedFrames, 0)
        XCTAssertNotNil(transports[0].lastRejection)
    }

    /// Frames with the job's id that a stranger could send: one far ahead of the
    /// collectives (it would be held forever), and one of the wrong size under the very
    /// tag the next collective uses (it would have aborted it). Both are dropped.
    func testFarTagsAndWrongSizesAreDroppedNotHeldOrFatal() throws {
        let context = try ZMQContext()
        let transports = try makeGroup(2, context: context)
        transports[0].logsRejections = false
        let intruder = try ZMQSocket(context: context, kind: .push, lingerMilliseconds: 1000)
        try intruder.connect(transports[0].boundEndpoint)
        let far = UInt64(ZMQPeerTransport.tagWindow + 5)
        try intruder.send(WireFrame(kind: .data, jobID: Self.jobID, step: far, senderRank: 1, payload: [UInt8](repeating: 1, count: 64)).encoded())
        try intruder.send(WireFrame(kind: .data, jobID: Self.jobID, step: 1, senderRank: 1, payload: [UInt8](repeating: 9, count: 7)).encoded())
        Thread.sleep(forTimeInterval: 0.2)  // the intruder's frames arrive first

        assertRingAllReduceIsExact(transports)
        XCTAssertEqual(transports[0].rejectedFrames, 2, transports[0].lastRejection ?? "")
    }

    /// A ring all-reduce of 1001 floats in 64-byte chunks between the two ranks gives the exact sums.
    private func assertRingAllReduceIsExact(_ transports: [ZMQPeerTransport], file: StaticString = #filePath, line: UInt = #line) {
        let results = runRanks(2, timeout: 30) { rank -> [Float] in
            let comm = Communicator(transport: transports[rank], chunkBytes: 64)
            comm.smallMessageThreshold = 0
            var data = (0..<1001).map { testValue($0, rank) }
            try data.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: 1001) }
            return data
        }
        let expected = (0..<1001).map { testValue($0, 0) + testValue($0, 1) }
        XCTAssertEqual(results?[0], expected, file: file, line: line)
        XCTAssertEqual(results?[1], expected, file: file, line: line)
    }

    func testReceiveTimeoutIsTypedAndOnTime() throws {
        let context = try ZMQContext()
        let transports = try makeGroup(3, context: context, timeout: 0.5)
        let start = Date()
        var buffer = [UInt8](repeating: 0, count: 16)
        XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try transports[0].receive(from: 2, tag: 1, into: $0) }) { error in
            // Named by the address that was dialled (no host table given: the address alone).
            let dialled = String(transports[2].boundEndpoint.dropFirst("tcp://".count))
            XCTAssertEqual(error as? TransportError, .peerTimeout(rank: 2, host: dialled, seconds: 0.5))
            XCTAssertTrue("\(error)".contains("rank 2"))
            XCTAssertTrue("\(error)".contains("127.0.0.1"))
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertGreaterThanOrEqual(elapsed, 0.45)
        XCTAssertLessThan(elapsed, 1.5)
    }

    func testCollectiveWithDeadPeerFailsWithTimeout() throws {
        let context = try ZMQContext()
        let transports = try makeGroup(2, context: context, timeout: 0.5)
        let comm = Communicator(transport: transports[0])
        var data = [Float](repeating: 1, count: 100_000)
        XCTAssertThrowsError(try data.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: $0.count) }) {
            guard case .peerTimeout(rank: 1, _, _)? = $0 as? TransportError else { return XCTFail("got \($0)") }
        }
    }

    func testIPCEndpoint() throws {
        let context = try ZMQContext()
        let directory = FileManager.default.temporaryDirectory.path
        let transports = try (0..<2).map {
            try ZMQPeerTransport(rank: $0, worldSize: 2, jobID: 7, bindEndpoint: "ipc://\(directory)/lockstep-test-\(getpid())-\($0)",
                                 context: context, timeoutSeconds: 10)
        }
        for transport in transports { try transport.connect(peers: transports.map(\.boundEndpoint)) }
        let results = runRanks(2) { rank -> [Float] in
            var data: [Float] = [Float(rank), 1, 2]
            try data.withUnsafeMutableBufferPointer { try Communicator(transport: transports[rank]).allReduceSum($0.baseAddress!, count: 3) }
            return data
        }
        XCTAssertEqual(results, [[1, 2, 4], [1, 2, 4]])
    }

    func testRouterDealerMultipartForControlMessages() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, kind: .router)
        // Unknown routing ids become errors instead of silent drops.
        try router.setOption(ZMQ_ROUTER_MANDATORY, 1, name: "ZMQ_ROUTER_MANDATORY")
        try router.bind("tcp://127.0.0.1:0")
        let dealer = try ZMQSocket(context: context, kind: .dealer)
        try dealer.setRoutingID(Array("worker-7".utf8))
        try dealer.connect(try router.lastEndpoint)
        let hello = WireFrame(kind: .hello, jobID: 3, senderRank: WireFrame.noRank, payload: Array("config-hash".utf8))
        try dealer.send(hello.encoded())
        let parts = try XCTUnwrap(router.receiveMultipart(timeoutSeconds: 5))
        XCTAssertEqual(parts.count, 2)
        XCTAssertEqual(parts[0].array, Array("worker-7".utf8))
        XCTAssertEqual(try WireFrame.decode(parts[1].array, expectedJobID: 3), hello)
        let welcome = WireFrame(kind: .welcome, jobID: 3, senderRank: WireFrame.noRank, payload: [0, 0, 0, 0])
        try router.sendMultipart([parts[0].array, welcome.encoded()])
        let reply = try XCTUnwrap(dealer.receiveMultipart(timeoutSeconds: 5))
        XCTAssertEqual(try WireFrame.decode(reply[0].array), welcome)
        // Nothing more: a bounded wait returns nil.
        XCTAssertNil(try dealer.receiveMultipart(timeoutSeconds: 0.05))
    }

    func testZMQErrorIsTyped() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, kind: .pull)
        XCTAssertThrowsError(try socket.bind("bogus://nowhere")) { error in
            let zmqError = error as? ZMQError
            XCTAssertEqual(zmqError?.call, "zmq_bind(bogus://nowhere)")
            XCTAssertFalse(zmqError?.message.isEmpty ?? true)
        }
        socket.close()
        XCTAssertThrowsError(try socket.receive(dontWait: true))
    }
}
