import XCTest
import TestSupport
@testable import LockstepKernels

final class GemmSharedPackedBTests: XCTestCase {
    /// Packed in two halves by panels, multiplied in uneven row chunks: the bits of one
    /// `sgemm` call, for both B layouts, several depth blocks and ragged shapes.
    func testSplitPackingAndRowChunksMatchSgemmBitwise() {
        var rng = TestRandom(seed: 41)
        for (m, n, k) in [(512, 128, 784), (256, 128, 512), (10, 64, 256), (37, 50, 300), (1, 1, 1), (25, 16, 17)] {
            for (transA, transB) in [(false, true), (false, false), (true, true), (true, false)] {
                let a = rng.floats(m * k), b = rng.floats(k * n), c0 = rng.floats(m * n)
                let lda = transA ? m : k, ldb = transB ? k : n
                var expected = c0, got = c0
                Gemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                           beta: 0.5, c: &expected, ldc: n)
                let packed = Gemm.SharedPackedB(k: k, n: n)
                let half = packed.panelCount / 2
                b.withUnsafeBufferPointer { bp in
                    for panels in [half..<packed.panelCount, 0..<half] {
                        let j0 = panels.lowerBound * packed.panelWidth
                        packed.pack(transB: transB, b: bp.baseAddress! + (transB ? j0 * ldb : j0), ldb: ldb, panels: panels)
                    }
                }
                // Chunks of 12, 7 and the rest, out of order.
                let cuts = [0, min(m, 12), min(m, 19), m]
                for i in [2, 0, 1] {
                    packed.multiply(transA: transA, rows: cuts[i]..<cuts[i + 1], a: a, lda: lda, alpha: 1, beta: 0.5, c: &got, ldc: n)
                }
                XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "m=\(m) n=\(n) k=\(k) transA=\(transA) transB=\(transB)")
            }
        }
    }
}
