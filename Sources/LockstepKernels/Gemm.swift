import Foundation
#if arch(x86_64)
import LockstepKernelsAVX512
#endif

/// Single-precision GEMM, row-major: `C = alpha * op(A) * op(B) + beta * C`.
/// `op(A)` is m×k, `op(B)` is k×n, C is m×n.
///
/// The fast path follows GotoBLAS/BLIS: op(B) is packed in KC×NC blocks into
/// NR-column micro-panels, op(A) in MC×KC blocks into MR-row micro-panels, and an
/// MR×NR register-tiled FMA micro-kernel runs over them. Two kernel families
/// (`GemmKernel`): 6×16 on SIMD8 (AVX2, ymm), and on CPUs with AVX-512 12×32 on
/// SIMD16 (zmm, module LockstepKernelsAVX512), picked once at start-up (`kernel`).
/// All four transpose cases differ only in how the packing reads memory. Products
/// with at most 12 columns run thin AVX-512 kernels instead (`thinKernel`).
///
/// Threading (`Strategy`): on small pools C is split into one rectangle per thread
/// along its larger dimension and each thread packs its own panels (splitting the
/// larger of m and n duplicates only the packing of the smaller operand); larger
/// pools share each packed block of op(B) and split the rows. Either way every
/// element of C sees the same sequence of operations, so results are bitwise
/// identical for any thread count (per kernel family). Problems under
/// `parallelThreshold` run inline.
public enum Gemm {
    /// AVX2 micro-tile rows (broadcast from packed A).
    static let mr = 6
    /// AVX2 micro-tile columns (two SIMD8 vectors from packed B).
    static let nr = 16

    /// Register tile and cache blocking of one kernel family.
    struct Blocking: Equatable {
        /// Micro-tile rows and columns.
        var mr: Int, nr: Int
        /// Rows of A per packed block, depth of a block, columns of B per packed block.
        var mc: Int, kc: Int, nc: Int
    }

    static func blocking(_ kernel: GemmKernel) -> Blocking {
        switch kernel {
        // 144×256 floats of A = 144 KiB (in a 512 KiB+ L2); one 256×16 B micro-panel = 16 KiB in L1;
        // KC×NC of B = 4 MiB (L3).
        case .avx2: return Blocking(mr: 6, nr: 16, mc: 144, kc: 256, nc: 4080)
        // One 256×32 B micro-panel = 32 KiB of a 48 KiB L1; MC×KC of A = 192 KiB of a 2 MiB L2.
        case .avx512: return Blocking(mr: 12, nr: 32, mc: 192, kc: 256, nc: 4096)
        }
    }

    /// Below this many multiply-adds (m·n·k) the call runs on the calling thread.
    /// (The N=10 output layer at batch 128, 128·10·256 = 327k, measured no faster on two
    /// threads; with a busy second core, thin shapes up to ~1M lost far more than they gained.)
    public static let parallelThreshold = 1 << 20

    /// `C = alpha * op(A) * op(B) + beta * C`. With `beta == 0` the old contents of C
    /// are never read (they may be NaN). Runs on `pool` when the problem is large enough.
    public static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool = .serial
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

        let kern = kernel
        let bl = blocking(kern)
        let threads = pool.threadCount
        let work = Double(m) * Double(n) * Double(k)
        // Split C in whole micro-tiles; the AVX-512 kernel also runs 16-column panels at
        // full speed, so its column split goes by halves (784 columns: 400 + 384, not 416 + 368).
        let nUnit = kern == .avx512 ? bl.nr / 2 : bl.nr
        let mTiles = (m + bl.mr - 1) / bl.mr
        let nTiles = (n + nUnit - 1) / nUnit
        let splitM = m >= n
        let tiles = splitM ? mTiles : nTiles
        let tasks = min(threads, tiles)
        if tasks <= 1 || work < Double(parallelThreshold) {
            withScratch { scratch in
                block(kern, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                      a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, scratch: scratch)
            }
            return
        }

        // Thin kernels run inside `block`: keep them for every thread count (same bits).
        if (forcedStrategy ?? strategy(threads: threads, m: m, n: n, k: k)) == .sharedPanels && thinKernel(kern, transA: transA, n: n, k: k) == nil {
            sharedPanels(kern, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                         b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, pool: pool)
            return
        }
        let tilesPerTask = (tiles + tasks - 1) / tasks
        pool.parallelFor(tasks) { t in
            let firstTile = t * tilesPerTask
            if splitM {
                let i0 = firstTile * bl.mr
                if i0 >= m { return }
                let rows = min(m - i0, tilesPerTask * bl.mr)
                let aSub = transA ? a + i0 : a + i0 * lda
                withScratch { scratch in
                    block(kern, transA: transA, transB: transB, m: rows, n: n, k: k, alpha: alpha,
                          a: aSub, lda: lda, b: b, ldb: ldb, beta: beta, c: c + i0 * ldc, ldc: ldc, scratch: scratch)
                }
            } else {
                let j0 = firstTile * nUnit
                if j0 >= n { return }
                let cols = min(n - j0, tilesPerTask * nUnit)
                let bSub = transB ? b + j0 * ldb : b + j0
                withScratch { scratch in
                    block(kern, transA: transA, transB: transB, m: m, n: cols, k: k, alpha: alpha,
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

    /// Depth of the KC blocks for a depth of `k`: as many blocks as `kc` needs, made equal
    /// (784 → 3 × 262 rather than 256 + 256 + 256 + 16, whose last pass over C does
    /// 16 multiply-adds per element). Depends on k alone, so every thread count and
    /// strategy blocks alike.
    static func depthBlock(_ k: Int, _ kc: Int) -> Int {
        let blocks = max(1, (k + kc - 1) / kc)
        return (k + blocks - 1) / blocks
    }

    /// The serial blocked algorithm over one rectangle of C.
    static func block(
        _ kern: GemmKernel, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, scratch: GemmScratch
    ) {
        let bl = blocking(kern)
        let (mr, nr, mc, nc) = (bl.mr, bl.nr, bl.mc, bl.nc)
        let kc = depthBlock(k, bl.kc)
        let kcMax = min(kc, k)
        #if arch(x86_64)
        switch thinKernel(kern, transA: transA, n: n, k: k) {
        case .transposedA?:
            // Same depth blocks and per-element operations as below (same bits).
            scratch.reserve(packedA: GemmAVX512.thinTileRows * kcMax, packedB: GemmAVX512.thinColumns * kcMax)
            var pc = 0
            while pc < k {
                GemmAVX512.thinTransposedA(transB: transB, m: m, n: n, k: min(kc, k - pc), a: a + pc * lda, lda: lda,
                                           b: transB ? b + pc : b + pc * ldb, ldb: ldb, c: c, ldc: ldc, alpha: alpha,
                                           beta: pc == 0 ? beta : 1, packedB: scratch.packedB, panel: scratch.packedA)
                pc += kc
            }
            return
        case .rows?:
            // Dot products over the whole depth, A's rows in place (its own summation order).
            scratch.reserve(packedA: 0, packedB: GemmAVX512.thinColumns * GemmAVX512.thinRowsPackedDepth(k))
            GemmAVX512.thinRows(transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                alpha: alpha, beta: beta, packedB: scratch.packedB)
            return
        case nil:
            break
        }
        #endif
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
                    packB(kern, transposed: true, b + jc * ldb + pc, ldb: ldb, k: kcb, n: ncb, into: pb)
                } else {
                    packB(kern, transposed: false, b + pc * ldb + jc, ldb: ldb, k: kcb, n: ncb, into: pb)
                }
                var ic = 0
                while ic < m {
                    let mcb = min(mc, m - ic)
                    blockOfA(kern, transA: transA, a: a, lda: lda, ic: ic, pc: pc, m: mcb, n: ncb, k: kcb, pa: pa, pb: pb,
                             c: c + ic * ldc + jc, ldc: ldc, alpha: alpha, beta: betaBlock)
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
    public enum Strategy: CaseIterable, Sendable {
        /// One rectangle of C per thread along the larger of m and n; each thread packs
        /// its own panels (one dispatch per call, duplicated packing of the smaller operand).
        case splitC
        /// Threads share each packed KC×NC block of op(B) and split the rows of C
        /// (no duplicated packing, two dispatches per block).
        case sharedPanels
    }

    /// `KernelOptions.strategy`, when set, overrides `strategy(threads:m:n:k:)`.
    static var forcedStrategy: Strategy? { options.strategy }

    static func strategy(threads: Int, m: Int, n: Int, k: Int) -> Strategy {
        // Measured on 2 threads (alternating runs): splitC was faster on the training
        // shapes (128×784×512 234-272 against 202-207 GFLOP/s; the A·Bᵀ ones 201-262
        // against 181-205) and at 512³; sharedPanels at 1024³ (median of five 277
        // against 255) and equal at 2048³. When splitC splits the rows of C every
        // thread packs all of op(B), so a large op(B) (4 MiB and more) is shared
        // instead. The duplicated packing also grows with the thread count, so pools
        // of more than 4 share the packed panels (not measured on this 2-core machine).
        if threads > 4 { return .sharedPanels }
        return m >= n && k * n >= 1 << 20 ? .sharedPanels : .splitC
    }

    /// Parallel variant: per (jc, pc) block all threads pack a share of op(B) into one
    /// buffer, then each computes its own rows of C against the whole packed panel.
    static func sharedPanels(
        _ kern: GemmKernel, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool
    ) {
        let bl = blocking(kern)
        let (mr, nr, mc, nc) = (bl.mr, bl.nr, bl.mc, bl.nc)
        let kc = depthBlock(k, bl.kc)
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
                            packB(kern, transposed: true, b + (jc + j0) * ldb + pc, ldb: ldb, k: kcb, n: cols, into: pb + j0 * kcb)
                        } else {
                            packB(kern, transposed: false, b + pc * ldb + jc + j0, ldb: ldb, k: kcb, n: cols, into: pb + j0 * kcb)
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
                                blockOfA(kern, transA: transA, a: a, lda: lda, ic: ic, pc: pc, m: mcb, n: ncb, k: kcb, pa: pa, pb: pb,
                                         c: c + ic * ldc + jc, ldc: ldc, alpha: alpha, beta: betaBlock)
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

    // Per-family dispatch of the packing routines and the macro-kernel (once per block).

    /// Whether the AVX-512 path packs an MC×KC block of op(A) before the macro-kernel,
    /// rather than reading it in place. nil: `packsAForAVX512(transA:n:)` decides.
    static var forcedAVX512PackA: Bool? { options.packA }

    /// `KernelOptions.thin`: force the thin kernels on (true) or off (false).
    static var forcedThinKernel: Bool? { options.thin }

    /// The AVX-512 thin kernels for products with at most 12 columns (the 12×32 tile
    /// would fill ≤ 12 of its 16 lanes).
    enum ThinKernel {
        /// `GemmAVX512.thinTransposedA`: Aᵀ·op(B), vectorized along the rows of C (same bits as the tile).
        case transposedA
        /// `GemmAVX512.thinRows`: A·op(B), dot products along k (its own summation order).
        case rows
    }

    /// Depth from which A·op(B) runs `thinRows` (measured, 1 thread, n = 10: at k = 256
    /// the tile was as fast or faster, from k = 448 the dot products won, ~1.2-2× at 784).
    static let thinRowsMinimumDepth = 384

    /// Widest A·op(B) that runs `thinRows`: with 11-12 columns its 24 accumulators, two
    /// rows of A and a column of op(B) do not fit the 32 registers without moves, and
    /// it measured no faster than the tile (128×784×12: 57-64 against 49-64 GFLOP/s).
    static let thinRowsMaximumColumns = 10

    /// Which thin kernel, if any, runs a product; depends on the shape only (so on no
    /// thread count). `LOCKSTEP_GEMM_THIN=0` turns both off, `=1` also forces `thinRows`
    /// below its minimum depth.
    static func thinKernel(_ kern: GemmKernel, transA: Bool, n: Int, k: Int) -> ThinKernel? {
        #if arch(x86_64)
        guard kern == .avx512, n <= GemmAVX512.thinColumns, forcedThinKernel ?? true else { return nil }
        if transA { return .transposedA }
        guard n <= thinRowsMaximumColumns else { return nil }
        return k >= thinRowsMinimumDepth || forcedThinKernel == true ? .rows : nil
        #else
        return nil
        #endif
    }

    /// Measured (1 thread): reading A in place wins when few B panels reuse each A
    /// micro-panel (thin N: 2×) and for plain A with row strides that spread over the L1
    /// sets; packing wins for Aᵀ against many B panels (strided 48-byte pieces per step)
    /// and for row strides that are multiples of 4 KiB (the 12 rows of a micro-panel
    /// collide in one L1 set: 1024³ ran at ~90 in place vs ~125 GFLOP/s packed).
    static func packsAForAVX512(transA: Bool, n: Int, lda: Int) -> Bool {
        if let forced = forcedAVX512PackA { return forced }
        return transA ? n > 64 : lda % 1024 == 0
    }

    /// One MC×KC block of op(A), starting at row `ic` and depth `pc`, against the packed
    /// KC×NC block of B at `pb`; `pa` has room for an MC×KC packed block.
    @inline(__always)
    static func blockOfA(_ kern: GemmKernel, transA: Bool, a: UnsafePointer<Float>, lda: Int, ic: Int, pc: Int,
                         m: Int, n: Int, k: Int, pa: UnsafeMutablePointer<Float>, pb: UnsafeMutablePointer<Float>,
                         c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        let src = transA ? a + pc * lda + ic : a + ic * lda + pc
        #if arch(x86_64)
        if kern == .avx512 {
            if packsAForAVX512(transA: transA, n: n, lda: lda) {
                packA(kern, transposed: transA, src, lda: lda, m: m, k: k, into: pa)
                GemmAVX512.macroKernel(m: m, n: n, k: k, a: pa, lda: 0, layout: .packed, pb: pb, c: c, ldc: ldc,
                                       alpha: alpha, beta: beta, edge: pa)
            } else {
                GemmAVX512.macroKernel(m: m, n: n, k: k, a: src, lda: lda, layout: transA ? .transposed : .rows, pb: pb,
                                       c: c, ldc: ldc, alpha: alpha, beta: beta, edge: pa)
            }
            return
        }
        #endif
        packA(kern, transposed: transA, src, lda: lda, m: m, k: k, into: pa)
        macroKernel(m: m, n: n, k: k, pa: pa, pb: pb, c: c, ldc: ldc, alpha: alpha, beta: beta)
    }

    @inline(__always)
    static func packA(_ kern: GemmKernel, transposed: Bool, _ a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        if kern == .avx512 {
            if transposed {
                GemmAVX512.packATransposed(a, lda: lda, m: m, k: k, into: dst)
            } else {
                GemmAVX512.packA(a, lda: lda, m: m, k: k, into: dst)
            }
            return
        }
        #endif
        if transposed { packATransposed(a, lda: lda, m: m, k: k, into: dst) } else { packA(a, lda: lda, m: m, k: k, into: dst) }
    }

    @inline(__always)
    static func packB(_ kern: GemmKernel, transposed: Bool, _ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
        #if arch(x86_64)
        if kern == .avx512 {
            if transposed {
                GemmAVX512.packBTransposed(b, ldb: ldb, k: k, n: n, into: dst)
            } else {
                GemmAVX512.packB(b, ldb: ldb, k: k, n: n, into: dst)
            }
            return
        }
        #endif
        if transposed { packBTransposed(b, ldb: ldb, k: k, n: n, into: dst) } else { packB(b, ldb: ldb, k: k, n: n, into: dst) }
    }

    /// One packed MC×KC block of A against one packed KC×NC block of B (AVX2 kernel).
    @inline(never)
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
