import Foundation
import XCTest
import LockstepRuntime

/// The fuzz targets over their committed corpus (Tests/Fuzz/corpus) and a fixed
/// number of seeded mutations: 110k inputs in all, none may trap, and the process's
/// peak memory may not grow by what lying sizes claim. `tools/fuzz.sh` runs them for
/// as long as asked.
final class FuzzTests: XCTestCase {
    func testDecodersSurviveMutatedInputs() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus").path
        let scratch = (FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm/" : NSTemporaryDirectory())
            + "lockstep-fuzz-test-\(getpid())"
        defer { unlink(scratch) }
        // idx reads through zlib and costs most per input.
        let budget: [FuzzTarget: Int] = [.wireframe: 30_000, .control: 30_000, .config: 25_000, .safetensors: 15_000, .idx: 10_000]
        let peakBefore = peakKiB()
        var total = 0
        for target in FuzzTarget.allCases {
            let runner = FuzzRunner(target: target, corpus: try FuzzRunner.corpus(target, in: corpus), seed: 20261205)
            let outcome = runner.run(inputs: budget[target]!, scratch: scratch)
            XCTAssertEqual(outcome.inputs, budget[target]!)
            XCTAssertGreaterThan(outcome.accepted, 0, "\(target): the mutations never produced a valid input; is the corpus valid?")
            print(String(format: "fuzz %@: %d inputs in %.1f s, %d accepted as valid", target.rawValue, outcome.inputs,
                         outcome.seconds, outcome.accepted))
            total += outcome.inputs
        }
        print("fuzz: \(total) inputs tried, 0 crashes")
        XCTAssertGreaterThanOrEqual(total, 100_000)
        XCTAssertLessThan(peakKiB() - peakBefore, 256 << 10, "peak memory grew by more than 256 MB while fuzzing")
    }

    private func peakKiB() -> Int {
        let text = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = text.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
}
