import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An unsigned-byte IDX array (Yann LeCun's MNIST format): dimensions and row-major bytes.
public struct IDXArray: Sendable, Equatable {
    public let dimensions: [Int]
    public let bytes: [UInt8]

    public init(dimensions: [Int], bytes: [UInt8]) {
        self.dimensions = dimensions
        self.bytes = bytes
    }
}

/// Reader and writer for IDX files, gzip-compressed or not (zlib reads both).
///
/// Layout: magic `0x000008nn` (`08` = unsigned byte, `nn` = number of
/// dimensions), `nn` big-endian UInt32 dimensions, then exactly the product of
/// the dimensions in bytes. Any deviation is a `DataError`, never a crash.
public enum IDX {
    /// Magic of a 3-dimensional u8 array (images: count × rows × columns).
    public static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic of a 1-dimensional u8 array (labels).
    public static let labelsMagic: UInt32 = 0x0000_0801
    /// Refuse arrays larger than this many bytes (a damaged header must not allocate terabytes).
    public static let maximumBytes = 1 << 34

    /// Reads an IDX file whose magic must be `expectedMagic`.
    public static func read(path: String, expectedMagic: UInt32) throws -> IDXArray {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT { throw DataError.missingFile(path: path) }
            throw DataError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw DataError.unreadable(path: path, reason: "not a regular file") }
        guard let file = gzopen(path, "rb") else {
            throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        defer { gzclose(file) }
        let reader = GzipReader(file: file, path: path)

        var head = [UInt8](repeating: 0, count: 4)
        let headRead = try reader.read(into: &head, offset: 0, count: 4)
        guard headRead == 4 else { throw DataError.truncated(path: path, expected: 4, got: headRead) }
        let magic = bigEndian(head, 0)
        guard magic == expectedMagic else { throw DataError.badMagic(path: path, found: magic, expected: expectedMagic) }
        let rank = Int(head[3])

        var dimBytes = [UInt8](repeating: 0, count: 4 * rank)
        let dimRead = try reader.read(into: &dimBytes, offset: 0, count: dimBytes.count)
        guard dimRead == dimBytes.count else { throw DataError.truncated(path: path, expected: 4 + 4 * rank, got: 4 + dimRead) }
        var dimensions: [Int] = []
        var total = 1
        for d in 0..<rank {
            let value = Int(bigEndian(dimBytes, 4 * d))
            dimensions.append(value)
            let (product, overflow) = total.multipliedReportingOverflow(by: value)
            guard !overflow, product <= maximumBytes else {
                throw DataError.badHeader(path: path, reason: "dimensions \(dimensions) exceed \(maximumBytes) bytes")
            }
            total = product
        }
        let headerSize = 4 + 4 * rank
        // Read in pieces: a header that claims more than the file holds must not size the buffer.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(total, 1 << 26))
        var piece = [UInt8](repeating: 0, count: min(total, 1 << 26))
        var got = 0
        while got < total {
            let want = min(piece.count, total - got)
            let n = try reader.read(into: &piece, offset: 0, count: want)
            bytes.append(contentsOf: piece[0..<n])
            got += n
            if n < want { break }
        }
        guard got == total else { throw DataError.truncated(path: path, expected: headerSize + total, got: headerSize + got) }
        var extra = [UInt8](repeating: 0, count: 1)
        if try reader.read(into: &extra, offset: 0, count: 1) != 0 {
            throw DataError.trailingBytes(path: path, expected: headerSize + total)
        }
        return IDXArray(dimensions: dimensions, bytes: bytes)
    }

    /// Writes `array` as IDX with the u8 magic for its rank, gzip-compressed when `compressed`.
    /// Not atomic; for test data and exports.
    public static func write(_ array: IDXArray, to path: String, compressed: Bool) throws {
        precondition(array.dimensions.reduce(1, *) == array.bytes.count, "IDX.write: dimensions do not match the byte count")
        var out: [UInt8] = [0, 0, 8, UInt8(array.dimensions.count)]
        for d in array.dimensions {
            let v = UInt32(d)
            out += [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)]
        }
        out += array.bytes
        guard let file = gzopen(path, compressed ? "wb6" : "wbT") else {
            throw DataError.io(path: path, operation: "gzopen", reason: String(cString: strerror(errno)))
        }
        var offset = 0
        while offset < out.count {
            let chunk = min(out.count - offset, 1 << 30)
            let written = out.withUnsafeBytes { gzwrite(file, $0.baseAddress! + offset, UInt32(chunk)) }
            guard written > 0 else {
                gzclose(file)
                throw DataError.io(path: path, operation: "gzwrite", reason: "zlib error")
            }
            offset += Int(written)
        }
        guard gzclose(file) == Z_OK else { throw DataError.io(path: path, operation: "gzclose", reason: "zlib error") }
    }

    private static func bigEndian(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}

/// `gzread` in chunks, with zlib's errors turned into `DataError`.
private struct GzipReader {
    let file: gzFile
    let path: String

    /// Reads up to `count` bytes; fewer only at the end of the data.
    func read(into buffer: inout [UInt8], offset: Int, count: Int) throws -> Int {
        var done = 0
        while done < count {
            let chunk = min(count - done, 1 << 30)
            let n = buffer.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + offset + done, UInt32(chunk)) }
            if n <= 0 {
                // A gzip stream that stops early reports Z_BUF_ERROR: that is truncation, not corruption.
                var code: Int32 = 0
                _ = gzerror(file, &code)
                if code != Z_OK && code != Z_BUF_ERROR { throw error() }
                if n < 0 && code == Z_OK { throw error() }
                break
            }
            done += Int(n)
        }
        return done
    }

    private func error() -> DataError {
        var code: Int32 = 0
        let message = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
        if code == Z_ERRNO { return .unreadable(path: path, reason: String(cString: strerror(errno))) }
        return .corruptGzip(path: path, reason: message)
    }
}
