/// Single-precision GEMM, row-major: `C = alpha * op(A) * op(B) + beta * C`.
/// `op(A)` is m×k, `op(B)` is k×n, C is m×n.
///
/// The fast path follows GotoBLAS/BLIS: op(B) is packed in KC×NC blocks into
/// 16-column micro-panels, op(A) in MC×KC blocks into 6-row micro-panels, and a
/// 6×16 register-tiled micro-kernel (12 SIMD8 accumulators, FMA) runs over them.
/// All four transpose cases differ only in how the packing reads memory.
///
/// Threading (`Strategy`): on small pools C is split into one rectangle per thread
/// along its larger dimension and each thread packs its own panels (splitting the
/// larger of m and n duplicates only the packing of the smaller operand); larger
/// pools share each packed block of op(B) and split the rows. Either way every
/// element of C sees the same sequence of operations, so results are bitwise
/// identical for any thread count. Problems under `parallelThreshold` run inline.
public enum Gemm {
    /// Micro-tile rows (broadcast from packed A).
    static let mr = 6
    /// Micro-tile columns (two SIMD8 vectors from packed B).
    static let nr = 16
    /// Rows of A packed per block: 144×256 floats = 144 KiB, resident in Zen3's 512 KiB L2.
    static let mc = 144
    /// Depth of a packed block: one B micro-panel (256×16 floats = 16 KiB) stays in L1.
    static let kc = 256
    /// Columns of B packed per block (KC×NC floats = 4 MiB, in L3).
    static let nc = 4080
    /// Below this many multiply-adds (m·n·k) the call runs on the calling thread.
    /// (The N=10 output layer at batch 128, 128·10·256 = 327k, measured no faster on two
    /// threads; with a busy second core, thin shapes up to ~1M lost far more than they gained.)
    public static let parallelThreshold = 1 << 20

    /// `C = alpha * op(A) * op(B) + beta * C`. With `beta == 0` the old contents of C
    /// are never read (they may be NaN). Runs on `pool` when the problem is large enough.
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool = .shared
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Gemm.sgemm: negative dimension m=\(m) n=\(n) k=\(k)")
        precondition(ldc >= max(1, n), "Gemm.sgemm: ldc \(ldc) < n \(n)")
        precondition(lda >= max(1, transA ? m : k), "Gemm.sgemm: lda \(lda) too small for op(A) \(m)×\(k) (transA \(transA))")
        precondition(ldb >= max(1, transB ? k : n), "Gemm.sgemm: ldb \(ldb) too small for op(B) \(k)×\(n) (transB \(transB))")
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scale(c, ldc: ldc, m: m, n: n, beta: beta)
            return
        }

        let threads = pool.threadCount
        let work = Double(m) * Double(n) * Double(k)
        let mTiles = (m + mr - 1) / mr
        let nTiles = (n + nr - 1) / nr
        let splitM = m >= n
        let tiles = splitM ? mTiles : nTiles
        let tasks = min(threads, tiles)
        if tasks <= 1 || work < Double(parallelThreshold) {
            withScratch { scratch in
                block(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                      a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, scratch: scratch)
            }
            return
        }

        if (forcedStrategy ?? strategy(threads: threads)) == .sharedPanels {
            sharedPanels(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                         b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, pool: pool)
            return
        }
        let tilesPerTask = (tiles + tasks - 1) / tasks
        pool.parallelFor(tasks) { t in
            let firstTile = t * tilesPerTask
            if splitM {
                let i0 = firstTile * mr
                if i0 >= m { return }
                let rows = min(m - i0, tilesPerTask * mr)
                let aSub = transA ? a + i0 : a + i0 * lda
                withScratch { scratch in
                    block(transA: transA, transB: transB, m: rows, n: n, k: k, alpha: alpha,
                          a: aSub, lda: lda, b: b, ldb: ldb, beta: beta, c: c + i0 * ldc, ldc: ldc, scratch: scratch)
                }
            } else {
                let j0 = firstTile * nr
                if j0 >= n { return }
                let cols = min(n - j0, tilesPerTask * nr)
                let bSub = transB ? b + j0 * ldb : b + j0
                withScratch { scratch in
                    block(transA: transA, transB: transB, m: m, n: cols, k: k, alpha: alpha,
                          a: a, lda: lda, b: bSub, ldb: ldb, beta: beta, c: c + j0, ldc: ldc, scratch: scratch)
                }
            }
        }
    }

    /// Reference implementation (triple loop, double accumulation) used by tests and benchmarks.
    public static func sgemmNaive(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Double = 0
                for p in 0..<k {
                    let av = transA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                    s += Double(av) * Double(bv)
                }
                let prior: Float = beta == 0 ? 0 : beta * c[i * ldc + j]
                c[i * ldc + j] = alpha * Float(s) + prior
            }
        }
    }

    /// `C = beta * C`, with `beta == 0` writing zeros without reading C.
    static func scale(_ c: UnsafeMutablePointer<Float>, ldc: Int, m: Int, n: Int, beta: Float) {
        for i in 0..<m {
            let row = c + i &* ldc
            if beta == 0 {
                row.update(repeating: 0, count: n)
            } else if beta != 1 {
                for j in 0..<n { row[j] *= beta }
            }
        }
    }

    /// The serial blocked algorithm over one rectangle of C.
    static func block(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, scratch: GemmScratch
    ) {
        let kcMax = min(kc, k)
        let ncMax = min(nc, (n + nr - 1) / nr * nr)
        let mcMax = min(mc, (m + mr - 1) / mr * mr)
        scratch.reserve(packedA: mcMax * kcMax, packedB: kcMax * ncMax)
        let pa = scratch.packedA
        let pb = scratch.packedB

        var jc = 0
        while jc < n {
            let ncb = min(nc, n - jc)
            var pc = 0
            while pc < k {
                let kcb = min(kc, k - pc)
                // Later depth blocks accumulate onto what the first one wrote.
                let betaBlock: Float = pc == 0 ? beta : 1
                if transB {
                    packBTransposed(b + jc * ldb + pc, ldb: ldb, k: kcb, n: ncb, into: pb)
                } else {
                    packB(b + pc * ldb + jc, ldb: ldb, k: kcb, n: ncb, into: pb)
                }
                var ic = 0
                while ic < m {
                    let mcb = min(mc, m - ic)
                    if transA {
                        packATransposed(a + pc * lda + ic, lda: lda, m: mcb, k: kcb, into: pa)
                    } else {
                        packA(a + ic * lda + pc, lda: lda, m: mcb, k: kcb, into: pa)
                    }
                    macroKernel(m: mcb, n: ncb, k: kcb, pa: pa, pb: pb, c: c + ic * ldc + jc, ldc: ldc, alpha: alpha, beta: betaBlock)
                    ic += mc
                }
                pc += kc
            }
            jc += nc
        }
    }
}

extension Gemm {
    /// How a parallel call divides the work.
    enum Strategy: CaseIterable {
        /// One rectangle of C per thread along the larger of m and n; each thread packs
        /// its own panels (one dispatch per call, duplicated packing of the smaller operand).
        case splitC
        /// Threads share each packed KC×NC block of op(B) and split the rows of C
        /// (no duplicated packing, two dispatches per block).
        case sharedPanels
    }

    /// Overrides `strategy(threads:)`; for tests and measurements.
    nonisolated(unsafe) static var forcedStrategy: Strategy?

    static func strategy(threads: Int) -> Strategy {
        // Measured on 2 threads (training shapes and 1024³): splitC was as fast or
        // faster. Its duplicated packing grows with the thread count, so larger pools
        // share the packed panels instead (not measured on this 2-core machine).
        threads <= 4 ? .splitC : .sharedPanels
    }

    /// Parallel variant: per (jc, pc) block all threads pack a share of op(B) into one
    /// buffer, then each computes its own rows of C against the whole packed panel.
    static func sharedPanels(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool
    ) {
        let threads = pool.threadCount
        let mTiles = (m + mr - 1) / mr
        let rowTasks = min(threads, mTiles)
        let rowsPerTask = (mTiles + rowTasks - 1) / rowTasks * mr
        withScratch { shared in
            let kcMax = min(kc, k)
            let ncMax = min(nc, (n + nr - 1) / nr * nr)
            shared.reserve(packedA: 0, packedB: kcMax * ncMax)
            let pb = shared.packedB
            var jc = 0
            while jc < n {
                let ncb = min(nc, n - jc)
                let panels = (ncb + nr - 1) / nr
                let packTasks = min(threads, panels)
                let panelsPerTask = (panels + packTasks - 1) / packTasks
                var pc = 0
                while pc < k {
                    let kcb = min(kc, k - pc)
                    let betaBlock: Float = pc == 0 ? beta : 1
                    pool.parallelFor(packTasks) { t in
                        let j0 = t * panelsPerTask * nr
                        if j0 >= ncb { return }
                        let cols = min(ncb - j0, panelsPerTask * nr)
                        if transB {
                            packBTransposed(b + (jc + j0) * ldb + pc, ldb: ldb, k: kcb, n: cols, into: pb + j0 * kcb)
                        } else {
                            packB(b + pc * ldb + jc + j0, ldb: ldb, k: kcb, n: cols, into: pb + j0 * kcb)
                        }
                    }
                    pool.parallelFor(rowTasks) { t in
                        let i0 = t * rowsPerTask
                        if i0 >= m { return }
                        let rows = min(m - i0, rowsPerTask)
                        withScratch { mine in
                            mine.reserve(packedA: min(mc, rows + mr) * kcb, packedB: 0)
                            let pa = mine.packedA
                            var ic = i0
                            while ic < i0 + rows {
                                let mcb = min(mc, i0 + rows - ic)
                                if transA {
                                    packATransposed(a + pc * lda + ic, lda: lda, m: mcb, k: kcb, into: pa)
                                } else {
                                    packA(a + ic * lda + pc, lda: lda, m: mcb, k: kcb, into: pa)
                                }
                                macroKernel(m: mcb, n: ncb, k: kcb, pa: pa, pb: pb, c: c + ic * ldc + jc, ldc: ldc, alpha: alpha, beta: betaBlock)
                                ic += mc
                            }
                        }
                    }
                    pc += kc
                }
                jc += nc
            }
        }
    }

    /// One packed MC×KC block of A against one packed KC×NC block of B.
    @inline(__always)
    static func macroKernel(m mcb: Int, n ncb: Int, k kcb: Int, pa: UnsafeMutablePointer<Float>, pb: UnsafeMutablePointer<Float>,
                            c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        var jr = 0
        while jr < ncb {
            let cols = min(nr, ncb - jr)
            let bPanel = UnsafePointer(pb + jr * kcb)
            var ir = 0
            while ir < mcb {
                let rows = min(mr, mcb - ir)
                microKernel(k: kcb, a: UnsafePointer(pa + ir * kcb), b: bPanel,
                            c: c + ir * ldc + jr, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
                ir += mr
            }
            jr += nr
        }
    }
}
