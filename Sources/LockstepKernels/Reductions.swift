/// Sums over flat buffers, SIMD8 with scalar tails, and their naive references.
///
/// The fast versions accumulate in Float across 32 lanes (four SIMD8
/// accumulators), so their rounding differs from the naive Double sums by
/// about `count · ε · mean|x|` at worst; the order is fixed, so results are
/// deterministic for a given count.
public enum Reductions {
    /// Σ x[i].
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        reduce(x, count) { acc, v in acc + v }
    }

    /// Σ x[i]².
    public static func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Float {
        reduce(x, count) { acc, v in acc.addingProduct(v, v) }
    }

    /// Σ x[i]·y[i].
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        typealias V = SIMD8<Float>
        let px = UnsafeRawPointer(x), py = UnsafeRawPointer(y)
        var a0 = V(), a1 = V(), a2 = V(), a3 = V()
        var i = 0
        while i &+ 32 <= count {
            let o = i &* 4
            a0 = a0.addingProduct(px.loadUnaligned(fromByteOffset: o, as: V.self), py.loadUnaligned(fromByteOffset: o, as: V.self))
            a1 = a1.addingProduct(px.loadUnaligned(fromByteOffset: o &+ 32, as: V.self), py.loadUnaligned(fromByteOffset: o &+ 32, as: V.self))
            a2 = a2.addingProduct(px.loadUnaligned(fromByteOffset: o &+ 64, as: V.self), py.loadUnaligned(fromByteOffset: o &+ 64, as: V.self))
            a3 = a3.addingProduct(px.loadUnaligned(fromByteOffset: o &+ 96, as: V.self), py.loadUnaligned(fromByteOffset: o &+ 96, as: V.self))
            i &+= 32
        }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while i < count { s = s.addingProduct(x[i], y[i]); i &+= 1 }
        return s
    }

    /// out[j] = Σ_i x[i·cols + j] for a row-major rows×cols matrix; overwrites `out`.
    /// (The bias gradient: column sums of dY.)
    public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        let src = UnsafeRawPointer(x)
        let dst = UnsafeMutableRawPointer(out)
        let rowBytes = cols &* 4
        var j = 0
        // 32 columns at a time in registers, walking down the rows.
        while j &+ 32 <= cols {
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var p = src + j &* 4
            for _ in 0..<rows {
                a0 += p.loadUnaligned(as: V.self)
                a1 += p.loadUnaligned(fromByteOffset: 32, as: V.self)
                a2 += p.loadUnaligned(fromByteOffset: 64, as: V.self)
                a3 += p.loadUnaligned(fromByteOffset: 96, as: V.self)
                p += rowBytes
            }
            let o = j &* 4
            dst.storeBytes(of: a0, toByteOffset: o, as: V.self)
            dst.storeBytes(of: a1, toByteOffset: o &+ 32, as: V.self)
            dst.storeBytes(of: a2, toByteOffset: o &+ 64, as: V.self)
            dst.storeBytes(of: a3, toByteOffset: o &+ 96, as: V.self)
            j &+= 32
        }
        while j &+ 8 <= cols {
            var a = V()
            var p = src + j &* 4
            for _ in 0..<rows { a += p.loadUnaligned(as: V.self); p += rowBytes }
            dst.storeBytes(of: a, toByteOffset: j &* 4, as: V.self)
            j &+= 8
        }
        while j < cols {
            var s: Float = 0
            var p = x + j
            for _ in 0..<rows { s += p.pointee; p += cols }
            out[j] = s
            j &+= 1
        }
    }

    /// Reference: Σ x[i] in Double.
    public static func sumNaive(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var s = 0.0
        for i in 0..<count { s += Double(x[i]) }
        return Float(s)
    }

    /// Reference: Σ x[i]² in Double.
    public static func sumOfSquaresNaive(_ x: UnsafePointer<Float>, count: Int) -> Float {
        var s = 0.0
        for i in 0..<count { s += Double(x[i]) * Double(x[i]) }
        return Float(s)
    }

    /// Reference: Σ x[i]·y[i] in Double.
    public static func dotNaive(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var s = 0.0
        for i in 0..<count { s += Double(x[i]) * Double(y[i]) }
        return Float(s)
    }

    /// Reference: column sums in Double.
    public static func columnSumsNaive(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        for j in 0..<cols {
            var s = 0.0
            for i in 0..<rows { s += Double(x[i * cols + j]) }
            out[j] = Float(s)
        }
    }

    @inline(__always)
    private static func reduce(_ x: UnsafePointer<Float>, _ count: Int, _ step: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) -> Float {
        typealias V = SIMD8<Float>
        let p = UnsafeRawPointer(x)
        var a0 = V(), a1 = V(), a2 = V(), a3 = V()
        var i = 0
        while i &+ 32 <= count {
            let o = i &* 4
            a0 = step(a0, p.loadUnaligned(fromByteOffset: o, as: V.self))
            a1 = step(a1, p.loadUnaligned(fromByteOffset: o &+ 32, as: V.self))
            a2 = step(a2, p.loadUnaligned(fromByteOffset: o &+ 64, as: V.self))
            a3 = step(a3, p.loadUnaligned(fromByteOffset: o &+ 96, as: V.self))
            i &+= 32
        }
        while i &+ 8 <= count {
            a0 = step(a0, p.loadUnaligned(fromByteOffset: i &* 4, as: V.self))
            i &+= 8
        }
        // Last < 8 through the same step on a zero-padded vector (zero is neutral for both sums).
        if i < count {
            var v = V()
            for l in 0..<(count &- i) { v[l] = x[i &+ l] }
            a0 = step(a0, v)
        }
        return ((a0 + a1) + (a2 + a3)).sum()
    }
}
