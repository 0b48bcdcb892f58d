import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SafeTensors {
    /// Reads and validates a safetensors file; every tensor is converted to Float.
    ///
    /// Checked: header length within the file and `maximumHeaderSize`, JSON
    /// object, known dtypes, non-negative shapes, `shape × dtype size ==` the
    /// byte span, spans in bounds, contiguous and covering the data exactly.
    /// `maximumBytes`: larger files are refused before they are read.
    public static func read(path: String, maximumBytes: Int = 1 << 33) throws -> SafeTensorsFile {
        let bytes = try AtomicFile.readAll(path: path, maximumBytes: maximumBytes)
        func bad(_ reason: String) -> DataError { .invalidSafeTensors(path: path, reason: reason) }
        guard bytes.count >= 8 else { throw bad("\(bytes.count) bytes, too short for the 8-byte header length") }
        let headerLength = bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(maximumHeaderSize), Int(headerLength) <= bytes.count - 8 else {
            throw bad("header length \(headerLength) exceeds the file size \(bytes.count)")
        }
        let dataStart = 8 + Int(headerLength)
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]), options: [])
        } catch {
            throw bad("header is not JSON")
        }
        guard let header = json as? [String: Any] else { throw bad("header is not a JSON object") }

        var metadata: [String: String] = [:]
        struct Entry { var name: String; var dtype: DType; var shape: [Int]; var begin: Int; var end: Int }
        var entries: [Entry] = []
        let dataSize = bytes.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw bad("metadata value for '\(k)' is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any],
                  let dtypeName = info["dtype"] as? String,
                  let shapeAny = info["shape"] as? [Any],
                  let offsetsAny = info["data_offsets"] as? [Any], offsetsAny.count == 2
            else { throw bad("entry '\(name)' lacks dtype, shape or data_offsets") }
            guard let dtype = DType(rawValue: dtypeName) else { throw bad("tensor '\(name)' has unsupported dtype \(dtypeName)") }
            let shape = try shapeAny.map { v -> Int in
                guard let n = integer(v), n >= 0 else { throw bad("tensor '\(name)' has an invalid shape") }
                return n
            }
            guard let begin = integer(offsetsAny[0]), let end = integer(offsetsAny[1]),
                  begin >= 0, begin <= end, end <= dataSize
            else { throw bad("tensor '\(name)' has data_offsets outside the \(dataSize) data bytes") }
            var elements = 1
            for d in shape {
                let (p, o) = elements.multipliedReportingOverflow(by: d)
                guard !o, p <= dataSize else { throw bad("tensor '\(name)' shape \(shape) is larger than the file") }
                elements = p
            }
            guard elements * dtype.size == end - begin else {
                throw bad("tensor '\(name)' shape \(shape) of \(dtype.rawValue) needs \(elements * dtype.size) bytes, span is \(end - begin)")
            }
            entries.append(Entry(name: name, dtype: dtype, shape: shape, begin: begin, end: end))
        }
        entries.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var position = 0
        for e in entries {
            guard e.begin == position else { throw bad("tensor '\(e.name)' data does not follow the previous tensor's (overlap or gap)") }
            position = e.end
        }
        guard position == dataSize else { throw bad("\(dataSize - position) bytes after the last tensor") }

        var tensors: [String: Tensor] = [:]
        bytes.withUnsafeBytes { raw in
            for e in entries {
                let base = raw.baseAddress! + dataStart + e.begin
                let n = (e.end - e.begin) / e.dtype.size
                let values = [Float](unsafeUninitializedCapacity: n) { out, initialized in
                    convert(base, e.dtype, n, out.baseAddress!)
                    initialized = n
                }
                tensors[e.name] = Tensor(shape: e.shape, values: values, dtype: e.dtype)
            }
        }
        return SafeTensorsFile(names: entries.map(\.name), tensors: tensors, metadata: metadata)
    }

    private static func integer(_ v: Any) -> Int? {
        guard let n = v as? NSNumber else { return nil }
        let d = n.doubleValue
        guard d == d.rounded(), d >= -9.0e15, d <= 9.0e15 else { return nil }
        return n.intValue
    }

    private static func convert(_ src: UnsafeRawPointer, _ dtype: DType, _ n: Int, _ out: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .F32: for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        case .F64: for i in 0..<n { out[i] = Float(Double(bitPattern: UInt64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
        case .F16: for i in 0..<n { out[i] = halfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .BF16: for i in 0..<n { out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16) }
        case .I64: for i in 0..<n { out[i] = Float(Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) }
        case .I32: for i in 0..<n { out[i] = Float(Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) }
        case .I16: for i in 0..<n { out[i] = Float(Int16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) }
        case .I8: for i in 0..<n { out[i] = Float(src.load(fromByteOffset: i, as: Int8.self)) }
        case .U8: for i in 0..<n { out[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .BOOL: for i in 0..<n { out[i] = src.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        }
    }

    /// IEEE binary16 → binary32, exact (subnormals, infinities and NaN included).
    static func halfToFloat(_ h: UInt16) -> Float {
        let sign = UInt32(h >> 15) << 31
        let exponent = Int((h >> 10) & 0x1f)
        let mantissa = UInt32(h & 0x3ff)
        if exponent == 0x1f { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24
            return sign != 0 ? -magnitude : magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}
