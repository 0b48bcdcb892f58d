import XCTest
@testable import LockstepRuntime

final class GradientBucketTests: XCTestCase {
    func testBucketsCoverTheArenaFromTheEndInWholeLayers() {
        // Layers: Linear (0..<100), BatchNorm (100..<110), ReLU (none), Linear (110..<160)
        let ranges = [0..<100, 100..<110, 110..<110, 110..<160]
        XCTAssertEqual(GradientBucket.plan(layerRanges: ranges, bucketBytes: 4 * 40),
                       [GradientBucket(range: 110..<160, firstLayer: 3), GradientBucket(range: 0..<110, firstLayer: 0)])
        XCTAssertEqual(GradientBucket.plan(layerRanges: ranges, bucketBytes: 1 << 30),
                       [GradientBucket(range: 0..<160, firstLayer: 0)])
        XCTAssertEqual(GradientBucket.plan(layerRanges: ranges, bucketBytes: 4),
                       [GradientBucket(range: 110..<160, firstLayer: 3), GradientBucket(range: 100..<110, firstLayer: 1),
                        GradientBucket(range: 0..<100, firstLayer: 0)])
    }
}
