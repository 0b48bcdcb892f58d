import XCTest
import TestSupport
@testable import LockstepKernels

final class ReductionsTests: XCTestCase {
    func testSumsMatchNaiveForEveryTailLength() {
        var rng = TestRandom(seed: 7)
        for n in Array(0...70) + [1000, 4099, 100_003] {
            let x = rng.floats(n), y = rng.floats(n)
            // Float accumulation over n terms of magnitude ≤ 1: error grows like n·ε at worst.
            let atol = 1e-6 * Double(max(n, 1)).squareRoot() + 2e-7 * Double(n) / 32
            assertClose(Reductions.sum(x, count: n), Reductions.sumNaive(x, count: n), rtol: 1e-6, atol: atol, "sum n=\(n)")
            assertClose(Reductions.sumOfSquares(x, count: n), Reductions.sumOfSquaresNaive(x, count: n), rtol: 1e-5, atol: atol, "sumsq n=\(n)")
            assertClose(Reductions.dot(x, y, count: n), Reductions.dotNaive(x, y, count: n), rtol: 1e-5, atol: atol, "dot n=\(n)")
        }
    }

    func testExactSmallCases() {
        XCTAssertEqual(Reductions.sum([1, 2, 3], count: 3), 6)
        XCTAssertEqual(Reductions.sumOfSquares([1, 2, 3], count: 3), 14)
        XCTAssertEqual(Reductions.sum([], count: 0), 0)
    }

    func testColumnSums() {
        var rng = TestRandom(seed: 9)
        for (rows, cols) in [(1, 1), (3, 7), (5, 8), (17, 33), (128, 10), (128, 512), (256, 71), (0, 5)] {
            let x = rng.floats(rows * cols)
            var fast = [Float](repeating: .nan, count: cols), slow = fast
            Reductions.columnSums(x, rows: rows, cols: cols, into: &fast)
            Reductions.columnSumsNaive(x, rows: rows, cols: cols, into: &slow)
            assertClose(fast, slow, rtol: 1e-5, atol: 1e-5 * Double(max(rows, 1)).squareRoot(), "rows=\(rows) cols=\(cols)")
        }
    }
}
