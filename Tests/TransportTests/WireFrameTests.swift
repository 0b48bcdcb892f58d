import XCTest
@testable import LockstepTransport

final class WireFrameTests: XCTestCase {
    let sample = WireFrame(kind: .data, jobID: 0x0123_4567_89AB_CDEF, step: 42, senderRank: 3,
                           chunkOffset: 4096, payload: (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) })

    func testCRC32CKnownVectorAndFastPathMatchesNaive() {
        XCTAssertEqual(Array("123456789".utf8).withUnsafeBytes { CRC32C.checksum($0) }, 0xE306_9283)
        for count in [0, 1, 7, 8, 9, 63, 1000, 767, 769, 24_575, 24_577, 60_001] {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
            XCTAssertEqual(bytes.withUnsafeBytes { CRC32C.checksum($0) }, CRC32C.checksumNaive(bytes), "count \(count)")
            // Continuing a CRC over a split equals the CRC of the whole.
            let split = count / 3
            let first = bytes[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            XCTAssertEqual(bytes[split...].withUnsafeBytes { CRC32C.checksum($0, continuing: first) }, CRC32C.checksumNaive(bytes))
            // The fused copy gives the same CRC and an exact copy.
            var copy = [UInt8](repeating: 0, count: count)
            let copied = copy.withUnsafeMutableBytes { out in
                bytes.withUnsafeBytes { CRC32C.copyAndChecksum($0, to: out.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!) }
            }
            XCTAssertEqual(copied, CRC32C.checksumNaive(bytes), "copy, count \(count)")
            XCTAssertEqual(copy, bytes)
        }
    }

    func testRoundTripEveryKind() throws {
        for kind in WireFrame.MessageKind.allCases {
            for payload in [[], [1], Array(repeating: UInt8(0xAB), count: 70_000)] as [[UInt8]] {
                let frame = WireFrame(kind: kind, jobID: 9, step: .max, senderRank: WireFrame.noRank, chunkOffset: 17, payload: payload)
                let bytes = frame.encoded()
                XCTAssertEqual(bytes.count, payload.count + WireFrame.overhead)
                XCTAssertEqual(try WireFrame.decode(bytes, expectedJobID: 9), frame)
            }
        }
    }

    func testHeaderIsLittleEndianAtDocumentedOffsets() {
        let bytes = sample.encoded()
        XCTAssertEqual(Array(bytes[0..<4]), [0x54, 0x53, 0x4B, 0x4C])
        XCTAssertEqual(Array(bytes[8..<16]), [0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01])
        XCTAssertEqual(bytes[16], 42)
        XCTAssertEqual(bytes[24], 3)
        XCTAssertEqual(Array(bytes[40..<48]), [0xE8, 0x03, 0, 0, 0, 0, 0, 0])
    }

    /// Rewrites a header field and re-seals the checksum, so the field's own check fires.
    func resealed(_ edit: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes = sample.encoded()
        edit(&bytes)
        let end = bytes.count - WireFrame.trailerSize
        let crc = bytes[..<end].withUnsafeBytes { CRC32C.checksum($0) }
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange(end..., with: $0) }
        return bytes
    }

    func assertRejects(_ bytes: [UInt8], expectedJobID: UInt64? = nil, _ expected: WireError,
                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try WireFrame.decode(bytes, expectedJobID: expectedJobID), file: file, line: line) { error in
            XCTAssertEqual(error as? WireError, expected, file: file, line: line)
            XCTAssertFalse("\(error)".isEmpty)
        }
    }

    func testTwoPartFrameValidatesLikeTheContiguousOne() throws {
        var envelope = [UInt8](repeating: 0, count: WireFrame.overhead)
        var payload = sample.payload
        envelope.withUnsafeMutableBytes { out in
            payload.withUnsafeBytes { WireFrame.encodeEnvelope(sample.header, payload: $0, into: out) }
        }
        // The envelope is the contiguous frame without its payload.
        let contiguous = sample.encoded()
        XCTAssertEqual(envelope, Array(contiguous[..<WireFrame.headerSize] + contiguous.suffix(WireFrame.trailerSize)))
        let header = try envelope.withUnsafeBytes { e in try payload.withUnsafeBytes { try WireFrame.validate(envelope: e, payload: $0) } }
        XCTAssertEqual(header, sample.header)
        payload[500] ^= 0x10
        XCTAssertThrowsError(try envelope.withUnsafeBytes { e in try payload.withUnsafeBytes { try WireFrame.validate(envelope: e, payload: $0) } }) {
            guard case .checksumMismatch = $0 as? WireError else { return XCTFail("got \($0)") }
        }
        payload.removeLast()
        XCTAssertThrowsError(try envelope.withUnsafeBytes { e in try payload.withUnsafeBytes { try WireFrame.validate(envelope: e, payload: $0) } }) {
            guard case .lengthMismatch = $0 as? WireError else { return XCTFail("got \($0)") }
        }
    }

    func testEveryCorruptionHasItsTypedError() {
        assertRejects([], .truncated(frameBytes: 0, minimum: 52))
        assertRejects(Array(sample.encoded().prefix(51)), .truncated(frameBytes: 51, minimum: 52))
        assertRejects(resealed { $0[0] = 0 }, .badMagic(found: 0x4C4B_5300))
        assertRejects(resealed { $0[4] = 1 }, .unsupportedVersion(found: 1, supported: 2))
        assertRejects(resealed { $0[6] = 99 }, .unknownKind(99))
        assertRejects(resealed { $0[29] = 1 }, .reservedFieldSet(0x100))
        assertRejects(resealed { $0[40] = 0xE9 }, .lengthMismatch(declaredPayload: 1001, frameBytes: 1052))
        assertRejects(resealed { $0[47] = 0x80 }, .lengthMismatch(declaredPayload: 0x8000_0000_0000_03E8, frameBytes: 1052))
        assertRejects(resealed { for i in 32..<40 { $0[i] = 0xFF } }, .offsetOverflow(offset: .max, length: 1000))
        var flipped = sample.encoded()
        flipped[500] ^= 0x10
        XCTAssertThrowsError(try WireFrame.decode(flipped)) {
            guard case .checksumMismatch = $0 as? WireError else { return XCTFail("got \($0)") }
        }
        assertRejects(sample.encoded(), expectedJobID: 1, .foreignJob(expected: 1, found: sample.header.jobID))
        // Dropping bytes from the end breaks the length check, not a trap.
        for cut in [1, 4, 5, 999] {
            XCTAssertThrowsError(try WireFrame.decode(Array(sample.encoded().dropLast(cut))))
        }
    }

    func testEverySingleBitFlipIsDetected() {
        let original = WireFrame(kind: .heartbeat, jobID: 5, step: 6, senderRank: 1, payload: [1, 2, 3, 4, 5]).encoded()
        for bit in 0..<(original.count * 8) {
            var bytes = original
            bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            XCTAssertThrowsError(try WireFrame.decode(bytes), "bit \(bit) flip accepted")
        }
    }

    func testRandomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 0..<200, using: &generator)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Half the inputs start like a real frame so the deeper checks run too.
            if count >= 8, Bool.random(using: &generator) {
                bytes.replaceSubrange(0..<8, with: [0x54, 0x53, 0x4B, 0x4C, 1, 0, 1, 0])
            }
            if (try? WireFrame.decode(bytes)) != nil { accepted += 1 }
        }
        XCTAssertEqual(accepted, 0)
    }
}

extension WireFrameTests {
    /// Prints CRC-32C throughput when LOCKSTEP_BENCH=1 (the checksum runs on both ends of every data frame).
    func testCRC32CThroughput() {
        guard ProcessInfo.processInfo.environment["LOCKSTEP_BENCH"] == "1" else { return }
        let bytes = [UInt8](repeating: 7, count: 16 << 20)
        let start = Date()
        var crc: UInt32 = 0
        for _ in 0..<5 { crc ^= bytes.withUnsafeBytes { CRC32C.checksum($0) } }
        let seconds = Date().timeIntervalSince(start) / 5
        print("CRC32C (hardware: \(CRC32C.isHardwareAccelerated)): \(String(format: "%.2f", Double(bytes.count) / seconds / 1e9)) GB/s (\(crc))")
    }
}
