/// The one arithmetic kernel of the collectives: `dst[i] += src[i]`.
///
/// `src` is raw because it usually points into a received network frame whose
/// payload need not be 4-byte aligned; loads are unaligned vector loads.
/// Element-wise addition is commutative in IEEE 754, so `a + b` and `b + a`
/// agree bitwise; only the association order across ranks matters, and the
/// algorithms fix it.
@inline(__always)
public func addInPlace(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafeRawPointer, count: Int) {
    typealias V = SIMD8<Float>
    let stride = V.scalarCount
    var i = 0
    let raw = UnsafeMutableRawPointer(dst)
    // Two vectors per iteration keeps both load ports busy.
    while i &+ 2 &* stride <= count {
        let off = i &* 4
        let a0 = raw.loadUnaligned(fromByteOffset: off, as: V.self)
        let a1 = raw.loadUnaligned(fromByteOffset: off &+ 32, as: V.self)
        let b0 = src.loadUnaligned(fromByteOffset: off, as: V.self)
        let b1 = src.loadUnaligned(fromByteOffset: off &+ 32, as: V.self)
        raw.storeBytes(of: a0 + b0, toByteOffset: off, as: V.self)
        raw.storeBytes(of: a1 + b1, toByteOffset: off &+ 32, as: V.self)
        i &+= 2 &* stride
    }
    while i < count {
        dst[i] += src.loadUnaligned(fromByteOffset: i &* 4, as: Float.self)
        i &+= 1
    }
}

/// Scalar reference for `addInPlace`, used by tests.
public func addInPlaceNaive(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { dst[i] += src[i] }
}
