/// A NumPy `.npy` array (format versions 1–3), C order, read through a mapped file.
///
/// Features may be float32, float64 or uint8; labels any integer type. Other dtypes,
/// big-endian data and Fortran order are refused with a line that names the file and
/// what to save instead.
public struct NPYArray {
    public enum Kind: Sendable, Equatable {
        case float32, float64, uint8
        case integer(bytes: Int, signed: Bool)
    }

    public let path: String
    public let shape: [Int]
    public let kind: Kind
    public let dtype: String
    private let file: MappedFile
    private let offset: Int

    public var count: Int { shape.first ?? 1 }
    /// Values per leading index (the product of the other dimensions).
    public var rowSize: Int { shape.dropFirst().reduce(1, *) }

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.path = path
        self.file = file
        let b = file.bytes
        func fail(_ reason: String) -> DataError { .invalidArgument(path: path, reason: reason) }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
        guard file.count >= 10, (0..<6).allSatisfy({ b[$0] == magic[$0] }) else {
            throw fail("not a NumPy .npy file (no \\x93NUMPY magic); save the array with numpy.save")
        }
        let major = b[6]
        let headerLength: Int, start: Int
        switch major {
        case 1: headerLength = Int(b[8]) | Int(b[9]) << 8; start = 10
        case 2, 3:
            guard file.count >= 12 else { throw fail("truncated header") }
            headerLength = Int(b[8]) | Int(b[9]) << 8 | Int(b[10]) << 16 | Int(b[11]) << 24; start = 12
        default: throw fail("unsupported .npy format version \(major); save with numpy.save")
        }
        guard start + headerLength <= file.count else { throw fail("truncated header") }
        let header = String(decoding: UnsafeBufferPointer(start: b + start, count: headerLength), as: UTF8.self)
        func value(_ key: String) -> Substring? {
            guard let k = header.range(of: "'\(key)'") else { return nil }
            var rest = header[k.upperBound...].drop { $0 == " " || $0 == ":" }
            if rest.first == "(" {
                guard let close = rest.firstIndex(of: ")") else { return nil }
                return rest[rest.index(after: rest.startIndex)..<close]
            }
            if rest.first == "'" {
                rest = rest.dropFirst()
                guard let close = rest.firstIndex(of: "'") else { return nil }
                return rest[..<close]
            }
            return rest.prefix { $0 != "," && $0 != "}" }
        }
        guard let descr = value("descr"), let shapeText = value("shape") else { throw fail("header without descr or shape: \(header.prefix(80))") }
        dtype = String(descr)
        if value("fortran_order").map({ $0.trimmingSpaces == "True" }) ?? false {
            throw fail("Fortran-ordered array; save numpy.ascontiguousarray(x) instead")
        }
        var dims: [Int] = []
        for part in shapeText.split(separator: ",") where !part.trimmingSpaces.isEmpty {
            guard let d = Int(part.trimmingSpaces), d >= 0 else { throw fail("bad shape (\(shapeText))") }
            dims.append(d)
        }
        shape = dims
        switch dtype {
        case "<f4": kind = .float32
        case "<f8": kind = .float64
        case "|u1", "<u1": kind = .uint8
        case "|i1", "<i1": kind = .integer(bytes: 1, signed: true)
        case "<i2", "<u2", "<i4", "<u4", "<i8", "<u8":
            kind = .integer(bytes: Int(String(dtype.last!))!, signed: dtype.dropFirst().first == "i")
        default:
            throw fail("unsupported dtype '\(dtype)'; save features as float32, float64 or uint8 and labels as integers (little-endian)")
        }
        offset = start + headerLength
        var total = 1
        for d in dims {
            let (p, o) = total.multipliedReportingOverflow(by: d)
            guard !o, p <= 1 << 34 else { throw fail("shape \(dims) is too large") }
            total = p
        }
        let expected = offset + total * elementSize
        guard file.count >= expected else {
            throw fail("truncated: shape \(dims) of \(dtype) needs \(expected) bytes, the file has \(file.count)")
        }
        guard file.count == expected else { throw fail("\(file.count - expected) bytes after the array's data; the file is damaged") }
    }

    var elementSize: Int {
        switch kind {
        case .float32: return 4
        case .float64: return 8
        case .uint8: return 1
        case .integer(let bytes, _): return bytes
        }
    }

    public var isFloatingOrByte: Bool { if case .integer = kind { return false } else { return true } }

    /// Rows `rows` of the array as floats, row after row.
    public func floats(rows: Range<Int>) -> [Float] {
        let n = rows.count * rowSize, first = rows.lowerBound * rowSize
        let raw = UnsafeRawPointer(file.bytes + offset)
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            switch kind {
            case .float32: for i in 0..<n { out[i] = raw.loadUnaligned(fromByteOffset: 4 * (first + i), as: Float.self) }
            case .float64: for i in 0..<n { out[i] = Float(raw.loadUnaligned(fromByteOffset: 8 * (first + i), as: Double.self)) }
            case .uint8: for i in 0..<n { out[i] = Float(raw.load(fromByteOffset: first + i, as: UInt8.self)) }
            case .integer: for i in 0..<n { out[i] = Float(integer(first + i)) }
            }
            initialized = n
        }
    }

    /// Element `i` of an integer array (any width, signed or not).
    public func integer(_ i: Int) -> Int64 {
        let raw = UnsafeRawPointer(file.bytes + offset)
        switch kind {
        case .integer(let bytes, let signed):
            switch (bytes, signed) {
            case (1, true): return Int64(raw.load(fromByteOffset: i, as: Int8.self))
            case (1, false): return Int64(raw.load(fromByteOffset: i, as: UInt8.self))
            case (2, true): return Int64(raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))
            case (2, false): return Int64(raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            case (4, true): return Int64(raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
            case (4, false): return Int64(raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            case (8, true): return raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)
            default: return Int64(truncatingIfNeeded: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
            }
        case .uint8: return Int64(raw.load(fromByteOffset: i, as: UInt8.self))
        case .float32, .float64: return -1
        }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
