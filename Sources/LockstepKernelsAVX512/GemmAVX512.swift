// AVX-512 SGEMM building blocks for `Gemm.sgemm` (LockstepKernels), compiled with
// `-march=x86-64-v4`. Only call these after checking the CPU has AVX-512 F/BW/CD/DQ/VL:
// the compiler may use any of them anywhere in this module.
//
// Packed A: per 12-row micro-panel, k-major: panel[p*12 + i] = op(A)[i, p] (zero-padded rows).
// Packed B: per 32-column micro-panel, k-major: panel[p*32 + j] = op(B)[p, j]; a last panel
// of at most 16 columns is packed 16 wide (panel[p*16 + j]) and runs a 12×16 kernel.
// Panel `q` of a KC-deep block always starts at `q * 32 * kc`.
//
// Entry points are non-generic, `@inline(never)`, raw-pointer functions: they are called
// from another module once per packed block, and the micro-kernels inline into them.
#if arch(x86_64)

public enum GemmAVX512 {
    /// Micro-tile rows (broadcast from packed A).
    public static let mr = 12
    /// Micro-tile columns (two SIMD16 vectors from packed B).
    public static let nr = 32

    typealias V = SIMD16<Float>

    /// Where the micro-kernel finds op(A)[i, p] for i in 0..<12 at the current step p.
    protocol APanel {
        subscript(i: Int) -> Float { get }
        mutating func advance()
    }

    /// Element i at `p[i]`, next step `step` floats on: packed panels (step 12), Aᵀ in place (step lda).
    struct StridedPanel: APanel {
        var p: UnsafePointer<Float>
        let step: Int
        @inline(__always) subscript(i: Int) -> Float { p[i] }
        @inline(__always) mutating func advance() { p += step }
    }

    /// Element i at `p[i*lda]`, next step one float on: A in place. Rows are reached from
    /// four base pointers (rows 0, 3, 6, 9) plus 0, 1 or 2 row strides, which leaves the
    /// compiler fewer address computations per k-step than `p[i*lda]` did (llvm-mca,
    /// Sapphire Rapids model, on the 12×32 loop: 13.1 cycles per step instead of 13.8;
    /// the FMA bound is 12). Same loads, same bits.
    struct RowPanel: APanel {
        var q0: UnsafeRawPointer, q3: UnsafeRawPointer, q6: UnsafeRawPointer, q9: UnsafeRawPointer
        /// Bytes between rows.
        let stride: Int
        init(p: UnsafePointer<Float>, lda: Int) {
            stride = lda &* 4
            q0 = UnsafeRawPointer(p)
            q3 = q0 + 3 &* stride
            q6 = q0 + 6 &* stride
            q9 = q0 + 9 &* stride
        }
        @inline(__always) subscript(i: Int) -> Float {
            let base = i < 3 ? q0 : i < 6 ? q3 : i < 9 ? q6 : q9
            return base.load(fromByteOffset: (i % 3) &* stride, as: Float.self)
        }
        @inline(__always) mutating func advance() { q0 += 4; q3 += 4; q6 += 4; q9 += 4 }
    }

    /// How `macroKernel` reads the MC×KC block of op(A).
    public enum ALayout: Sendable {
        /// Packed by `packA`/`packATransposed` (12-row micro-panels, k-major).
        case packed
        /// op(A) = A read in place: row i at `a + i*lda`, contiguous in k.
        case rows
        /// op(A) = Aᵀ read in place: k-step p at `a + p*lda`, contiguous in i.
        case transposed
    }

    /// One MC×KC block of op(A) (`m` rows) against one packed KC×NC block of B (`n` columns):
    /// `C = alpha * op(A)·B + beta * C` on the m×n window at `c`. With `.rows`/`.transposed`
    /// the block is read in place at `a` (leading dimension `lda`), except a last partial
    /// micro-panel, which is packed zero-padded into `edge` (room for 12·k floats).
    @inline(never)
    public static func macroKernel(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, layout: ALayout,
                                   pb: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int,
                                   alpha: Float, beta: Float, edge: UnsafeMutablePointer<Float>) {
        let fullRows = m / mr &* mr
        if fullRows < m {
            switch layout {
            case .packed: break
            case .rows: packA(a + fullRows &* lda, lda: lda, m: m &- fullRows, k: k, into: edge)
            case .transposed: packATransposed(a + fullRows, lda: lda, m: m &- fullRows, k: k, into: edge)
            }
        }
        var jr = 0
        while jr < n {
            let cols = min(nr, n &- jr)
            let bPanel = pb + jr &* k
            let cPanel = c + jr
            var ir = 0
            while ir < m {
                let rows = min(mr, m &- ir)
                let cTile = cPanel + ir &* ldc
                if layout == .packed || rows < mr {
                    let ap = StridedPanel(p: layout == .packed ? a + ir &* k : UnsafePointer(edge), step: mr)
                    tile(ap, k: k, b: bPanel, c: cTile, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
                } else if layout == .rows {
                    tile(RowPanel(p: a + ir &* lda, lda: lda), k: k, b: bPanel, c: cTile, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
                } else {
                    tile(StridedPanel(p: a + ir, step: lda), k: k, b: bPanel, c: cTile, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
                }
                ir &+= mr
            }
            jr &+= nr
        }
    }

    /// `C = alpha·Σ_s A_s·B_s + beta·C` on the m×n window at `c`, for `parts` pairs of a
    /// packed MC×k_s block of A (`pas[s]`) and a packed k_s×NC block of B (`pbs[s]`):
    /// each tile stores alpha·A_0·B_0 + beta·C, then adds alpha·A_s·B_s of each next pair
    /// (beta 1) while the tile is still in L1. Per element these are the operations of
    /// one `macroKernel` call per pair, in pair order.
    @inline(never)
    public static func macroKernelSum(m: Int, n: Int, parts: Int, ks: UnsafePointer<Int>,
                                      pas: UnsafePointer<UnsafePointer<Float>>, pbs: UnsafePointer<UnsafePointer<Float>>,
                                      c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float) {
        var jr = 0
        while jr < n {
            let cols = min(nr, n &- jr)
            var ir = 0
            while ir < m {
                let rows = min(mr, m &- ir)
                let cTile = c + (ir &* ldc &+ jr)
                for s in 0..<parts {
                    let k = ks[s]
                    tile(StridedPanel(p: pas[s] + ir &* k, step: mr), k: k, b: pbs[s] + jr &* k, c: cTile, ldc: ldc,
                         alpha: alpha, beta: s == 0 ? beta : 1, rows: rows, cols: cols)
                }
                ir &+= mr
            }
            jr &+= nr
        }
    }

    @inline(__always)
    static func tile<A: APanel>(_ a: A, k: Int, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                                ldc: Int, alpha: Float, beta: Float, rows: Int, cols: Int) {
        if cols > 16 {
            kernel12x32(a, k: k, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
        } else {
            kernel12x16(a, k: k, b: b, c: c, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
        }
    }

    @inline(__always)
    static func kernel12x32<A: APanel>(_ a: A, k: Int, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                                       ldc: Int, alpha: Float, beta: Float, rows: Int, cols: Int) {
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        var c60 = V(), c61 = V(), c70 = V(), c71 = V(), c80 = V(), c81 = V()
        var c90 = V(), c91 = V(), ca0 = V(), ca1 = V(), cb0 = V(), cb1 = V()
        var pa = a
        var pb = UnsafeRawPointer(b)
        for _ in 0..<k {
            let b0 = pb.load(as: V.self)
            let b1 = pb.load(fromByteOffset: 64, as: V.self)
            var av = V(repeating: pa[0])
            c00 = c00.addingProduct(av, b0); c01 = c01.addingProduct(av, b1)
            av = V(repeating: pa[1])
            c10 = c10.addingProduct(av, b0); c11 = c11.addingProduct(av, b1)
            av = V(repeating: pa[2])
            c20 = c20.addingProduct(av, b0); c21 = c21.addingProduct(av, b1)
            av = V(repeating: pa[3])
            c30 = c30.addingProduct(av, b0); c31 = c31.addingProduct(av, b1)
            av = V(repeating: pa[4])
            c40 = c40.addingProduct(av, b0); c41 = c41.addingProduct(av, b1)
            av = V(repeating: pa[5])
            c50 = c50.addingProduct(av, b0); c51 = c51.addingProduct(av, b1)
            av = V(repeating: pa[6])
            c60 = c60.addingProduct(av, b0); c61 = c61.addingProduct(av, b1)
            av = V(repeating: pa[7])
            c70 = c70.addingProduct(av, b0); c71 = c71.addingProduct(av, b1)
            av = V(repeating: pa[8])
            c80 = c80.addingProduct(av, b0); c81 = c81.addingProduct(av, b1)
            av = V(repeating: pa[9])
            c90 = c90.addingProduct(av, b0); c91 = c91.addingProduct(av, b1)
            av = V(repeating: pa[10])
            ca0 = ca0.addingProduct(av, b0); ca1 = ca1.addingProduct(av, b1)
            av = V(repeating: pa[11])
            cb0 = cb0.addingProduct(av, b0); cb1 = cb1.addingProduct(av, b1)
            pa.advance()
            pb += 128
        }
        if rows == 12 && cols == 32 {
            storeRow(c, c00, c01, alpha: alpha, beta: beta)
            storeRow(c + ldc, c10, c11, alpha: alpha, beta: beta)
            storeRow(c + 2 &* ldc, c20, c21, alpha: alpha, beta: beta)
            storeRow(c + 3 &* ldc, c30, c31, alpha: alpha, beta: beta)
            storeRow(c + 4 &* ldc, c40, c41, alpha: alpha, beta: beta)
            storeRow(c + 5 &* ldc, c50, c51, alpha: alpha, beta: beta)
            storeRow(c + 6 &* ldc, c60, c61, alpha: alpha, beta: beta)
            storeRow(c + 7 &* ldc, c70, c71, alpha: alpha, beta: beta)
            storeRow(c + 8 &* ldc, c80, c81, alpha: alpha, beta: beta)
            storeRow(c + 9 &* ldc, c90, c91, alpha: alpha, beta: beta)
            storeRow(c + 10 &* ldc, ca0, ca1, alpha: alpha, beta: beta)
            storeRow(c + 11 &* ldc, cb0, cb1, alpha: alpha, beta: beta)
            return
        }
        // Edge tile: spill and store the valid part with the same arithmetic as
        // `storeRow`, so edge and interior results agree bitwise.
        withUnsafeTemporaryAllocation(of: V.self, capacity: 24) { tile in
            tile[0] = c00; tile[1] = c01; tile[2] = c10; tile[3] = c11
            tile[4] = c20; tile[5] = c21; tile[6] = c30; tile[7] = c31
            tile[8] = c40; tile[9] = c41; tile[10] = c50; tile[11] = c51
            tile[12] = c60; tile[13] = c61; tile[14] = c70; tile[15] = c71
            tile[16] = c80; tile[17] = c81; tile[18] = c90; tile[19] = c91
            tile[20] = ca0; tile[21] = ca1; tile[22] = cb0; tile[23] = cb1
            storeEdge(UnsafeRawPointer(tile.baseAddress!).assumingMemoryBound(to: Float.self), width: 32,
                      c: c, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
        }
    }

    /// 12×16 tile for a last B panel of at most 16 columns (packed 16 wide).
    @inline(__always)
    static func kernel12x16<A: APanel>(_ a: A, k: Int, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                                       ldc: Int, alpha: Float, beta: Float, rows: Int, cols: Int) {
        var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V()
        var c6 = V(), c7 = V(), c8 = V(), c9 = V(), ca = V(), cb = V()
        var pa = a
        var pb = UnsafeRawPointer(b)
        for _ in 0..<k {
            let b0 = pb.load(as: V.self)
            c0 = c0.addingProduct(V(repeating: pa[0]), b0)
            c1 = c1.addingProduct(V(repeating: pa[1]), b0)
            c2 = c2.addingProduct(V(repeating: pa[2]), b0)
            c3 = c3.addingProduct(V(repeating: pa[3]), b0)
            c4 = c4.addingProduct(V(repeating: pa[4]), b0)
            c5 = c5.addingProduct(V(repeating: pa[5]), b0)
            c6 = c6.addingProduct(V(repeating: pa[6]), b0)
            c7 = c7.addingProduct(V(repeating: pa[7]), b0)
            c8 = c8.addingProduct(V(repeating: pa[8]), b0)
            c9 = c9.addingProduct(V(repeating: pa[9]), b0)
            ca = ca.addingProduct(V(repeating: pa[10]), b0)
            cb = cb.addingProduct(V(repeating: pa[11]), b0)
            pa.advance()
            pb += 64
        }
        withUnsafeTemporaryAllocation(of: V.self, capacity: 12) { tile in
            tile[0] = c0; tile[1] = c1; tile[2] = c2; tile[3] = c3; tile[4] = c4; tile[5] = c5
            tile[6] = c6; tile[7] = c7; tile[8] = c8; tile[9] = c9; tile[10] = ca; tile[11] = cb
            storeEdge(UnsafeRawPointer(tile.baseAddress!).assumingMemoryBound(to: Float.self), width: 16,
                      c: c, ldc: ldc, alpha: alpha, beta: beta, rows: rows, cols: cols)
        }
    }

    @inline(__always)
    static func storeRow(_ p: UnsafeMutablePointer<Float>, _ lo: V, _ hi: V, alpha: Float, beta: Float) {
        let raw = UnsafeMutableRawPointer(p)
        if beta == 0 {
            raw.storeBytes(of: lo * alpha, as: V.self)
            raw.storeBytes(of: hi * alpha, toByteOffset: 64, as: V.self)
        } else {
            let old0 = UnsafeRawPointer(raw).loadUnaligned(as: V.self)
            let old1 = UnsafeRawPointer(raw).loadUnaligned(fromByteOffset: 64, as: V.self)
            raw.storeBytes(of: lo * alpha + old0 * beta, as: V.self)
            raw.storeBytes(of: hi * alpha + old1 * beta, toByteOffset: 64, as: V.self)
        }
    }

    /// Stores `rows`×`cols` of a spilled tile (row stride `width` floats).
    @inline(__always)
    static func storeEdge(_ t: UnsafePointer<Float>, width: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                          alpha: Float, beta: Float, rows: Int, cols: Int) {
        for i in 0..<rows {
            let row = c + i &* ldc
            let src = t + i &* width
            if beta == 0 {
                for j in 0..<cols { row[j] = alpha * src[j] }
            } else {
                for j in 0..<cols { row[j] = alpha * src[j] + beta * row[j] }
            }
        }
    }

    /// Packs op(A) = A (row-major, m×k block at `a`) into 12-row micro-panels.
    @inline(never)
    public static func packA(_ a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = dst
        var i = 0
        while i + mr <= m {
            let r0 = a + i &* lda, r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda
            let r6 = r5 + lda, r7 = r6 + lda, r8 = r7 + lda, r9 = r8 + lda, ra = r9 + lda, rb = ra + lda
            for p in 0..<k {
                out[0] = r0[p]; out[1] = r1[p]; out[2] = r2[p]; out[3] = r3[p]
                out[4] = r4[p]; out[5] = r5[p]; out[6] = r6[p]; out[7] = r7[p]
                out[8] = r8[p]; out[9] = r9[p]; out[10] = ra[p]; out[11] = rb[p]
                out += 12
            }
            i &+= mr
        }
        if i < m {
            let rows = m &- i
            for p in 0..<k {
                for r in 0..<mr { out[r] = r < rows ? a[(i &+ r) &* lda &+ p] : 0 }
                out += 12
            }
        }
    }

    /// Packs op(A) = Aᵀ, where A is stored k×m row-major at `a`, into 12-row micro-panels.
    @inline(never)
    public static func packATransposed(_ a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = dst
        var i = 0
        while i < m {
            let rows = min(mr, m &- i)
            var src = a + i
            if rows == mr {
                for _ in 0..<k {
                    // 8 + 4 floats: both halves are plain moves.
                    UnsafeMutableRawPointer(out).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                    UnsafeMutableRawPointer(out).storeBytes(of: UnsafeRawPointer(src).loadUnaligned(fromByteOffset: 32, as: SIMD4<Float>.self), toByteOffset: 32, as: SIMD4<Float>.self)
                    out += 12
                    src += lda
                }
            } else {
                for _ in 0..<k {
                    for r in 0..<mr { out[r] = r < rows ? src[r] : 0 }
                    out += 12
                    src += lda
                }
            }
            i &+= mr
        }
    }

    /// Packs op(B) = B (row-major, k×n block at `b`) into 32-column micro-panels
    /// (a last panel of ≤ 16 columns 16 wide).
    @inline(never)
    public static func packB(_ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = UnsafeMutableRawPointer(dst)
        var j = 0
        while j < n {
            let cols = min(nr, n &- j)
            var src = b + j
            if cols == nr {
                for _ in 0..<k {
                    let raw = UnsafeRawPointer(src)
                    out.storeBytes(of: raw.loadUnaligned(as: V.self), as: V.self)
                    out.storeBytes(of: raw.loadUnaligned(fromByteOffset: 64, as: V.self), toByteOffset: 64, as: V.self)
                    out += 128
                    src += ldb
                }
            } else {
                let width = cols <= 16 ? 16 : 32
                for _ in 0..<k {
                    let o = out.assumingMemoryBound(to: Float.self)
                    for c in 0..<width { o[c] = c < cols ? src[c] : 0 }
                    out += width &* 4
                    src += ldb
                }
            }
            j &+= nr
        }
    }

    /// Packs op(B) = Bᵀ, where B is stored n×k row-major at `b`, into 32-column micro-panels
    /// (a last panel of ≤ 16 columns 16 wide). Full 16×16 blocks go through registers
    /// (`transpose16`); the rest is copied element by element.
    @inline(never)
    public static func packBTransposed(_ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = dst
        var j = 0
        let k16 = k & ~15
        withUnsafeTemporaryAllocation(of: V.self, capacity: 16) { tmp in
            let t = tmp.baseAddress!
            while j < n {
                let cols = min(nr, n &- j)
                let width = cols <= 16 ? 16 : 32
                // 16-column halves of the panel that are complete.
                var c0 = 0
                while c0 &+ 16 <= cols {
                    var p = 0
                    while p < k16 {
                        let src = b + ((j &+ c0) &* ldb &+ p)
                        for r in 0..<16 { t[r] = UnsafeRawPointer(src + r &* ldb).loadUnaligned(as: V.self) }
                        transpose16(t)
                        let o = out + (p &* width &+ c0)
                        for q in 0..<16 { UnsafeMutableRawPointer(o + q &* width).storeBytes(of: t[q], as: V.self) }
                        p &+= 16
                    }
                    c0 &+= 16
                }
                // Remaining depth of the complete halves, and the incomplete half (zero-padded).
                for c in 0..<width {
                    var o = out + c
                    let pStart = c < c0 ? k16 : 0
                    o += pStart &* width
                    if c < cols {
                        let s = b + (j &+ c) &* ldb
                        var p = pStart
                        while p < k { o[0] = s[p]; o += width; p &+= 1 }
                    } else {
                        var p = pStart
                        while p < k { o[0] = 0; o += width; p &+= 1 }
                    }
                }
                out += k &* width
                j &+= nr
            }
        }
    }

    /// In-place transpose of the 16×16 tile t[0..<16] (t[r][c] becomes t[c][r]): four rounds
    /// of pairing row i with row i+8 by perfect shuffle, each rotating the 8-bit (row, lane) index.
    @inline(__always)
    static func transpose16(_ t: UnsafeMutablePointer<V>) {
        for _ in 0..<4 {
            let x0 = t[0], x1 = t[1], x2 = t[2], x3 = t[3], x4 = t[4], x5 = t[5], x6 = t[6], x7 = t[7], x8 = t[8], x9 = t[9], x10 = t[10], x11 = t[11], x12 = t[12], x13 = t[13], x14 = t[14], x15 = t[15]
            t[0] = zipLo(x0, x8); t[1] = zipHi(x0, x8)
            t[2] = zipLo(x1, x9); t[3] = zipHi(x1, x9)
            t[4] = zipLo(x2, x10); t[5] = zipHi(x2, x10)
            t[6] = zipLo(x3, x11); t[7] = zipHi(x3, x11)
            t[8] = zipLo(x4, x12); t[9] = zipHi(x4, x12)
            t[10] = zipLo(x5, x13); t[11] = zipHi(x5, x13)
            t[12] = zipLo(x6, x14); t[13] = zipHi(x6, x14)
            t[14] = zipLo(x7, x15); t[15] = zipHi(x7, x15)
        }
    }

    @inline(__always)
    static func zipLo(_ x: V, _ y: V) -> V {
        V(x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3], x[4], y[4], x[5], y[5], x[6], y[6], x[7], y[7])
    }

    @inline(__always)
    static func zipHi(_ x: V, _ y: V) -> V {
        V(x[8], y[8], x[9], y[9], x[10], y[10], x[11], y[11], x[12], y[12], x[13], y[13], x[14], y[14], x[15], y[15])
    }
}

#endif
