import Foundation

/// Elementwise transcendental kernels on SIMD8<Float>, with libm references.
///
/// `exp` is Cody-Waite range reduction (x = n·ln2 + r, |r| ≤ ln2/2, ln2 split in
/// two parts so n·ln2_hi is exact), the Cephes degree-6 polynomial for e^r, and
/// 2^n assembled from exponent bits in two halves so that every n in
/// [-150, 128] (all normal and subnormal results) scales without overflow.
/// Rounding uses the 1.5·2^23 magic constant and clamping uses
/// `replacing(with:where:)`: `clamped`, `pointwiseMin/Max` and
/// `SIMD8<Int32>(x, rounding:)` compile to out-of-line calls.
///
/// A tail shorter than 8 runs through the same vector code on a padded copy,
/// so an element's result never depends on its position or the count.
public enum VectorMath {
    /// Max relative error of `exp` for results in the normal range, x ∈ [-87.3, 88.72]
    /// (measured 1.18e-7 over 4M points; subnormal results are within 2 ulp of the
    /// smallest subnormal in absolute terms).
    public static let expMaxRelativeError: Float = 1.5e-7
    /// Max relative error of `sigmoid` for x ∈ [-87, 88] (results ≥ FLT_MIN; measured 1.9e-7).
    public static let sigmoidMaxRelativeError: Float = 2.5e-7
    /// Max absolute error of `sigmoid` over all x (measured 8.9e-8).
    public static let sigmoidMaxAbsoluteError: Float = 1.0e-7
    /// Max relative error of `tanh` over all finite x (odd polynomial below |x| = 0.625; measured 1.45e-7).
    public static let tanhMaxRelativeError: Float = 2.0e-7
    /// Max absolute error of `tanh` over all x (measured 8.1e-8).
    public static let tanhMaxAbsoluteError: Float = 1.0e-7

    /// y[i] = e^x[i]. Overflows to +inf above 88.7228, underflows to 0 below -103.97; NaN stays NaN.
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        map(x, y, count) { exp8($0) }
    }

    /// y[i] = 1 / (1 + e^-x[i]); finite for all inputs, exactly 0 or 1 far out.
    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        map(x, y, count) { sigmoid8($0) }
    }

    /// y[i] = tanh(x[i]); exactly ±1 for |x| ≥ 9.1.
    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        map(x, y, count) { tanh8($0) }
    }

    /// libm reference for `exp`.
    public static func expNaive(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Foundation.exp(x[i]) }
    }

    /// libm reference for `sigmoid` (double precision inside).
    public static func sigmoidNaive(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Float(1 / (1 + Foundation.exp(-Double(x[i])))) }
    }

    /// libm reference for `tanh`.
    public static func tanhNaive(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { y[i] = Foundation.tanh(x[i]) }
    }

    // MARK: - SIMD8 kernels

    @inline(__always)
    static func map(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int, _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        let src = UnsafeRawPointer(x)
        let dst = UnsafeMutableRawPointer(y)
        var i = 0
        while i &+ 8 <= count {
            let v = src.loadUnaligned(fromByteOffset: i &* 4, as: SIMD8<Float>.self)
            dst.storeBytes(of: f(v), toByteOffset: i &* 4, as: SIMD8<Float>.self)
            i &+= 8
        }
        if i < count {
            var v = SIMD8<Float>()
            for l in 0..<(count &- i) { v[l] = x[i &+ l] }
            let r = f(v)
            for l in 0..<(count &- i) { y[i &+ l] = r[l] }
        }
    }

    @inline(__always)
    static func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        let hi: Float = 88.72283
        let lo: Float = -103.97
        // Clamp so the integer part stays in [-150, 128]; out-of-range lanes are replaced at the end.
        var xc = x.replacing(with: hi, where: x .> hi)
        xc = xc.replacing(with: lo, where: xc .< lo)
        let magic = V(repeating: 12_582_912) // 1.5 * 2^23: adding it rounds to an integer
        let shifted = xc * V(repeating: 1.442_695_04) + magic
        let nf = shifted - magic
        // r = x - n*ln2, ln2 = 0.693359375 (exact in 10 bits) - 2.12194440e-4.
        var r = xc.addingProduct(nf, V(repeating: -0.693_359_375))
        r = r.addingProduct(nf, V(repeating: 2.121_944_4e-4))
        var p = V(repeating: 1.398_199_950_7e-3).addingProduct(V(repeating: 1.987_569_150_0e-4), r)
        p = V(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
        p = V(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
        p = V(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
        p = V(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
        let r2 = r * r
        let er = (r + V(repeating: 1)).addingProduct(p, r2)
        // 2^n as 2^n1 · 2^n2 with n1 = n >> 1, n2 = n - n1: both halves are normal numbers.
        let n = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let n1 = n &>> 1
        let n2 = n &- n1
        let s1 = unsafeBitCast((n1 &+ 127) &<< 23, to: V.self)
        let s2 = unsafeBitCast((n2 &+ 127) &<< 23, to: V.self)
        var y = er * s1 * s2
        y = y.replacing(with: .infinity, where: x .> hi)
        y = y.replacing(with: 0, where: x .< lo)
        return y
    }

    @inline(__always)
    static func sigmoid8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        // e^-x overflows to +inf for x < -88.7 and 1/(1+inf) = 0: no NaN, no clamp needed.
        let one = SIMD8<Float>(repeating: 1)
        return one / (one + exp8(-x))
    }

    @inline(__always)
    static func tanh8(_ x: SIMD8<Float>) -> SIMD8<Float> {
        typealias V = SIMD8<Float>
        let signBit = SIMD8<UInt32>(repeating: 0x8000_0000)
        let bits = unsafeBitCast(x, to: SIMD8<UInt32>.self)
        let ax = unsafeBitCast(bits & ~signBit, to: V.self)
        // Large |x|: tanh = 1 - 2/(e^(2|x|) + 1); e^(2|x|) = inf gives exactly 1.
        let e = exp8(ax + ax)
        let one = V(repeating: 1)
        let large = one - V(repeating: 2) / (e + one)
        // Small |x| (< 0.625): Cephes odd polynomial, relative error ~1 ulp near 0.
        let z = x * x
        var p = V(repeating: -5.704_988_727_45e-3)
        p = V(repeating: 2.063_908_879_54e-2).addingProduct(p, z)
        p = V(repeating: -5.373_971_555_31e-2).addingProduct(p, z)
        p = V(repeating: 1.333_144_220_36e-1).addingProduct(p, z)
        p = V(repeating: -3.333_328_194_22e-1).addingProduct(p, z)
        let small = ax.addingProduct(p * z, ax)
        let magnitude = large.replacing(with: small, where: ax .< V(repeating: 0.625))
        // tanh is odd: put x's sign back (also keeps tanh(-0) = -0).
        return unsafeBitCast(unsafeBitCast(magnitude, to: SIMD8<UInt32>.self) | (bits & signBit), to: V.self)
    }
}
