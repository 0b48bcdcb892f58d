#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A CSV file with a header row: one label column, every other column a float feature.
///
/// The file is mapped, its lines counted, and the features parsed straight into one
/// array of `rows × features` floats: the text and that array are all it holds.
/// Labels are read as class names; `LabelTable` turns them into indices. Errors
/// name the file, the line (1-based, the header is line 1), the row and the column.
public struct CSVTable {
    public let path: String
    public let header: [String]
    /// The label column's index; nil for a table of features only.
    public let labelColumn: Int?
    public let rows: Int
    /// `rows × (header.count - 1)`, row-major, in column order without the label.
    public var features: [Float]
    /// Each row's label as written.
    public let labels: [String]

    public var featureCount: Int { header.count - (labelColumn == nil ? 0 : 1) }

    /// `requireLabel: false` reads a table without the label column as features only (new data to predict).
    public init(path: String, label: String, requireLabel: Bool = true) throws {
        self.path = path
        let file = try MappedFile(path: path)
        let bytes = file.bytes, end = file.count
        // Header.
        var lineEnd = 0
        while lineEnd < end && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
        let header = CSVTable.fields(bytes, 0, lineEnd).map { CSVTable.text(bytes, $0) }
        let labelColumn = header.firstIndex(of: label)
        guard header.count >= (requireLabel ? 2 : 1) else {
            throw DataError.invalidArgument(path: path, reason: "line 1: the header has \(header.count) column; a CSV needs a header row naming a label column and at least one feature column")
        }
        if requireLabel, labelColumn == nil {
            throw DataError.invalidArgument(path: path, reason: "line 1: no column \"\(label)\" in the header (\(header.prefix(8).joined(separator: ", "))\(header.count > 8 ? ", …" : "")); set [data] label to the label column's name")
        }
        self.header = header
        self.labelColumn = labelColumn
        // Rows: every non-empty line after the header.
        var lines = 0
        var i = lineEnd + 1
        while i < end {
            var j = i
            while j < end && bytes[j] != UInt8(ascii: "\n") { j += 1 }
            if !CSVTable.blank(bytes, i, j) { lines += 1 }
            i = j + 1
            file.release(upTo: i)
        }
        file.rewind()
        guard lines > 0 else { throw DataError.invalidArgument(path: path, reason: "no rows after the header") }
        let width = header.count - (labelColumn == nil ? 0 : 1)
        let (total, overflow) = lines.multipliedReportingOverflow(by: width)
        guard !overflow, total <= 1 << 34 else { throw DataError.invalidArgument(path: path, reason: "\(lines) rows × \(width) columns is too large") }
        var labels: [String] = []
        labels.reserveCapacity(lines)
        var features = [Float](repeating: 0, count: total)
        try features.withUnsafeMutableBufferPointer { out in
            var row = 0, line = 1
            var i = lineEnd + 1
            var scratch = [CChar](repeating: 0, count: 64)
            while i < end {
                var j = i
                while j < end && bytes[j] != UInt8(ascii: "\n") { j += 1 }
                line += 1
                defer { i = j + 1; file.release(upTo: i) }
                if CSVTable.blank(bytes, i, j) { continue }
                let cells = CSVTable.fields(bytes, i, j)
                guard cells.count == header.count else {
                    throw DataError.invalidArgument(path: path, reason: "line \(line) (row \(row + 1)): \(cells.count) fields, the header has \(header.count) columns; every row needs one value per column")
                }
                var f = row * width
                for (column, cell) in cells.enumerated() {
                    if column == labelColumn {
                        labels.append(CSVTable.text(bytes, cell))
                        continue
                    }
                    guard let v = CSVTable.number(bytes, cell, &scratch) else {
                        throw DataError.invalidArgument(path: path, reason: "line \(line) (row \(row + 1)), column \(column + 1) \"\(header[column])\": \"\(CSVTable.text(bytes, cell).prefix(40))\" is not a number")
                    }
                    out[f] = v
                    f += 1
                }
                row += 1
            }
        }
        self.rows = lines
        self.features = features
        self.labels = labels
    }

    /// The line number (1-based, header = 1) of data row `row` (0-based), for messages.
    public static func line(ofRow row: Int) -> Int { row + 2 }

    static func blank(_ b: UnsafePointer<UInt8>, _ i: Int, _ j: Int) -> Bool {
        var k = i
        while k < j { if b[k] != UInt8(ascii: " ") && b[k] != UInt8(ascii: "\r") && b[k] != UInt8(ascii: "\t") { return false }; k += 1 }
        return true
    }

    /// The fields of the line `i..<j`, without a trailing `\r`; a field in double quotes keeps its commas.
    static func fields(_ b: UnsafePointer<UInt8>, _ i: Int, _ j: Int) -> [Range<Int>] {
        var end = j
        if end > i && b[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        var out: [Range<Int>] = []
        var start = i, k = i, quoted = false
        while k < end {
            let c = b[k]
            if c == UInt8(ascii: "\"") { quoted.toggle() } else if c == UInt8(ascii: ","), !quoted { out.append(start..<k); start = k + 1 }
            k += 1
        }
        out.append(start..<end)
        return out
    }

    /// A field's text, trimmed of spaces and surrounding double quotes.
    static func text(_ b: UnsafePointer<UInt8>, _ r: Range<Int>) -> String {
        var lo = r.lowerBound, hi = r.upperBound
        while lo < hi && b[lo] == UInt8(ascii: " ") { lo += 1 }
        while hi > lo && b[hi - 1] == UInt8(ascii: " ") { hi -= 1 }
        if hi - lo >= 2 && b[lo] == UInt8(ascii: "\"") && b[hi - 1] == UInt8(ascii: "\"") { lo += 1; hi -= 1 }
        return String(decoding: UnsafeBufferPointer(start: b + lo, count: hi - lo), as: UTF8.self)
    }

    /// A field as a float (C's `strtof` on the whole trimmed field), or nil.
    static func number(_ b: UnsafePointer<UInt8>, _ r: Range<Int>, _ scratch: inout [CChar]) -> Float? {
        var lo = r.lowerBound, hi = r.upperBound
        while lo < hi && b[lo] == UInt8(ascii: " ") { lo += 1 }
        while hi > lo && b[hi - 1] == UInt8(ascii: " ") { hi -= 1 }
        if hi - lo >= 2 && b[lo] == UInt8(ascii: "\"") && b[hi - 1] == UInt8(ascii: "\"") { lo += 1; hi -= 1 }
        let n = hi - lo
        guard n > 0, n < 63 else { return nil }
        return scratch.withUnsafeMutableBufferPointer { s -> Float? in
            for k in 0..<n { s[k] = CChar(bitPattern: b[lo + k]) }
            s[n] = 0
            var endPointer: UnsafeMutablePointer<CChar>?
            let v = strtof(s.baseAddress!, &endPointer)
            guard endPointer == s.baseAddress! + n, v.isFinite else { return nil }
            return v
        }
    }
}
