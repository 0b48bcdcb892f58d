/// Matrix transposes, in 8×8 SIMD blocks, with their naive references.
public enum Transpose {
    typealias V = SIMD8<Float>

    /// `y[c, r] = t[r, c] + bias[r]` for the `rows × cols` matrix at `t` (row stride
    /// `ldt`); `y` is `cols × rows`, dense. One addition per element, so the result is
    /// bitwise `addingRowBiasReference`'s.
    public static func addingRowBias(_ t: UnsafePointer<Float>, rows: Int, cols: Int, ldt: Int, bias: UnsafePointer<Float>,
                                     into y: UnsafeMutablePointer<Float>) {
        let fullRows = rows & ~7, fullCols = cols & ~7
        let tile = UnsafeMutablePointer<V>.allocate(capacity: 8)
        defer { tile.deallocate() }
        var c0 = 0
        while c0 < fullCols {
            var r0 = 0
            while r0 < fullRows {
                for i in 0..<8 {
                    let src = UnsafeRawPointer(t + ((r0 &+ i) &* ldt &+ c0))
                    tile[i] = src.loadUnaligned(as: V.self) + V(repeating: bias[r0 &+ i])
                }
                transpose8(tile)
                for j in 0..<8 {
                    UnsafeMutableRawPointer(y + ((c0 &+ j) &* rows &+ r0)).storeBytes(of: tile[j], as: V.self)
                }
                r0 &+= 8
            }
            c0 &+= 8
        }
        // Edges: the last rows % 8 rows of t, then the last cols % 8 columns.
        for r in fullRows..<rows {
            let b = bias[r]
            for c in 0..<fullCols { y[c &* rows &+ r] = t[r &* ldt &+ c] + b }
        }
        for c in fullCols..<cols {
            for r in 0..<rows { y[c &* rows &+ r] = t[r &* ldt &+ c] + bias[r] }
        }
    }

    /// Naive reference for `addingRowBias`.
    public static func addingRowBiasReference(_ t: UnsafePointer<Float>, rows: Int, cols: Int, ldt: Int, bias: UnsafePointer<Float>,
                                              into y: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            for c in 0..<cols { y[c * rows + r] = t[r * ldt + c] + bias[r] }
        }
    }

    /// In-place transpose of the 8×8 tile t[0..<8]: three rounds of pairing row i
    /// with row i+4 by perfect shuffle, each rotating the 6-bit (row, lane) index.
    @inline(__always)
    static func transpose8(_ t: UnsafeMutablePointer<V>) {
        for _ in 0..<3 {
            let x0 = t[0], x1 = t[1], x2 = t[2], x3 = t[3], x4 = t[4], x5 = t[5], x6 = t[6], x7 = t[7]
            t[0] = zipLo(x0, x4); t[1] = zipHi(x0, x4)
            t[2] = zipLo(x1, x5); t[3] = zipHi(x1, x5)
            t[4] = zipLo(x2, x6); t[5] = zipHi(x2, x6)
            t[6] = zipLo(x3, x7); t[7] = zipHi(x3, x7)
        }
    }

    @inline(__always)
    static func zipLo(_ x: V, _ y: V) -> V { V(x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3]) }

    @inline(__always)
    static func zipHi(_ x: V, _ y: V) -> V { V(x[4], y[4], x[5], y[5], x[6], y[6], x[7], y[7]) }
}
