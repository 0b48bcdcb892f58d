import Foundation
import XCTest
import LockstepData

/// Crafted files and numbers, in one process and with `--workers 2`: each ends the
/// run at once with exit status 1 and one line that says what is wrong — no trap,
/// no hang, no allocation sized by the input.
final class CraftedInputTests: XCTestCase {
    /// Runs `lockstep train ARGS` alone and with two workers; both must exit 1 within
    /// `seconds` with `needle` in an `error:` line, no process of it above 1 GB.
    private func assertRefused(_ args: [String], _ needle: String, seconds: Double = 5,
                               file: StaticString = #filePath, line: UInt = #line) throws {
        for extra in [[], ["--workers", "2"]] {
            let start = Date()
            let p = try ChildProcess("lockstep", ["train"] + args + extra)
            let status = p.wait(seconds: 60, file: file, line: line)
            let elapsed = Date().timeIntervalSince(start)
            let errors = p.text.split(separator: "\n").filter { $0.contains("error:") }
            XCTAssertEqual(status, 1, "\(args + extra):\n\(p.text)", file: file, line: line)
            XCTAssertLessThan(elapsed, seconds, "\(args + extra) took \(elapsed) s to stop:\n\(p.text)", file: file, line: line)
            XCTAssertLessThan(p.peakKiB, 1 << 20, "\(args + extra) peaked at \(p.peakKiB) KiB", file: file, line: line)
            XCTAssertGreaterThan(p.peakKiB, 0, "no peak memory reported for \(args + extra)", file: file, line: line)
            XCTAssertTrue(errors.contains { $0.contains(needle) }, "\(args + extra): no error line with \"\(needle)\":\n\(p.text)",
                          file: file, line: line)
        }
    }

    /// A checkpoint of the test job after 3 steps, with `change` applied to its tensors and metadata.
    private func checkpoint(_ config: String, _ name: String,
                            _ change: (inout [SafeTensors.Entry], inout [String: String]) -> Void) throws -> String {
        let base = config + ".base.safetensors"
        if !FileManager.default.fileExists(atPath: base) {
            let p = try ChildProcess("lockstep", ["train", "--config", config, "--max-steps", "3", "--save", base])
            XCTAssertEqual(p.wait(seconds: 60), 0, p.text)
        }
        let file = try SafeTensors.read(path: base)
        var entries = file.names.map { n -> SafeTensors.Entry in
            let t = file.tensors[n]!
            return SafeTensors.Entry(name: n, shape: t.shape, values: t.values, dtype: t.dtype == .I64 ? .I64 : .F32)
        }
        var metadata = file.metadata
        change(&entries, &metadata)
        let path = config + ".\(name).safetensors"
        try SafeTensors.write(entries: entries, metadata: metadata, to: path)
        return path
    }

    func testCraftedCheckpointsAreRefused() throws {
        let config = try TestConfigs.write()
        let run = ["--config", config, "--max-steps", "6", "--resume"]
        try assertRefused(run + [try checkpoint(config, "optstep") { _, m in m["lockstep.optimizer_step"] = "-1" }],
                          "lockstep.optimizer_step = -1")
        try assertRefused(run + [try checkpoint(config, "negstep") { _, m in m["lockstep.global_step"] = "-5" }],
                          "lockstep.global_step = -5")
        try assertRefused(run + [try checkpoint(config, "hugestep") { _, m in m["lockstep.global_step"] = String(1 << 62) }],
                          "lockstep.global_step = \(1 << 62)")
        try assertRefused(run + [try checkpoint(config, "nanbn") { e, _ in
            if let i = e.firstIndex(where: { $0.name.hasSuffix("num_batches_tracked") }) {
                e[i] = SafeTensors.Entry(name: e[i].name, shape: [], values: [.nan], dtype: .F32)
            }
        }], "num_batches_tracked = nan")
        try assertRefused(run + [try checkpoint(config, "nanweights") { e, _ in
            if let i = e.firstIndex(where: { $0.name == "0.weight" }) { e[i].values[7] = .nan }
        }], "tensor 0.weight holds NaN")
    }

    func testAFifoIsNotReadAsACheckpoint() throws {
        let config = try TestConfigs.write()
        let fifo = config + ".fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        try assertRefused(["--config", config, "--resume", fifo], "not a regular file")
        try assertRefused(["--config", config, "--init-from", fifo], "not a regular file")
    }

    func testHugeWidthsAndEpochsAreRefusedBeforeAllocating() throws {
        try assertRefused(["--config", try TestConfigs.write(layers: "\"linear 99999999\", \"relu\", \"linear 4\"")],
                          "output features must be between 1 and")
        try assertRefused(["--config", try TestConfigs.write(layers: "\"linear 9223372036854775807\", \"linear 4\"")],
                          "output features must be between 1 and")
        try assertRefused(["--config", try TestConfigs.write(layers: "\"linear 1000000\", \"linear 1000000\", \"linear 4\"")],
                          "more than 268435456 parameters")
        try assertRefused(["--config", try TestConfigs.write(), "--epochs", "9223372036854775807"], "must be between 1 and 1000000")
    }

    /// An IDX header that claims 20 million images in a file of about 1 KB.
    func testLyingIdxHeaderIsRefusedWithoutAllocatingWhatItClaims() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-idx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var header: [UInt8] = [0, 0, 8, 3]
        for d in [20_000_000, 28, 28] { header += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: UInt32(d) >> $0) } }
        let body = header + [UInt8](repeating: 7, count: 1000)
        for name in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"] {
            try Data(body).write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        for name in ["train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            try Data([0, 0, 8, 1, 0, 0, 0, 2, 1, 2]).write(to: URL(fileURLWithPath: "\(dir)/\(name)"))
        }
        let config = try TestConfigs.write(layers: "\"linear 16\", \"relu\", \"linear 10\"")
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "dataset = \"synthetic\"", with: "dataset = \"fashion-mnist\"")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        try assertRefused(["--config", config, "--data-dir", dir], "train-images-idx3-ubyte.gz")
        // The largest child so far (this test's and any earlier test's) stayed under 1 GiB.
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        XCTAssertLessThan(usage.ru_maxrss, 1 << 20, "a child reached \(usage.ru_maxrss) KiB of resident memory")
    }
}
