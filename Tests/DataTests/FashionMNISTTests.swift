import Foundation
import LockstepData
import XCTest

final class FashionMNISTTests: XCTestCase {
    /// The real Debian files, when installed: counts, labels, and the standardization.
    func testRealFilesWhenInstalled() throws {
        let directory = FashionMNIST.defaultDirectory
        try XCTSkipUnless(FileManager.default.fileExists(atPath: directory + "/train-images-idx3-ubyte.gz"),
                          "Fashion-MNIST not installed at \(directory)")
        let start = Date()
        let (train, test) = try FashionMNIST.load(directory: directory)
        print("Fashion-MNIST loaded in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(train.features, 784)
        XCTAssertEqual(train.classes, 10)
        XCTAssertEqual(train.images.count, 60000 * 784)
        XCTAssertEqual(Set(train.labels), Set(0..<10))
        var sum = 0.0, squares = 0.0
        for v in train.images { sum += Double(v); squares += Double(v) * Double(v) }
        let mean = sum / Double(train.images.count)
        let std = (squares / Double(train.images.count) - mean * mean).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 1e-5)
        XCTAssertEqual(std, 1, accuracy: 1e-5)
        // Known statistics of Fashion-MNIST: the raw train mean is 0.2860, std 0.3530.
        XCTAssertEqual(Double(train.images.min()!), (0 - 0.2860) / 0.3530, accuracy: 1e-2)
    }

    private func writeSplit(_ dir: TemporaryDirectory, prefix: String, count: Int, labelCount: Int? = nil,
                            labels: [UInt8]? = nil, size: Int = 2) throws {
        let pixels = (0..<(count * size * size)).map { UInt8(($0 * 13) % 256) }
        try IDX.write(IDXArray(dimensions: [count, size, size], bytes: pixels),
                      to: dir.file("\(prefix)-images-idx3-ubyte.gz"), compressed: true)
        let n = labelCount ?? count
        try IDX.write(IDXArray(dimensions: [n], bytes: labels ?? (0..<n).map { UInt8($0 % 10) }),
                      to: dir.file("\(prefix)-labels-idx1-ubyte.gz"), compressed: true)
    }

    func testSmallSyntheticDirectory() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try writeSplit(dir, prefix: "train", count: 20)
        try writeSplit(dir, prefix: "t10k", count: 5)
        let (train, test) = try FashionMNIST.load(directory: dir.path)
        XCTAssertEqual(train.count, 20)
        XCTAssertEqual(test.count, 5)
        XCTAssertEqual(train.features, 4)
        XCTAssertEqual(train.labels, (0..<20).map { Int32($0 % 10) })
        // numpy: x = bytes/255; (x - x.mean()) / x.std(), with the train statistics used for test too.
        let raw = (0..<80).map { Double(($0 * 13) % 256) / 255 }
        let mean = raw.reduce(0, +) / 80
        let std = (raw.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 80).squareRoot()
        for i in 0..<80 { XCTAssertEqual(Double(train.images[i]), (raw[i] - mean) / std, accuracy: 1e-6) }
        for i in 0..<20 { XCTAssertEqual(Double(test.images[i]), (raw[i] - mean) / std, accuracy: 1e-6) }
    }

    private func assertLoadError(_ dir: TemporaryDirectory, contains fragment: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try FashionMNIST.load(directory: dir.path), file: file, line: line) { error in
            let text = (error as? DataError)?.description ?? "not a DataError: \(error)"
            XCTAssertTrue(text.contains(fragment), "expected '\(fragment)' in: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(dir.path), "should name the file: \(text)", file: file, line: line)
        }
    }

    func testMissingFileNamesThePackage() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        assertLoadError(dir, contains: "train-images-idx3-ubyte.gz: no such file; install Debian's dataset-fashion-mnist")
    }

    func testCountMismatch() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try writeSplit(dir, prefix: "train", count: 20, labelCount: 19)
        try writeSplit(dir, prefix: "t10k", count: 5)
        assertLoadError(dir, contains: "holds 20 images but")
    }

    func testLabelOutOfRange() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try writeSplit(dir, prefix: "train", count: 4, labels: [1, 2, 10, 3])
        try writeSplit(dir, prefix: "t10k", count: 5)
        assertLoadError(dir, contains: "label 10 at index 2 is outside 0...9")
    }

    func testImageSizeMismatchBetweenSplits() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try writeSplit(dir, prefix: "train", count: 4)
        try writeSplit(dir, prefix: "t10k", count: 4, size: 3)
        assertLoadError(dir, contains: "9 pixels")
    }
}
