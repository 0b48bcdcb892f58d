import Foundation
import LockstepData
import XCTest
import LockstepBase

final class SafeTensorsTests: XCTestCase {
    var dir: TemporaryDirectory!

    override func setUpWithError() throws { dir = try TemporaryDirectory() }
    override func tearDown() { dir.remove() }

    let sample: [(name: String, shape: [Int], values: [Float])] = [
        ("layer0.weight", [2, 3], [1, -2, 3.5, .pi, -0.0, 1e-30]),
        ("layer0.bias", [3], [0.5, 0.25, -8]),
        ("scalar", [], [7]),
        ("empty", [0, 4], []),
        ("name \"quoted\"\n", [1], [.greatestFiniteMagnitude]),
    ]

    func testRoundTripInOrderWithMetadata() throws {
        let path = dir.file("model.safetensors")
        try SafeTensors.write(sample, metadata: ["step": "12", "config": "{\"a\": 1}"], to: path)
        let file = try SafeTensors.read(path: path)
        XCTAssertEqual(file.names, sample.map(\.name))
        for t in sample {
            let read = try XCTUnwrap(file.tensors[t.name])
            XCTAssertEqual(read.shape, t.shape)
            XCTAssertEqual(read.values.map(\.bitPattern), t.values.map(\.bitPattern))
            XCTAssertEqual(read.dtype, .F32)
        }
        XCTAssertEqual(file.metadata, ["step": "12", "config": "{\"a\": 1}"])
        let bytes = try dir.read("model.safetensors")
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(headerLength % 8, 0, "header padded to a multiple of 8")
        XCTAssertEqual(bytes.count, 8 + headerLength + 4 * 11)
        XCTAssertEqual(dir.contents(), ["model.safetensors"], "no temporary file left behind")
    }

    func testReadsPyTorchExport() throws {
        let path = dir.file("torch.safetensors")
        try dir.write([UInt8](try XCTUnwrap(Data(base64Encoded: TorchSafeTensorsFixture.base64))), to: "torch.safetensors")
        let file = try SafeTensors.read(path: path)
        XCTAssertEqual(file.metadata, TorchSafeTensorsFixture.metadata)
        XCTAssertEqual(Set(file.names), Set(TorchSafeTensorsFixture.expected.map(\.name)))
        for e in TorchSafeTensorsFixture.expected {
            let t = try XCTUnwrap(file.tensors[e.name], e.name)
            XCTAssertEqual(t.dtype.rawValue, e.dtype, e.name)
            XCTAssertEqual(t.shape, e.shape, e.name)
            XCTAssertEqual(t.values, e.values, e.name)
        }
    }

    func testOverwriteIsAtomic() throws {
        let path = dir.file("ckpt.safetensors")
        try SafeTensors.write(sample, to: path)
        let before = try dir.read("ckpt.safetensors")
        // A rejected write (shape and values disagree) leaves the old checkpoint intact.
        XCTAssertThrowsError(try SafeTensors.write([("w", [2, 2], [1, 2, 3])], to: path)) { error in
            XCTAssertTrue("\(error)".contains("shape [2, 2] but 3 values"), "\(error)")
        }
        XCTAssertEqual(try dir.read("ckpt.safetensors"), before)
        try SafeTensors.write([("w", [1], [9])], metadata: ["step": "2"], to: path)
        XCTAssertEqual(try SafeTensors.read(path: path).tensors["w"]?.values, [9])
        XCTAssertEqual(dir.contents(), ["ckpt.safetensors"])
    }

    func testWriteIntoMissingDirectoryFailsCleanly() throws {
        let path = dir.file("missing/sub/ckpt.safetensors")
        XCTAssertThrowsError(try SafeTensors.write(sample, to: path)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("missing/sub/") && text.contains("No such file"), text)
            XCTAssertFalse(text.contains("\n"))
        }
        XCTAssertEqual(dir.contents(), [])
    }

    func testDuplicateNamesRejected() {
        XCTAssertThrowsError(try SafeTensors.write([("a", [1], [1]), ("a", [1], [2])], to: dir.file("d.safetensors")))
        XCTAssertThrowsError(try SafeTensors.write([("__metadata__", [1], [1])], to: dir.file("d.safetensors")))
        XCTAssertEqual(dir.contents(), [])
    }

    private func file(header: String, data: [UInt8], declaredLength: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        let n = declaredLength ?? UInt64(h.count)
        return (0..<8).map { UInt8((n >> (8 * UInt64($0))) & 0xff) } + h + data
    }

    private func assertInvalid(_ bytes: [UInt8], contains fragment: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try dir.write(bytes, to: "bad.safetensors")
        let path = dir.file("bad.safetensors")
        XCTAssertThrowsError(try SafeTensors.read(path: path), file: file, line: line) { error in
            let text = (error as? DataError)?.description ?? "not a DataError: \(error)"
            XCTAssertTrue(text.hasPrefix(path + ": not a valid safetensors file"), text, file: file, line: line)
            XCTAssertTrue(text.contains(fragment), "expected '\(fragment)' in: \(text)", file: file, line: line)
        }
    }

    func testMalformedFilesAreTypedErrors() throws {
        let f32 = #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        try assertInvalid([1, 2, 3], contains: "too short")
        try assertInvalid(file(header: f32, data: [UInt8](repeating: 0, count: 8), declaredLength: 1 << 40), contains: "header length")
        try assertInvalid(file(header: "{not json", data: []), contains: "not JSON")
        try assertInvalid(file(header: "[1, 2]", data: []), contains: "not a JSON object")
        try assertInvalid(file(header: f32, data: [0, 0, 0, 0]), contains: "outside")
        try assertInvalid(file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                          contains: "needs 12 bytes, span is 8")
        try assertInvalid(file(header: #"{"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, data: [UInt8](repeating: 0, count: 8)),
                          contains: "unsupported dtype C64")
        try assertInvalid(file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                          contains: "invalid shape")
        try assertInvalid(file(header: #"{"w":{"shape":[1]}}"#, data: []), contains: "lacks dtype")
        try assertInvalid(file(header: f32, data: [UInt8](repeating: 0, count: 12)), contains: "4 bytes after the last tensor")
        try assertInvalid(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                               data: [0, 0, 0, 0]), contains: "overlap or gap")
        try assertInvalid(file(header: #"{"__metadata__":{"a":1}}"#, data: []), contains: "not a string")
        XCTAssertThrowsError(try SafeTensors.read(path: dir.file("absent.safetensors"))) { error in
            XCTAssertTrue("\(error)".contains("no such file"), "\(error)")
        }
        var rng = SplitMix64(seed: 3)
        for length in [8, 9, 64, 1000] {
            let noise = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            try dir.write(noise, to: "noise.safetensors")
            XCTAssertThrowsError(try SafeTensors.read(path: dir.file("noise.safetensors")))
        }
    }
}
