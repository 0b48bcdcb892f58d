import LockstepData
import XCTest
import LockstepBase

final class RandomTests: XCTestCase {
    static let pinned: [Int32] = [0, 9, 7, 2, 4, 1, 8, 3, 6, 5]
    func testSplitMix64ReferenceStream() {
        // First outputs of the reference C implementation (Vigna) seeded with 0.
        var g = SplitMix64(seed: 0)
        XCTAssertEqual(g.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(g.next(), 0x6E78_9E6A_A1B9_65F4)
        XCTAssertEqual(g.next(), 0x06C4_5D18_8009_454F)
    }

    func testUniformAndGaussianRanges() {
        var g = SplitMix64(seed: 42)
        var sum = 0.0, squares = 0.0
        let n = 200_000
        for _ in 0..<n {
            let u = g.nextFloat()
            XCTAssertTrue(u >= 0 && u < 1)
            let z = Double(g.nextGaussian())
            XCTAssertTrue(z.isFinite)
            sum += z
            squares += z * z
        }
        XCTAssertEqual(sum / Double(n), 0, accuracy: 0.01)
        XCTAssertEqual(squares / Double(n), 1, accuracy: 0.02)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[g.nextInt(below: 7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
    }

    func testEpochPermutationIsDeterministicPermutation() {
        for count in [0, 1, 2, 17, 1000, 60000] {
            let a = EpochPermutation.make(count: count, seed: 1234, epoch: 3)
            XCTAssertEqual(a, EpochPermutation.make(count: count, seed: 1234, epoch: 3), "same on every process")
            XCTAssertEqual(a.sorted(), (0..<count).map { Int32($0) }, "a permutation of 0..<\(count)")
            if count >= 1000 {
                XCTAssertNotEqual(a, EpochPermutation.make(count: count, seed: 1234, epoch: 4), "epochs differ")
                XCTAssertNotEqual(a, EpochPermutation.make(count: count, seed: 1235, epoch: 3), "seeds differ")
                XCTAssertNotEqual(a, (0..<count).map { Int32($0) })
            }
        }
        // Pinned so that a change of generator or shuffle (which would change every run's data order) is noticed.
        XCTAssertEqual(EpochPermutation.make(count: 10, seed: 2024, epoch: 1), Self.pinned)
    }

    func testSyntheticDatasetIsDeterministicAndLearnable() {
        let a = SyntheticDataset.make(count: 2000, features: 32, classes: 5, seed: 7)
        let b = SyntheticDataset.make(count: 2000, features: 32, classes: 5, seed: 7)
        XCTAssertEqual(a.images, b.images)
        XCTAssertEqual(a.labels, b.labels)
        XCTAssertNotEqual(a.images, SyntheticDataset.make(count: 2000, features: 32, classes: 5, seed: 8).images)
        XCTAssertEqual(Set(a.labels), Set(0..<5))
        // Nearest class mean, fitted on the first half, must beat chance (20%) by far on the second.
        var means = [Double](repeating: 0, count: 5 * 32)
        var counts = [Double](repeating: 0, count: 5)
        for r in 0..<1000 {
            let c = Int(a.labels[r])
            counts[c] += 1
            for f in 0..<32 { means[c * 32 + f] += Double(a.images[r * 32 + f]) }
        }
        for c in 0..<5 { for f in 0..<32 { means[c * 32 + f] /= max(counts[c], 1) } }
        var correct = 0
        for r in 1000..<2000 {
            let best = (0..<5).min { c1, c2 in
                func d(_ c: Int) -> Double { (0..<32).reduce(0) { $0 + pow(Double(a.images[r * 32 + $1]) - means[c * 32 + $1], 2) } }
                return d(c1) < d(c2)
            }!
            if best == Int(a.labels[r]) { correct += 1 }
        }
        XCTAssertGreaterThan(correct, 700, "nearest-mean accuracy \(correct)/1000")
    }
}
