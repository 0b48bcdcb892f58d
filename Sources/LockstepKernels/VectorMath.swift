import Foundation
/// Elementwise transcendental kernels. Placeholder scalar versions; replaced by SIMD polynomials.
public enum VectorMath {
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.exp(x[i]) } }
    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = 1 / (1 + Foundation.exp(-x[i])) } }
    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.tanh(x[i]) } }
}
/// Placeholder reductions; replaced by SIMD versions.
public enum Reductions {
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float { var s: Float = 0; for i in 0..<count { s += x[i] }; return s }
    public static func columnSums(_ x: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
        out.update(repeating: 0, count: cols)
        for r in 0..<rows { for c in 0..<cols { out[c] += x[r * cols + c] } }
    }
}
