/// Every message Lockstep puts on a socket, control plane and data plane.
///
/// Layout (little-endian, 48-byte header, payload, 4-byte trailer):
/// ```
///  0 magic        u32  "LKST" (0x4C4B5354)
///  4 version      u16  WireFrame.protocolVersion
///  6 kind         u16  MessageKind
///  8 job id       u64  random per job; frames of other jobs are rejected
/// 16 step        u64  training step, or the collective's tag on data frames
/// 24 sender rank  u32  0xFFFF_FFFF for the coordinator / unassigned
/// 28 reserved     u32  must be 0
/// 32 chunk offset u64  byte offset of the payload within its logical buffer
/// 40 chunk length u64  payload bytes
/// 48 payload
///  . crc32c       u32  CRC-32C (Castagnoli, see `CRC32C`) of header and payload
/// ```
/// Large data payloads may instead travel as a two-part ZeroMQ message, so
/// that the payload is sent straight from the caller's buffer: part 1 is the
/// 52-byte *envelope* (the 48-byte header, then the same CRC-32C of header and
/// payload), part 2 the payload. Fields and checks are identical.
///
/// `decode`/`validate` check every field and never trap on any input.
public struct WireFrame: Equatable, Sendable {
    public static let magic: UInt32 = 0x4C4B_5354
    /// 2: the trailer became CRC-32C (version 1 used IEEE CRC-32).
    public static let protocolVersion: UInt16 = 2
    public static let headerSize = 48
    public static let trailerSize = 4
    public static let overhead = headerSize + trailerSize
    /// Sender rank of frames from the coordinator or a worker without a rank yet.
    public static let noRank: UInt32 = .max

    public enum MessageKind: UInt16, CaseIterable, Sendable {
        /// Gradient / parameter bytes between workers.
        case data = 1
        // Control plane (worker ⇄ coordinator).
        case hello = 16, welcome, reject, peerTable, barrier, heartbeat, metrics, shutdown, error
    }

    public struct Header: Equatable, Sendable {
        public var kind: MessageKind
        public var jobID: UInt64
        public var step: UInt64
        public var senderRank: UInt32
        public var chunkOffset: UInt64
        public var chunkLength: UInt64

        public init(kind: MessageKind, jobID: UInt64, step: UInt64 = 0, senderRank: UInt32,
                    chunkOffset: UInt64 = 0, chunkLength: UInt64 = 0) {
            self.kind = kind; self.jobID = jobID; self.step = step; self.senderRank = senderRank
            self.chunkOffset = chunkOffset; self.chunkLength = chunkLength
        }
    }

    public var header: Header
    public var payload: [UInt8]

    public init(kind: MessageKind, jobID: UInt64, step: UInt64 = 0, senderRank: UInt32,
                chunkOffset: UInt64 = 0, payload: [UInt8] = []) {
        header = Header(kind: kind, jobID: jobID, step: step, senderRank: senderRank,
                        chunkOffset: chunkOffset, chunkLength: UInt64(payload.count))
        self.payload = payload
    }

    // MARK: Encoding

    /// Frame size for a payload of `payloadCount` bytes.
    public static func frameSize(payloadCount: Int) -> Int { overhead + payloadCount }

    /// Writes a complete frame into `frame` (exactly `frameSize(payloadCount: payload.count)`
    /// bytes, e.g. a libzmq message buffer): one copy of the payload, no allocation.
    /// `header.chunkLength` is taken from `payload.count`.
    public static func encode(_ header: Header, payload: UnsafeRawBufferPointer, into frame: UnsafeMutableRawBufferPointer) {
        precondition(frame.count == frameSize(payloadCount: payload.count), "frame buffer has the wrong size")
        let base = frame.baseAddress!
        writeHeader(header, payloadCount: payload.count, to: base)
        // The payload is checksummed while it is copied: one pass over it.
        let headerCRC = CRC32C.checksum(UnsafeRawBufferPointer(start: base, count: headerSize))
        let crc = CRC32C.copyAndChecksum(payload, to: base + headerSize, continuing: headerCRC)
        base.storeBytes(of: crc.littleEndian, toByteOffset: headerSize + payload.count, as: UInt32.self)
    }

    /// Writes the envelope of a two-part frame (see the type's doc) into
    /// `envelope` (exactly `overhead` bytes); the payload is only read.
    public static func encodeEnvelope(_ header: Header, payload: UnsafeRawBufferPointer, into envelope: UnsafeMutableRawBufferPointer) {
        precondition(envelope.count == overhead, "envelope buffer has the wrong size")
        let base = envelope.baseAddress!
        writeHeader(header, payloadCount: payload.count, to: base)
        let headerCRC = CRC32C.checksum(UnsafeRawBufferPointer(start: base, count: headerSize))
        let crc = CRC32C.checksum(payload, continuing: headerCRC)
        base.storeBytes(of: crc.littleEndian, toByteOffset: headerSize, as: UInt32.self)
    }

    private static func writeHeader(_ header: Header, payloadCount: Int, to base: UnsafeMutableRawPointer) {
        base.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: protocolVersion.littleEndian, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: header.kind.rawValue.littleEndian, toByteOffset: 6, as: UInt16.self)
        base.storeBytes(of: header.jobID.littleEndian, toByteOffset: 8, as: UInt64.self)
        base.storeBytes(of: header.step.littleEndian, toByteOffset: 16, as: UInt64.self)
        base.storeBytes(of: header.senderRank.littleEndian, toByteOffset: 24, as: UInt32.self)
        base.storeBytes(of: UInt32(0), toByteOffset: 28, as: UInt32.self)
        base.storeBytes(of: header.chunkOffset.littleEndian, toByteOffset: 32, as: UInt64.self)
        base.storeBytes(of: UInt64(payloadCount).littleEndian, toByteOffset: 40, as: UInt64.self)
    }

    public func encoded() -> [UInt8] {
        var frame = [UInt8](repeating: 0, count: Self.frameSize(payloadCount: payload.count))
        frame.withUnsafeMutableBytes { out in
            payload.withUnsafeBytes { Self.encode(header, payload: $0, into: out) }
        }
        return frame
    }

    // MARK: Decoding

    /// Validates every field of `frame` and returns its header; the payload is
    /// `frame[headerSize ..< headerSize + chunkLength]` (read it in place).
    /// - Parameter expectedJobID: when given, frames of other jobs are rejected.
    public static func validate(_ frame: UnsafeRawBufferPointer, expectedJobID: UInt64? = nil) throws(WireError) -> Header {
        guard frame.count >= overhead, let base = frame.baseAddress else {
            throw .truncated(frameBytes: frame.count, minimum: overhead)
        }
        let payloadCount = frame.count - overhead
        return try validate(header: base, payload: UnsafeRawBufferPointer(rebasing: frame[headerSize..<(headerSize + payloadCount)]),
                            trailer: base + headerSize + payloadCount, expectedJobID: expectedJobID)
    }

    /// Validates a two-part frame: `envelope` (header and CRC) and `payload`.
    public static func validate(envelope: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                                expectedJobID: UInt64? = nil) throws(WireError) -> Header {
        guard envelope.count == overhead, let base = envelope.baseAddress else {
            throw .truncated(frameBytes: envelope.count, minimum: overhead)
        }
        return try validate(header: base, payload: payload, trailer: base + headerSize, expectedJobID: expectedJobID)
    }

    /// The checks shared by both layouts: `header` points at the 48 header
    /// bytes, `trailer` at the stored CRC.
    private static func validate(header base: UnsafeRawPointer, payload: UnsafeRawBufferPointer, trailer: UnsafeRawPointer,
                                 expectedJobID: UInt64?) throws(WireError) -> Header {
        func load<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
        }
        let foundMagic = load(0, UInt32.self)
        guard foundMagic == magic else { throw .badMagic(found: foundMagic) }
        let version = load(4, UInt16.self)
        guard version == protocolVersion else { throw .unsupportedVersion(found: version, supported: protocolVersion) }
        let rawKind = load(6, UInt16.self)
        guard let kind = MessageKind(rawValue: rawKind) else { throw .unknownKind(rawKind) }
        let reserved = load(28, UInt32.self)
        guard reserved == 0 else { throw .reservedFieldSet(reserved) }
        let length = load(40, UInt64.self)
        guard length == UInt64(payload.count) else {
            throw .lengthMismatch(declaredPayload: length, frameBytes: payload.count + overhead)
        }
        let offset = load(32, UInt64.self)
        guard offset <= UInt64.max - length else { throw .offsetOverflow(offset: offset, length: length) }
        let stored = UInt32(littleEndian: trailer.loadUnaligned(as: UInt32.self))
        let computed = CRC32C.checksum(payload, continuing: CRC32C.checksum(UnsafeRawBufferPointer(start: base, count: headerSize)))
        guard stored == computed else { throw .checksumMismatch(stored: stored, computed: computed) }
        // Job id last: a corrupted frame should report corruption, not a foreign job.
        let jobID = load(8, UInt64.self)
        if let expectedJobID, jobID != expectedJobID { throw .foreignJob(expected: expectedJobID, found: jobID) }
        return Header(kind: kind, jobID: jobID, step: load(16, UInt64.self), senderRank: load(24, UInt32.self),
                      chunkOffset: offset, chunkLength: length)
    }

    /// `validate`, then copies the payload out.
    public static func decode(_ frame: UnsafeRawBufferPointer, expectedJobID: UInt64? = nil) throws(WireError) -> WireFrame {
        let header = try validate(frame, expectedJobID: expectedJobID)
        let payload = [UInt8](UnsafeRawBufferPointer(rebasing: frame[headerSize..<(headerSize + Int(header.chunkLength))]))
        var result = WireFrame(kind: header.kind, jobID: header.jobID, step: header.step,
                               senderRank: header.senderRank, chunkOffset: header.chunkOffset, payload: payload)
        result.header = header
        return result
    }

    public static func decode(_ frame: [UInt8], expectedJobID: UInt64? = nil) throws(WireError) -> WireFrame {
        do {
            return try frame.withUnsafeBytes { try decode($0, expectedJobID: expectedJobID) }
        } catch let error as WireError {
            throw error
        } catch {
            fatalError("unreachable: decode throws only WireError")
        }
    }
}

/// Why a frame was rejected.
public enum WireError: Error, Equatable, CustomStringConvertible {
    case truncated(frameBytes: Int, minimum: Int)
    case badMagic(found: UInt32)
    case unsupportedVersion(found: UInt16, supported: UInt16)
    case unknownKind(UInt16)
    case reservedFieldSet(UInt32)
    case lengthMismatch(declaredPayload: UInt64, frameBytes: Int)
    case offsetOverflow(offset: UInt64, length: UInt64)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case foreignJob(expected: UInt64, found: UInt64)

    public var description: String {
        func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case let .truncated(bytes, minimum):
            return "frame of \(bytes) bytes is shorter than the \(minimum)-byte header and trailer"
        case let .badMagic(found):
            return "bad magic \(hex(found)) (expected \(hex(WireFrame.magic))): not a Lockstep frame"
        case let .unsupportedVersion(found, supported):
            return "protocol version \(found) not supported (this build speaks \(supported)): run the same Lockstep build everywhere"
        case let .unknownKind(kind):
            return "unknown message kind \(kind)"
        case let .reservedFieldSet(value):
            return "reserved header field is \(hex(value)), must be 0"
        case let .lengthMismatch(declared, bytes):
            return "header declares a \(declared)-byte payload but the frame has \(bytes) bytes (\(WireFrame.overhead) of overhead)"
        case let .offsetOverflow(offset, length):
            return "chunk offset \(offset) + length \(length) overflows"
        case let .checksumMismatch(stored, computed):
            return "checksum mismatch: frame says \(hex(stored)), contents give \(hex(computed)): corrupted in transit"
        case let .foreignJob(expected, found):
            return "frame belongs to job \(hex(found)), this is job \(hex(expected)): a stale or foreign process is sending here"
        }
    }
}
