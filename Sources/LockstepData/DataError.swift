/// Why a dataset or checkpoint file could not be used.
///
/// `description` is one line: the file, what is wrong with it, and what to do.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
    case missingFile(path: String)
    case unreadable(path: String, reason: String)
    case truncated(path: String, expected: Int, got: Int)
    case trailingBytes(path: String, expected: Int)
    case badMagic(path: String, found: UInt32, expected: UInt32)
    case badHeader(path: String, reason: String)
    case corruptGzip(path: String, reason: String)
    case countMismatch(images: String, imageCount: Int, labels: String, labelCount: Int)
    case shapeMismatch(path: String, reason: String)
    case labelOutOfRange(path: String, index: Int, value: Int, classes: Int)
    case invalidSafeTensors(path: String, reason: String)
    case invalidArgument(path: String, reason: String)
    case io(path: String, operation: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path):
            return "\(path): no such file; install Debian's dataset-fashion-mnist or pass --data-dir"
        case .unreadable(let path, let reason):
            return "\(path): cannot read (\(reason)); check the path and its permissions"
        case .truncated(let path, let expected, let got):
            return "\(path): truncated, expected \(expected) bytes, got \(got); re-download or reinstall the file"
        case .trailingBytes(let path, let expected):
            return "\(path): longer than the \(expected) bytes its header declares; the file is damaged or not IDX, replace it"
        case .badMagic(let path, let found, let expected):
            return "\(path): not an IDX file of the expected kind (magic 0x\(hex(found)), expected 0x\(hex(expected))); "
                + "check that images and labels files are not swapped"
        case .badHeader(let path, let reason):
            return "\(path): bad IDX header (\(reason)); replace the file"
        case .corruptGzip(let path, let reason):
            return "\(path): gzip data is corrupt (\(reason)); re-download or reinstall the file"
        case .countMismatch(let images, let imageCount, let labels, let labelCount):
            return "\(images) holds \(imageCount) images but \(labels) holds \(labelCount) labels; "
                + "use matching files from the same dataset release"
        case .shapeMismatch(let path, let reason):
            return "\(path): \(reason); use files from the same dataset release"
        case .labelOutOfRange(let path, let index, let value, let classes):
            return "\(path): label \(value) at index \(index) is outside 0...\(classes - 1); the file is damaged, replace it"
        case .invalidSafeTensors(let path, let reason):
            return "\(path): not a valid safetensors file (\(reason)); use another checkpoint or re-export it"
        case .invalidArgument(let path, let reason):
            return "\(path): \(reason)"
        case .io(let path, let operation, let reason):
            return "\(path): \(operation) failed (\(reason)); check free space, the directory and its permissions"
        }
    }
}

private func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 8 - s.count)) + s
}
