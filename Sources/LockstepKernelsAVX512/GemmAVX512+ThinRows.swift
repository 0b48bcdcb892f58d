// The thin-N kernel for C = alpha·A·op(B) + beta·C with A stored m×k (rows read in
// place) and n ≤ 10 columns, compiled with `-march=x86-64-v4` like the rest of this
// module.
//
// With A's rows contiguous in k, neither the 12×32 tile (one broadcast of A per
// multiply-add, ≤ 12 of 16 lanes used) nor `thinTransposedA` (which needs A's
// columns contiguous; transposing A first costs as much as the product) fits. Here
// each element of C is a dot product over k: two rows of A at a time are loaded 16
// floats per step and multiplied by the same 16 floats of each of the n columns of
// op(B) (packed once, transposed and zero-padded), so every lane does useful work
// and each row of A is read once per call. The 16 lanes of an accumulator are
// summed at the end by halves (8+8, 4+4, 2+2, 1+1).
//
// The summation order is fixed by k alone: an element of C depends only on its row
// of A and op(B), not on m, the row split between threads or the thread count. It
// differs from the 12×32 kernel's (one running sum in increasing p), so the two agree
// to rounding, not bitwise; Gemm uses this kernel for every such call.
#if arch(x86_64)

extension GemmAVX512 {
    /// Largest n `thinRows` takes (see `Gemm.thinRowsMaximumColumns`).
    public static let thinRowsColumns = 10

    /// Floats per row of the packed op(B)ᵀ for a depth of `k` (k rounded up to 16).
    public static func thinRowsPackedDepth(_ k: Int) -> Int { (k &+ 15) & ~15 }

    /// `C = alpha·A·op(B) + beta·C` on the m×n window at `c`, n ≤ `thinRowsColumns`, A stored
    /// m×k (row i at `a + i*lda`), op(B) k×n as in `Gemm.sgemm`. `packedB` has room for
    /// `thinRowsColumns`·`thinRowsPackedDepth(k)` floats. With `beta == 0`, C is never read.
    @inline(never)
    public static func thinRows(transB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
                                b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                alpha: Float, beta: Float, packedB: UnsafeMutablePointer<Float>) {
        precondition(n >= 1 && n <= thinRowsColumns, "thinRows: n \(n) outside 1...\(thinRowsColumns)")
        let args = ThinArguments(transB: transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                 c: c, ldc: ldc, alpha: alpha, beta: beta, packedB: packedB, panel: nil)
        switch n {
        case 1...2: rows(Width2.self, args)
        case 3...4: rows(Width4.self, args)
        case 5...6: rows(Width6.self, args)
        case 7...8: rows(Width8.self, args)
        default: rows(Width10.self, args)
        }
    }

    @inline(__always)
    static func rows<W: ThinWidth>(_: W.Type, _ x: ThinArguments) {
        let w = W.columns
        let kp = thinRowsPackedDepth(x.k)
        // op(B)ᵀ, w×kp, zero past column n and past depth k: column j at packedB + j*kp.
        for j in 0..<w {
            let dst = x.packedB + j &* kp
            if j < x.n {
                if x.transB {
                    let src = x.b + j &* x.ldb
                    for p in 0..<x.k { dst[p] = src[p] }
                } else {
                    for p in 0..<x.k { dst[p] = x.b[p &* x.ldb &+ j] }
                }
                for p in x.k..<kp { dst[p] = 0 }
            } else {
                for p in 0..<kp { dst[p] = 0 }
            }
        }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * 12 + 2 * 16) { scratch in
            let sums = scratch.baseAddress!
            let tail = sums + 24
            var i = 0
            while i < x.m {
                let pair = i &+ 1 < x.m
                let r0 = x.a + i &* x.lda
                let r1 = pair ? r0 + x.lda : r0
                dotTile(W.self, k: x.k, kp: kp, r0: r0, r1: r1, bt: x.packedB, tail: tail, sums: sums)
                for r in 0..<(pair ? 2 : 1) {
                    let row = x.c + (i &+ r) &* x.ldc
                    let s = sums + r &* 12
                    if x.beta == 0 {
                        for j in 0..<x.n { row[j] = x.alpha * s[j] }
                    } else {
                        for j in 0..<x.n { row[j] = x.alpha * s[j] + x.beta * row[j] }
                    }
                }
                i &+= 2
            }
        }
    }

    /// sums[r*12 + j] = Σ_p row_r[p]·bt[j*kp + p] for two rows of A (`r0`, `r1`) and the
    /// w packed columns of op(B); `tail` has room for 32 floats (the last partial step
    /// of each row, zero-padded).
    @inline(__always)
    static func dotTile<W: ThinWidth>(_: W.Type, k: Int, kp: Int, r0: UnsafePointer<Float>, r1: UnsafePointer<Float>,
                                      bt: UnsafePointer<Float>, tail: UnsafeMutablePointer<Float>,
                                      sums: UnsafeMutablePointer<Float>) {
        let w = W.columns
        var x0 = V(), y0 = V(), x1 = V(), y1 = V(), x2 = V(), y2 = V(), x3 = V(), y3 = V()
        var x4 = V(), y4 = V(), x5 = V(), y5 = V(), x6 = V(), y6 = V(), x7 = V(), y7 = V()
        var x8 = V(), y8 = V(), x9 = V(), y9 = V()
        precondition(w <= thinRowsColumns)
        let column = kp &* MemoryLayout<Float>.stride
        @inline(__always)
        func step(_ u: V, _ v: V, _ pb: UnsafeRawPointer) {
            var s = pb.load(as: V.self)
            x0 = x0.addingProduct(u, s); y0 = y0.addingProduct(v, s)
            s = pb.load(fromByteOffset: column, as: V.self)
            x1 = x1.addingProduct(u, s); y1 = y1.addingProduct(v, s)
            if w > 2 {
                s = pb.load(fromByteOffset: 2 &* column, as: V.self)
                x2 = x2.addingProduct(u, s); y2 = y2.addingProduct(v, s)
                s = pb.load(fromByteOffset: 3 &* column, as: V.self)
                x3 = x3.addingProduct(u, s); y3 = y3.addingProduct(v, s)
            }
            if w > 4 {
                s = pb.load(fromByteOffset: 4 &* column, as: V.self)
                x4 = x4.addingProduct(u, s); y4 = y4.addingProduct(v, s)
                s = pb.load(fromByteOffset: 5 &* column, as: V.self)
                x5 = x5.addingProduct(u, s); y5 = y5.addingProduct(v, s)
            }
            if w > 6 {
                s = pb.load(fromByteOffset: 6 &* column, as: V.self)
                x6 = x6.addingProduct(u, s); y6 = y6.addingProduct(v, s)
                s = pb.load(fromByteOffset: 7 &* column, as: V.self)
                x7 = x7.addingProduct(u, s); y7 = y7.addingProduct(v, s)
            }
            if w > 8 {
                s = pb.load(fromByteOffset: 8 &* column, as: V.self)
                x8 = x8.addingProduct(u, s); y8 = y8.addingProduct(v, s)
                s = pb.load(fromByteOffset: 9 &* column, as: V.self)
                x9 = x9.addingProduct(u, s); y9 = y9.addingProduct(v, s)
            }
        }
        let full = k & ~15
        var p = 0
        while p < full {
            step(UnsafeRawPointer(r0 + p).loadUnaligned(as: V.self), UnsafeRawPointer(r1 + p).loadUnaligned(as: V.self),
                 UnsafeRawPointer(bt + p))
            p &+= 16
        }
        if p < k {
            for q in 0..<16 {
                tail[q] = p &+ q < k ? r0[p &+ q] : 0
                tail[16 &+ q] = p &+ q < k ? r1[p &+ q] : 0
            }
            step(UnsafeRawPointer(tail).loadUnaligned(as: V.self), UnsafeRawPointer(tail + 16).loadUnaligned(as: V.self),
                 UnsafeRawPointer(bt + p))
        }
        sums[0] = horizontalSum(x0); sums[12] = horizontalSum(y0)
        sums[1] = horizontalSum(x1); sums[13] = horizontalSum(y1)
        if w > 2 { sums[2] = horizontalSum(x2); sums[14] = horizontalSum(y2); sums[3] = horizontalSum(x3); sums[15] = horizontalSum(y3) }
        if w > 4 { sums[4] = horizontalSum(x4); sums[16] = horizontalSum(y4); sums[5] = horizontalSum(x5); sums[17] = horizontalSum(y5) }
        if w > 6 { sums[6] = horizontalSum(x6); sums[18] = horizontalSum(y6); sums[7] = horizontalSum(x7); sums[19] = horizontalSum(y7) }
        if w > 8 { sums[8] = horizontalSum(x8); sums[20] = horizontalSum(y8); sums[9] = horizontalSum(x9); sums[21] = horizontalSum(y9) }
    }

    /// The 16 lanes summed by halves: (lanes 0-7 + 8-15), then 4+4, 2+2, 1+1.
    @inline(__always)
    static func horizontalSum(_ v: V) -> Float {
        let h8 = v.lowHalf + v.highHalf
        let h4 = h8.lowHalf + h8.highHalf
        let h2 = h4.lowHalf + h4.highHalf
        return h2[0] + h2[1]
    }
}

#endif
