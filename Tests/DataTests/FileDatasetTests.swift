import Foundation
import XCTest
@testable import LockstepData

/// CSV, .npy and IDX datasets: shapes and classes from the files, label mapping,
/// standardization from the training split, and one-line errors naming file and row.
final class FileDatasetTests: XCTestCase {
    var dir: TemporaryDirectory!
    override func setUpWithError() throws { dir = try TemporaryDirectory() }
    override func tearDown() { dir.remove() }

    private func text(_ s: String, _ name: String) throws -> String {
        try dir.write(Array(s.utf8), to: name)
        return dir.file(name)
    }

    /// A version-1 .npy file of `values` (little-endian bytes of dtype `descr`).
    private func npy(_ name: String, descr: String, shape: [Int], bytes: [UInt8]) throws -> String {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dims), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        let n = header.utf8.count
        try dir.write([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(n & 0xff), UInt8(n >> 8)] + Array(header.utf8) + bytes, to: name)
        return dir.file(name)
    }

    private func f32(_ v: [Float]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }
    private func i64(_ v: [Int64]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) } }

    private func csvSource(_ train: String, _ test: String?) -> DataSource {
        var s = DataSource(format: .csv)
        s.train = train
        s.test = test
        return s
    }

    private func error(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    func testCSVWithStringLabelsAndStandardization() throws {
        let train = try text("a,species,b\n1,cat,10\n3,dog,10\n5,cat,10\n7,emu,10\n", "train.csv")
        let test = try text("a,species,b\r\n2,dog,10\r\n\r\n", "test.csv")
        var source = csvSource(train, test)
        source.label = "species"
        source.standardize = true
        let (tr, te, t) = try FileDatasets.load(source, seed: 0)
        XCTAssertEqual(tr.count, 4)
        XCTAssertEqual(te.count, 1)
        XCTAssertEqual(tr.features, 2)
        XCTAssertEqual(t.classNames, ["cat", "dog", "emu"])
        XCTAssertEqual(tr.labels, [0, 1, 0, 2])
        XCTAssertEqual(te.labels, [1])
        // Column a: mean 4, population std √5 (training rows only); column b is constant: std 1.
        XCTAssertEqual(t.mean!, [4, 10])
        XCTAssertEqual(t.std![0], 5.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(t.std![1], 1)
        XCTAssertEqual(te.images[0], Float((2 - 4) / 5.0.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(te.images[1], 0)
    }

    func testCSVIntegerLabelsAndTestFraction() throws {
        let rows = (0..<50).map { "\($0),\($0 % 3)" }.joined(separator: "\n")
        var source = csvSource(try text("x,label\n" + rows + "\n", "all.csv"), nil)
        source.testFraction = 0.2
        let (tr, te, t) = try FileDatasets.load(source, seed: 4)
        XCTAssertEqual(tr.count, 40)
        XCTAssertEqual(te.count, 10)
        XCTAssertEqual(t.classes, 3)
        XCTAssertNil(t.classNames)
        XCTAssertEqual(Set(tr.images + te.images), Set((0..<50).map(Float.init)))
        for (x, y) in zip(tr.images, tr.labels) { XCTAssertEqual(Int(x) % 3, Int(y)) }
        // The same seed draws the same split.
        XCTAssertEqual(try FileDatasets.load(source, seed: 4).test.images, te.images)
    }

    func testBadCSVFilesNameFileLineAndColumn() throws {
        let good = try text("a,b,label\n1,2,0\n3,4,1\n", "good.csv")
        let ragged = try text("a,b,label\n1,2,0\n3,1\n", "ragged.csv")
        var e = error { _ = try FileDatasets.load(csvSource(ragged, good), seed: 0) }
        XCTAssertTrue(e.contains("ragged.csv") && e.contains("line 3 (row 2)") && e.contains("2 fields"), e)
        let word = try text("a,b,label\n1,2,0\n3,x4,1\n", "word.csv")
        e = error { _ = try FileDatasets.load(csvSource(good, word), seed: 0) }
        XCTAssertTrue(e.contains("word.csv") && e.contains("line 3 (row 2), column 2 \"b\"") && e.contains("\"x4\" is not a number"), e)
        var source = csvSource(good, try text("a,b,label\n1,2,7\n", "range.csv"))
        source.classes = 2
        e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("range.csv") && e.contains("line 2 (row 1)") && e.contains("label 7 is outside the class range 0...1"), e)
        source = csvSource(good, try text("a,b,label\n1,2,-1\n", "negative.csv"))
        e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("negative.csv") && e.contains("label -1 is outside"), e)
        source = csvSource(good, good)
        source.label = "class"
        e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("good.csv") && e.contains("no column \"class\""), e)
        e = error { _ = try FileDatasets.load(csvSource(good, dir.file("missing.csv")), seed: 0) }
        XCTAssertTrue(e.contains("missing.csv") && e.contains("no such file"), e)
        for message in [e] { XCTAssertFalse(message.contains("\n")) }
    }

    func testNPYShapesDtypesAndErrors() throws {
        let x = try npy("x.npy", descr: "<f4", shape: [4, 1, 2, 3], bytes: f32((0..<24).map(Float.init)))
        let y = try npy("y.npy", descr: "<i8", shape: [4], bytes: i64([0, 1, 2, 1]))
        var source = DataSource(format: .npy)
        (source.trainX, source.trainY, source.testX, source.testY) = (x, y, x, y)
        let (tr, _, t) = try FileDatasets.load(source, seed: 0)
        XCTAssertEqual(tr.sampleShape, [1, 2, 3])
        XCTAssertEqual(tr.features, 6)
        XCTAssertEqual(t.classes, 3)
        XCTAssertEqual(tr.images[7], 7)

        let short = try npy("short.npy", descr: "<i8", shape: [3], bytes: i64([0, 1, 2]))
        source.testY = short
        var e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("short.npy") && e.contains("3 labels") && e.contains("4 samples"), e)
        source.testY = y
        source.testX = try npy("half.npy", descr: "<f2", shape: [4, 6], bytes: [UInt8](repeating: 0, count: 48))
        e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("half.npy") && e.contains("unsupported dtype '<f2'"), e)
        source.testX = x
        source.testY = try npy("floaty.npy", descr: "<f4", shape: [4], bytes: f32([0, 1, 2, 1]))
        e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("floaty.npy") && e.contains("unsupported dtype '<f4' for labels"), e)
        source.testY = try npy("big.npy", descr: "<i8", shape: [4], bytes: i64([0, 1, 9, 1]))
        source.classes = 3
        e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("big.npy") && e.contains("row 3 (index 2)") && e.contains("label 9 is outside the class range 0...2"), e)
        source.testY = try npy("cut.npy", descr: "<i8", shape: [4], bytes: i64([0, 1]))
        e = error { _ = try FileDatasets.load(source, seed: 0) }
        XCTAssertTrue(e.contains("cut.npy") && e.contains("truncated"), e)
    }

    func testIDXOfAnyImageSize() throws {
        let images = IDXArray(dimensions: [5, 12, 9], bytes: (0..<(5 * 12 * 9)).map { UInt8($0 % 256) })
        let labels = IDXArray(dimensions: [5], bytes: [0, 1, 2, 3, 1])
        try IDX.write(images, to: dir.file("x.idx"), compressed: false)
        try IDX.write(labels, to: dir.file("y.idx"), compressed: true)
        var source = DataSource(format: .idx)
        (source.trainImages, source.trainLabels) = (dir.file("x.idx"), dir.file("y.idx"))
        source.testFraction = 0.4
        let (tr, te, t) = try FileDatasets.load(source, seed: 0)
        XCTAssertEqual(tr.sampleShape, [12, 9])
        XCTAssertEqual(tr.count + te.count, 5)
        XCTAssertEqual(t.classes, 4)
        XCTAssertEqual(t.scale, 1.0 / 255)
        // Standardized with one scalar pair, as Fashion-MNIST: the training pixels have mean 0.
        let mean = tr.images.reduce(0.0) { $0 + Double($1) } / Double(tr.images.count)
        XCTAssertEqual(mean, 0, accuracy: 1e-5)
    }
}
