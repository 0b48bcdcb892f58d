import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The safetensors checkpoint format (Hugging Face): an 8-byte little-endian
/// header length, a JSON header `{"name": {"dtype", "shape", "data_offsets"},
/// "__metadata__": {...}}` padded with spaces to a multiple of 8, then the raw
/// little-endian tensor bytes, contiguous, in header order.
public enum SafeTensors {
    /// Element types read (all converted to Float); Lockstep writes F32.
    public enum DType: String, Sendable, CaseIterable {
        case F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL
        public var size: Int {
            switch self {
            case .F64, .I64: return 8
            case .F32, .I32: return 4
            case .F16, .BF16, .I16: return 2
            case .I8, .U8, .BOOL: return 1
            }
        }
    }

    /// One tensor read from a file, converted to Float; `dtype` is its type on disk.
    public struct Tensor: Sendable, Equatable {
        public let shape: [Int]
        public let values: [Float]
        public let dtype: DType
    }

    /// Headers larger than this are refused (the reference implementation's limit).
    public static let maximumHeaderSize = 100_000_000

    /// Writes `tensors` (F32, in the given order) and `metadata` to `path` atomically:
    /// a temporary file in the same directory is written and fsynced, renamed
    /// over `path`, and the directory is fsynced. On failure `path` is untouched
    /// and the temporary file is removed.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])],
                             metadata: [String: String] = [:], to path: String) throws {
        try write(entries: tensors.map { Entry(name: $0.name, shape: $0.shape, values: $0.values) }, metadata: metadata, to: path)
    }

    /// A tensor to write: F32, or I64 for integer state such as BatchNorm's `num_batches_tracked`.
    public struct Entry: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        public var dtype: DType
        public init(name: String, shape: [Int], values: [Float], dtype: DType = .F32) {
            precondition(dtype == .F32 || dtype == .I64, "SafeTensors writes F32 and I64 only")
            self.name = name
            self.shape = shape
            self.values = values
            self.dtype = dtype
        }
    }

    public static func write(entries tensors: [Entry], metadata: [String: String] = [:], to path: String) throws {
        var seen = Set<String>()
        var entries: [String] = []
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, t.name != "__metadata__", seen.insert(t.name).inserted else {
                throw DataError.invalidArgument(path: path, reason: "tensor name '\(t.name)' is empty, reserved or repeated; rename it")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.values.count else {
                throw DataError.invalidArgument(path: path, reason: "tensor '\(t.name)' has shape \(t.shape) but \(t.values.count) values")
            }
            let end = offset + t.dtype.size * t.values.count
            entries.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
                           + "\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        if !metadata.isEmpty {
            let items = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            entries.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var prefix = [UInt8](repeating: 0, count: 8)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { for i in 0..<8 { prefix[i] = $0[i] } }

        try AtomicFile.write(to: path) { sink in
            try sink.write(prefix)
            try sink.write(header)
            for t in tensors {
                if t.dtype == .I64 {
                    try t.values.map { Int64($0).littleEndian }.withUnsafeBytes { try sink.write($0) }
                    continue
                }
                #if _endian(little)
                try t.values.withUnsafeBytes { try sink.write($0) }
                #else
                try t.values.map { $0.bitPattern.littleEndian }.withUnsafeBytes { try sink.write($0) }
                #endif
            }
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// The contents of a safetensors file.
public struct SafeTensorsFile: Sendable {
    /// Tensor names in file order (by data offset).
    public let names: [String]
    public let tensors: [String: SafeTensors.Tensor]
    public let metadata: [String: String]

    /// Tensors as `(name, tensor)` pairs in file order.
    public var ordered: [(name: String, tensor: SafeTensors.Tensor)] { names.map { ($0, tensors[$0]!) } }
}
