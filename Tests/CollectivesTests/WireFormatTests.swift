import XCTest
import TestSupport
@testable import LockstepCollectives

/// fp16 / bf16 gradient payloads: half the bytes, fp32 sums, ranks still bitwise identical.
final class WireFormatTests: XCTestCase {
    func testEncodeDecodeRoundTrip() {
        let values: [Float] = [0, -0, 1, -1.5, 3.140625, 65504, 1e-3, -2.5e-5, 1e30]
        for wire in WireFormat.allCases {
            var encoded = [UInt8](repeating: 0, count: values.count * wire.bytesPerElement)
            var decoded = [Float](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { src in
                encoded.withUnsafeMutableBytes { wire.encode(src.baseAddress!, count: values.count, into: $0.baseAddress!) }
            }
            encoded.withUnsafeBytes { raw in
                decoded.withUnsafeMutableBufferPointer { wire.decode(raw.baseAddress!, count: values.count, into: $0.baseAddress!) }
            }
            var quantized = values
            quantized.withUnsafeMutableBufferPointer { wire.quantize($0.baseAddress!, count: values.count) }
            XCTAssertEqual(decoded.map(\.bitPattern), quantized.map(\.bitPattern), "\(wire): decode(encode(x)) must equal quantize(x)")
            let tolerance: Float = wire == .fp32 ? 0 : (wire == .fp16 ? 1.0 / 1024 : 1.0 / 128)
            for (v, d) in zip(values.prefix(7), decoded.prefix(7)) {
                XCTAssertLessThanOrEqual(abs(v - d), tolerance * abs(v), "\(wire) \(v) → \(d)")
            }
        }
        XCTAssertEqual(WireFormat.bf16(1.00390625), 0x3F80)  // ties to even
        XCTAssertTrue(Float(Float16(Float(1e30))).isInfinite, "fp16 overflows to inf")
    }

    func testAllReduceOverHalfPrecisionWireIsIdenticalEverywhereAndClose() throws {
        for wire in [WireFormat.fp16, .bf16] {
            for (world, count) in [(2, 1000), (3, 5), (4, 100_003)] {
                let transports = InProcessTransport.makeGroup(worldSize: world)
                let results = runRanks(world) { rank -> [Float] in
                    let comm = Communicator(transport: transports[rank], chunkBytes: 4096)
                    var data = (0..<count).map { Float(($0 * 7 + rank * 13) % 101) * 0.01 - 0.5 }
                    try data.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: count, wire: wire) }
                    return data
                }
                guard let results else { return }
                for r in 1..<world {
                    XCTAssertEqual(results[r].map(\.bitPattern), results[0].map(\.bitPattern), "\(wire) N=\(world) n=\(count): rank \(r) differs")
                }
                var worst: Float = 0
                for i in 0..<count {
                    let exact = (0..<world).reduce(Float(0)) { $0 + Float((i * 7 + $1 * 13) % 101) * 0.01 - 0.5 }
                    worst = max(worst, abs(results[0][i] - exact))
                }
                let bound: Float = (wire == .fp16 ? 2e-3 : 1.6e-2) * Float(world)
                XCTAssertLessThan(worst, bound, "\(wire) N=\(world) n=\(count): max error \(worst)")
            }
        }
    }

    func testHalfPrecisionWireSendsHalfTheBytes() throws {
        let count = 200_000
        var sent: [WireFormat: Int] = [:]
        for wire in [WireFormat.fp32, .fp16] {
            let transports = InProcessTransport.makeGroup(worldSize: 2)
            let results = runRanks(2) { rank -> Int in
                let comm = Communicator(transport: transports[rank])
                var data = [Float](repeating: Float(rank), count: count)
                try data.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: count, wire: wire) }
                return comm.bytesSent
            }
            sent[wire] = results?[0]
        }
        XCTAssertEqual(sent[.fp16]! * 2, sent[.fp32]!)
    }
}
