import Foundation
import XCTest

/// The Fashion-MNIST MLP still trains to the parameter hashes recorded before the
/// job-spec redesign (`tools/check_hashes.sh`: 2 epochs, data- and kernel-parallel
/// threads, 2 workers over tcp and shm, 2 workers sharded with Adam).
final class RecordedHashTests: XCTestCase {
    func testFashionMLPTrainsToTheRecordedHashes() throws {
        guard FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
            || FileManager.default.fileExists(atPath: "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte") else {
            throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("tools/check_hashes.sh")
        let lockstep = ChildProcess.binDirectory.appendingPathComponent("lockstep").path
        let run = try ChildProcess(path: script.path, [lockstep], name: "check_hashes.sh")
        XCTAssertEqual(run.wait(seconds: 600), 0, run.text)
        let ok = run.text.split(separator: "\n").filter { $0.hasPrefix("ok ") }
        XCTAssertEqual(ok.count, 5, run.text)
    }
}
