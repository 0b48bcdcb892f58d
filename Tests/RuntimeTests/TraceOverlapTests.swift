import Foundation
import XCTest

/// `--trace` writes one track per worker, and a gradient bucket's all-reduce
/// runs while backward is still computing (overlap).
final class TraceOverlapTests: XCTestCase {
    func testBucketAllReduceOverlapsBackward() throws {
        let config = try TestConfigs.write(layers: "\"linear 256\", \"batchnorm\", \"relu\", \"linear 256\", \"batchnorm\", \"relu\", \"linear 4\"",
                                           trainSamples: 4096, epochs: 1, extra: "bucket_bytes = 65536")
        let trace = config + ".trace.json"
        let p = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--max-steps", "20", "--trace", trace])
        XCTAssertEqual(p.wait(seconds: 60), 0, p.text)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: trace))) as? [String: Any])
        let events = try XCTUnwrap(root["traceEvents"] as? [[String: Any]]).filter { $0["ph"] as? String == "X" }
        XCTAssertEqual(Set(events.compactMap { $0["pid"] as? Int }), [0, 1], "one track per worker")
        var overlapping = 0
        for pid in [0, 1] {
            let mine = events.filter { $0["pid"] as? Int == pid }
            let backward = mine.filter { $0["name"] as? String == "backward" }
            let buckets = mine.filter { ($0["name"] as? String)?.hasPrefix("all-reduce bucket") == true }
            XCTAssertFalse(backward.isEmpty)
            XCTAssertGreaterThan(buckets.count, backward.count, "several buckets per step expected")
            for b in buckets {
                let start = b["ts"] as! Double
                if backward.contains(where: { start >= ($0["ts"] as! Double) && start < ($0["ts"] as! Double) + ($0["dur"] as! Double) }) {
                    overlapping += 1
                }
            }
        }
        XCTAssertGreaterThan(overlapping, 0, "no bucket all-reduce started while backward was running")
    }
}
