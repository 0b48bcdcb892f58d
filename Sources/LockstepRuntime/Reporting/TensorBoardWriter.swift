import Foundation
import LockstepTransport

/// TensorBoard's event file, written natively (no TensorFlow): a file
/// `events.out.tfevents.<seconds>.<host>` of records, each a little-endian u64
/// length, the masked CRC-32C of those 8 bytes, an `Event` protocol buffer, and
/// its masked CRC-32C. The first event names the file version; every other one
/// holds one scalar (`Summary.Value.simple_value`) under a tag, at a step.
public final class TensorBoardWriter {
    public let path: String
    private let handle: FileHandle

    /// Creates `directory` if needed and a new event file in it.
    public init(directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw LockstepError("--tensorboard \(directory): cannot create the directory (\(error.localizedDescription))")
        }
        path = "\(directory)/events.out.tfevents.\(Int(Date().timeIntervalSince1970)).\(localHostName())"
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw LockstepError("--tensorboard \(directory): cannot write \(path); choose a writable directory")
        }
        self.handle = handle
        write(Self.event(wallTime: Date().timeIntervalSince1970, step: 0, fileVersion: "brain.Event:2"))
    }

    deinit { try? handle.close() }

    /// One scalar at `step`.
    public func scalar(_ tag: String, _ value: Double, step: Int) {
        write(Self.event(wallTime: Date().timeIntervalSince1970, step: step, scalar: (tag, Float(value))))
    }

    /// The figures of a step report (loss, learning rate).
    public func step(_ r: StepReport) {
        scalar("train/loss", r.loss, step: r.globalStep)
        scalar("train/learning_rate", Double(r.learningRate), step: r.globalStep)
    }

    /// The figures of an epoch report, at the run's global step.
    public func epoch(_ r: EpochReport, step: Int) {
        scalar("epoch/loss", r.loss, step: step)
        scalar("epoch/train_accuracy", r.trainAccuracy, step: step)
        scalar("epoch/test_accuracy", r.testAccuracy, step: step)
        scalar("epoch/samples_per_second", r.samplesPerSecond, step: step)
    }

    private func write(_ event: [UInt8]) {
        var record = [UInt8]()
        let length = withUnsafeBytes(of: UInt64(event.count).littleEndian) { Array($0) }
        record += length
        record += Self.le32(Self.masked(length))
        record += event
        record += Self.le32(Self.masked(event))
        try? handle.write(contentsOf: record)
    }

    // MARK: Encoding

    /// TensorFlow's masked CRC-32C of a record part.
    static func masked(_ bytes: [UInt8]) -> UInt32 {
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        return ((crc >> 15) | (crc << 17)) &+ 0xa282_ead8
    }

    static func event(wallTime: Double, step: Int, fileVersion: String? = nil, scalar: (String, Float)? = nil) -> [UInt8] {
        var e: [UInt8] = [0x09] + withUnsafeBytes(of: wallTime.bitPattern.littleEndian) { Array($0) }  // 1: wall_time, fixed64
        e += [0x10] + varint(UInt64(max(step, 0)))                                                   // 2: step, varint
        if let fileVersion { e += [0x1a] + bytes(Array(fileVersion.utf8)) }                          // 3: file_version
        if let (tag, value) = scalar {
            let v: [UInt8] = [0x0a] + bytes(Array(tag.utf8)) + [0x15] + le32(value.bitPattern)        // Value: 1 tag, 2 simple_value
            e += [0x2a] + bytes([0x0a] + bytes(v))                                                    // 5: summary { 1: value }
        }
        return e
    }

    private static func bytes(_ b: [UInt8]) -> [UInt8] { varint(UInt64(b.count)) + b }

    private static func varint(_ value: UInt64) -> [UInt8] {
        var v = value, out: [UInt8] = []
        repeat {
            out.append(UInt8(v & 0x7f) | (v >= 0x80 ? 0x80 : 0))
            v >>= 7
        } while v > 0
        return out
    }

    private static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
}
