import Foundation
import LockstepData
import XCTest
import LockstepBase

/// IDX reading: round trips through gzip and plain files, and every malformed input as a one-line `DataError`.
final class IDXTests: XCTestCase {
    var dir: TemporaryDirectory!

    override func setUpWithError() throws { dir = try TemporaryDirectory() }
    override func tearDown() { dir.remove() }

    private func images(_ count: Int) -> IDXArray {
        IDXArray(dimensions: [count, 3, 2], bytes: (0..<(count * 6)).map { UInt8(($0 * 37) % 256) })
    }

    /// The raw bytes of an uncompressed IDX file.
    private func rawIDX(_ array: IDXArray, magic: UInt32 = 0x0803) -> [UInt8] {
        var out: [UInt8] = [UInt8(magic >> 24), UInt8((magic >> 16) & 0xff), UInt8((magic >> 8) & 0xff), UInt8(magic & 0xff)]
        for d in array.dimensions { out += [0, 0, UInt8(d >> 8), UInt8(d & 0xff)] }
        return out + array.bytes
    }

    private func assertError(_ path: String, _ magic: UInt32 = IDX.imagesMagic, contains fragment: String,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try IDX.read(path: path, expectedMagic: magic), file: file, line: line) { error in
            guard let e = error as? DataError else { return XCTFail("not a DataError: \(error)", file: file, line: line) }
            let text = e.description
            XCTAssertTrue(text.hasPrefix(path), "should name the file: \(text)", file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "expected '\(fragment)' in: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains("\n"), file: file, line: line)
        }
    }

    func testRoundTripCompressedAndPlain() throws {
        let array = images(5)
        for compressed in [true, false] {
            let path = dir.file("x-\(compressed).idx")
            try IDX.write(array, to: path, compressed: compressed)
            let bytes = try dir.read("x-\(compressed).idx")
            XCTAssertEqual(bytes.prefix(2) == [0x1f, 0x8b], compressed, "gzip magic present iff compressed")
            XCTAssertEqual(try IDX.read(path: path, expectedMagic: IDX.imagesMagic), array)
        }
        let labels = IDXArray(dimensions: [4], bytes: [0, 9, 3, 3])
        try IDX.write(labels, to: dir.file("y.gz"), compressed: true)
        XCTAssertEqual(try IDX.read(path: dir.file("y.gz"), expectedMagic: IDX.labelsMagic), labels)
    }

    func testMissingFile() {
        assertError(dir.file("nope.gz"), contains: "no such file; install Debian's dataset-fashion-mnist or pass --data-dir")
    }

    func testDirectoryIsNotAFile() {
        assertError(dir.path, contains: "not a regular file")
    }

    func testTruncatedPlainAndCompressed() throws {
        let raw = rawIDX(images(4))   // 16-byte header + 24 bytes
        try dir.write(Array(raw.prefix(30)), to: "short.idx")
        assertError(dir.file("short.idx"), contains: "expected 40 bytes, got 30")
        try dir.write(Array(raw.prefix(10)), to: "short-header.idx")
        assertError(dir.file("short-header.idx"), contains: "truncated")
        try dir.write([], to: "empty.idx")
        assertError(dir.file("empty.idx"), contains: "expected 4 bytes, got 0")

        try IDX.write(images(400), to: dir.file("full.gz"), compressed: true)
        let gz = try dir.read("full.gz")
        try dir.write(Array(gz.prefix(gz.count / 2)), to: "cut.gz")
        assertError(dir.file("cut.gz"), contains: "truncated")
    }

    func testTrailingBytes() throws {
        try dir.write(rawIDX(images(2)) + [1, 2, 3], to: "long.idx")
        assertError(dir.file("long.idx"), contains: "longer than the 28 bytes")
    }

    func testBadMagicAndGarbage() throws {
        try dir.write(rawIDX(IDXArray(dimensions: [3], bytes: [1, 2, 3]), magic: 0x0801), to: "labels.idx")
        assertError(dir.file("labels.idx"), IDX.imagesMagic, contains: "magic 0x00000801, expected 0x00000803")
        try dir.write(Array("hello, this is not an IDX file at all".utf8), to: "text.idx")
        assertError(dir.file("text.idx"), contains: "not an IDX file")
        var rng = SplitMix64(seed: 9)
        try dir.write((0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, to: "noise.bin")
        assertError(dir.file("noise.bin"), contains: "not an IDX file")
    }

    func testHugeDimensionsAreRefused() throws {
        try dir.write([0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff], to: "huge.idx")
        assertError(dir.file("huge.idx"), contains: "bad IDX header")
    }

    func testCorruptGzip() throws {
        try IDX.write(images(400), to: dir.file("ok.gz"), compressed: true)
        var gz = try dir.read("ok.gz")
        for i in 20..<min(gz.count - 8, 60) { gz[i] ^= 0x5a }
        try dir.write(gz, to: "bad.gz")
        XCTAssertThrowsError(try IDX.read(path: dir.file("bad.gz"), expectedMagic: IDX.imagesMagic)) { error in
            let text = (error as? DataError)?.description ?? "\(error)"
            XCTAssertTrue(text.contains("gzip data is corrupt") || text.contains("magic") || text.contains("truncated"), text)
        }
        // A damaged CRC trailer is only detected by zlib at the end of the stream.
        var crc = try dir.read("ok.gz")
        crc[crc.count - 6] ^= 0xff
        try dir.write(crc, to: "crc.gz")
        assertError(dir.file("crc.gz"), contains: "gzip data is corrupt")
    }
}
