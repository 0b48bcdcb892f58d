import XCTest
import TestSupport
@testable import LockstepKernels

final class TransposeTests: XCTestCase {
    /// The 8×8 SIMD blocks and the scalar edges give the reference's bits for every
    /// shape class: multiples of 8, ragged rows, ragged columns, a row stride wider than the columns.
    func testAddingRowBiasMatchesReferenceBitwise() {
        var rng = TestRandom(seed: 21)
        for (rows, cols, extra) in [(1, 1, 0), (8, 8, 0), (7, 9, 3), (16, 64, 0), (512, 64, 64), (256, 61, 67), (13, 8, 5), (0, 4, 0), (5, 0, 0)] {
            let ldt = cols + extra
            let t = rng.floats(max(rows * ldt, 1)), bias = rng.floats(max(rows, 1))
            var fast = [Float](repeating: .nan, count: rows * cols), slow = fast
            Transpose.addingRowBias(t, rows: rows, cols: cols, ldt: ldt, bias: bias, into: &fast)
            Transpose.addingRowBiasReference(t, rows: rows, cols: cols, ldt: ldt, bias: bias, into: &slow)
            XCTAssertEqual(fast.map(\.bitPattern), slow.map(\.bitPattern), "rows=\(rows) cols=\(cols) ldt=\(ldt)")
            if rows > 0 && cols > 0 {
                XCTAssertEqual(fast[(cols - 1) * rows + rows - 1], t[(rows - 1) * ldt + cols - 1] + bias[rows - 1])
            }
        }
    }
}
