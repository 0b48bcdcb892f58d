// A thin-N kernel for C = alpha·Aᵀ·op(B) + beta·C with n ≤ 12 columns (the
// product Xᵀ·dY of a layer with few outputs), compiled with `-march=x86-64-v4`
// like the rest of this module.
//
// The 12×32 micro-kernel vectorizes along the columns of C, so with n = 10 it
// fills 10 of 16 lanes and broadcasts one element of A per multiply-add. This
// kernel vectorizes along the rows of C instead: per step p it loads 32
// consecutive rows of op(A)[:, p] and multiplies them by each of the n elements
// of op(B)[p, :] (broadcast), keeping Cᵀ's 32×n tile in 2·n registers. Every
// lane does useful work; the tile is transposed once when stored. It takes
// op(A) = Aᵀ only (A stored k×m, so the 32 rows are read in place): for A stored
// m×k, transposing row tiles first (even through registers) cost more than the
// kernel saved (measured 128-256×512-784×10: ~40 against ~55-70 GFLOP/s).
//
// Per element of C the operations are those of the 12×32 kernel: one fused
// multiply-add per step p in increasing p from zero, then alpha·acc (+ beta·C),
// so both kernels give the same bits.
#if arch(x86_64)

extension GemmAVX512 {
    /// Largest n the thin kernel takes.
    public static let thinColumns = 12

    /// Rows of C per tile of `thinTransposedA` (two SIMD16 vectors).
    public static let thinTileRows = 32

    /// `C = alpha·Aᵀ·op(B) + beta·C` on the m×n window at `c`, n ≤ `thinColumns`,
    /// row-major operands as in `Gemm.sgemm`: A stored k×m (row p at `a + p*lda`),
    /// op(B) k×n. `packedB` has room for 12·k floats, `panel` for 32·k (a last
    /// partial row tile of Aᵀ, zero-padded). With `beta == 0`, C is never read.
    @inline(never)
    public static func thinTransposedA(transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                       b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                       alpha: Float, beta: Float,
                                       packedB: UnsafeMutablePointer<Float>, panel: UnsafeMutablePointer<Float>) {
        precondition(n >= 1 && n <= thinColumns, "thinTransposedA: n \(n) outside 1...\(thinColumns)")
        let args = ThinArguments(transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                 c: c, ldc: ldc, alpha: alpha, beta: beta, packedB: packedB, panel: panel)
        // Columns rounded up to an even count: six kernels instead of twelve.
        switch n {
        case 1...2: thin(Width2.self, args)
        case 3...4: thin(Width4.self, args)
        case 5...6: thin(Width6.self, args)
        case 7...8: thin(Width8.self, args)
        case 9...10: thin(Width10.self, args)
        default: thin(Width12.self, args)
        }
    }

    struct ThinArguments {
        var transB: Bool
        var m: Int, n: Int, k: Int
        var a: UnsafePointer<Float>, lda: Int
        var b: UnsafePointer<Float>, ldb: Int
        var c: UnsafeMutablePointer<Float>, ldc: Int
        var alpha: Float, beta: Float
        var packedB: UnsafeMutablePointer<Float>
        /// Room for a zero-padded partial row tile of Aᵀ (`thinTransposedA` only).
        var panel: UnsafeMutablePointer<Float>?
    }

    /// A column count known at compile time, so the unused accumulators of a
    /// specialization vanish.
    protocol ThinWidth { static var columns: Int { get } }
    enum Width2: ThinWidth { static var columns: Int { 2 } }
    enum Width4: ThinWidth { static var columns: Int { 4 } }
    enum Width6: ThinWidth { static var columns: Int { 6 } }
    enum Width8: ThinWidth { static var columns: Int { 8 } }
    enum Width10: ThinWidth { static var columns: Int { 10 } }
    enum Width12: ThinWidth { static var columns: Int { 12 } }

    @inline(__always)
    static func thin<W: ThinWidth>(_: W.Type, _ x: ThinArguments) {
        let w = W.columns
        // op(B), k×w: B itself when its rows hold exactly w columns, otherwise packed
        // zero-padded past column n (row p at packedB + p*w).
        let inPlace = !x.transB && x.n == w
        let b = inPlace ? x.b : UnsafePointer(x.packedB)
        let bStep = inPlace ? x.ldb : w
        if !inPlace {
            for p in 0..<x.k {
                let dst = x.packedB + p &* w
                if x.transB {
                    for j in 0..<w { dst[j] = j < x.n ? x.b[j &* x.ldb &+ p] : 0 }
                } else {
                    let src = x.b + p &* x.ldb
                    for j in 0..<w { dst[j] = j < x.n ? src[j] : 0 }
                }
            }
        }
        withUnsafeTemporaryAllocation(of: V.self, capacity: 24) { tile in
            let t = UnsafeRawPointer(tile.baseAddress!).assumingMemoryBound(to: Float.self)
            var i0 = 0
            while i0 < x.m {
                let rows = min(thinTileRows, x.m &- i0)
                if rows == thinTileRows {
                    thinTile(W.self, k: x.k, a: x.a + i0, step: x.lda, b: b, bStep: bStep, tile: tile.baseAddress!)
                } else {
                    let panel = x.panel!
                    for p in 0..<x.k {
                        let src = x.a + (p &* x.lda &+ i0)
                        let dst = panel + p &* thinTileRows
                        for i in 0..<thinTileRows { dst[i] = i < rows ? src[i] : 0 }
                    }
                    thinTile(W.self, k: x.k, a: panel, step: thinTileRows, b: b, bStep: bStep, tile: tile.baseAddress!)
                }
                // Cᵀ tile: column j of C (rows i0..<i0+32) at t + j*32.
                for i in 0..<rows {
                    let row = x.c + ((i0 &+ i) &* x.ldc)
                    if x.beta == 0 {
                        for j in 0..<x.n { row[j] = x.alpha * t[j &* thinTileRows &+ i] }
                    } else {
                        for j in 0..<x.n { row[j] = x.alpha * t[j &* thinTileRows &+ i] + x.beta * row[j] }
                    }
                }
                i0 &+= thinTileRows
            }
        }
    }

    /// Cᵀ (w × 32) = Σ_p B[p, 0..<w]ᵀ ⊗ A[p, 0..<32]: rows of A at `a + p*step`, rows
    /// of B at `b + p*bStep`; column j of the result goes to tile[2j], tile[2j+1].
    @inline(__always)
    static func thinTile<W: ThinWidth>(_: W.Type, k: Int, a: UnsafePointer<Float>, step: Int,
                                       b: UnsafePointer<Float>, bStep: Int, tile: UnsafeMutablePointer<V>) {
        let w = W.columns
        var x0 = V(), y0 = V(), x1 = V(), y1 = V(), x2 = V(), y2 = V(), x3 = V(), y3 = V()
        var x4 = V(), y4 = V(), x5 = V(), y5 = V(), x6 = V(), y6 = V(), x7 = V(), y7 = V()
        var x8 = V(), y8 = V(), x9 = V(), y9 = V(), xa = V(), ya = V(), xb = V(), yb = V()
        var pa = UnsafeRawPointer(a)
        var pb = b
        let stride = step &* MemoryLayout<Float>.stride
        for _ in 0..<k {
            let a0 = pa.loadUnaligned(as: V.self)
            let a1 = pa.loadUnaligned(fromByteOffset: 64, as: V.self)
            var s = V(repeating: pb[0])
            x0 = x0.addingProduct(a0, s); y0 = y0.addingProduct(a1, s)
            s = V(repeating: pb[1])
            x1 = x1.addingProduct(a0, s); y1 = y1.addingProduct(a1, s)
            if w > 2 {
                s = V(repeating: pb[2])
                x2 = x2.addingProduct(a0, s); y2 = y2.addingProduct(a1, s)
                s = V(repeating: pb[3])
                x3 = x3.addingProduct(a0, s); y3 = y3.addingProduct(a1, s)
            }
            if w > 4 {
                s = V(repeating: pb[4])
                x4 = x4.addingProduct(a0, s); y4 = y4.addingProduct(a1, s)
                s = V(repeating: pb[5])
                x5 = x5.addingProduct(a0, s); y5 = y5.addingProduct(a1, s)
            }
            if w > 6 {
                s = V(repeating: pb[6])
                x6 = x6.addingProduct(a0, s); y6 = y6.addingProduct(a1, s)
                s = V(repeating: pb[7])
                x7 = x7.addingProduct(a0, s); y7 = y7.addingProduct(a1, s)
            }
            if w > 8 {
                s = V(repeating: pb[8])
                x8 = x8.addingProduct(a0, s); y8 = y8.addingProduct(a1, s)
                s = V(repeating: pb[9])
                x9 = x9.addingProduct(a0, s); y9 = y9.addingProduct(a1, s)
            }
            if w > 10 {
                s = V(repeating: pb[10])
                xa = xa.addingProduct(a0, s); ya = ya.addingProduct(a1, s)
                s = V(repeating: pb[11])
                xb = xb.addingProduct(a0, s); yb = yb.addingProduct(a1, s)
            }
            pa += stride
            pb += bStep
        }
        tile[0] = x0; tile[1] = y0; tile[2] = x1; tile[3] = y1
        if w > 2 { tile[4] = x2; tile[5] = y2; tile[6] = x3; tile[7] = y3 }
        if w > 4 { tile[8] = x4; tile[9] = y4; tile[10] = x5; tile[11] = y5 }
        if w > 6 { tile[12] = x6; tile[13] = y6; tile[14] = x7; tile[15] = y7 }
        if w > 8 { tile[16] = x8; tile[17] = y8; tile[18] = x9; tile[19] = y9 }
        if w > 10 { tile[20] = xa; tile[21] = ya; tile[22] = xb; tile[23] = yb }
    }
}

#endif
