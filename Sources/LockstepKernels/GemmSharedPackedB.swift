import Foundation

extension Gemm {
    /// op(B) packed once, every depth block of it, for threads that split the rows of C
    /// between them: each packs some of the micro-panels (`pack`), then, once all are
    /// packed, each computes any rows of C against the whole (`multiply`). Every element
    /// of C sees the operations `sgemm` gives it (same kernel, depth blocks, beta
    /// sequence), so the bits are `sgemm`'s whoever computes which rows.
    public final class SharedPackedB {
        let kern: GemmKernel
        public let k: Int, n: Int
        /// Depth of the packed blocks (`depthBlock`), and columns per block with whole micro-panels.
        let kc: Int, paddedN: Int
        let buffer: UnsafeMutablePointer<Float>

        /// Columns of one micro-panel: `pack` takes whole panels.
        public var panelWidth: Int { blocking(kern).nr }
        public var panelCount: Int { (n + panelWidth - 1) / panelWidth }

        /// Room for op(B) of `k × n`, `n` at most one packed block wide.
        public init(k: Int, n: Int) {
            kern = Gemm.kernel
            let bl = blocking(kern)
            precondition(k > 0 && n > 0 && n <= bl.nc, "Gemm.SharedPackedB: k=\(k) n=\(n) (n at most \(bl.nc))")
            self.k = k
            self.n = n
            kc = depthBlock(k, bl.kc)
            paddedN = (n + bl.nr - 1) / bl.nr * bl.nr
            let count = ((k + kc - 1) / kc) * kc * paddedN
            buffer = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
                .bindMemory(to: Float.self, capacity: count)
        }

        deinit { buffer.deallocate() }

        private func block(_ d: Int) -> UnsafeMutablePointer<Float> { buffer + d * kc * paddedN }

        /// Packs the columns of micro-panels `panels` of op(B), whose first column is at
        /// `b` (op(B) = B: B[:, j0]; op(B) = Bᵀ: row j0 of B).
        public func pack(transB: Bool, b: UnsafePointer<Float>, ldb: Int, panels: Range<Int>) {
            let j0 = panels.lowerBound * panelWidth, j1 = min(n, panels.upperBound * panelWidth)
            guard j1 > j0 else { return }
            var pc = 0, d = 0
            while pc < k {
                let kcb = min(kc, k - pc)
                packB(kern, transposed: transB, transB ? b + pc : b + pc * ldb, ldb: ldb, k: kcb, n: j1 - j0,
                      into: block(d) + j0 * kcb)
                pc += kc
                d += 1
            }
        }

        /// `C[rows] = alpha·op(A)[rows]·op(B) + beta·C[rows]` (op(A) is m×k; `a`, `c` at row 0).
        public func multiply(transA: Bool, rows: Range<Int>, a: UnsafePointer<Float>, lda: Int, alpha: Float, beta: Float,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
            guard !rows.isEmpty else { return }
            let bl = blocking(kern)
            withScratch { scratch in
                scratch.reserve(packedA: min(bl.mc, (rows.count + bl.mr - 1) / bl.mr * bl.mr) * min(kc, k), packedB: 0)
                var pc = 0, d = 0
                while pc < k {
                    let kcb = min(kc, k - pc)
                    var ic = rows.lowerBound
                    while ic < rows.upperBound {
                        let mcb = min(bl.mc, rows.upperBound - ic)
                        blockOfA(kern, transA: transA, a: a, lda: lda, ic: ic, pc: pc, m: mcb, n: n, k: kcb,
                                 pa: scratch.packedA, pb: block(d), c: c + ic * ldc, ldc: ldc,
                                 alpha: alpha, beta: pc == 0 ? beta : 1)
                        ic += bl.mc
                    }
                    pc += kc
                    d += 1
                }
            }
        }
    }
}
