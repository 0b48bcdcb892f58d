import Foundation
/// Elementwise transcendental kernels. Placeholder scalar versions; replaced by SIMD polynomials.
public enum VectorMath {
    public static func exp(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.exp(x[i]) } }
    public static func sigmoid(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = 1 / (1 + Foundation.exp(-x[i])) } }
    public static func tanh(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) { for i in 0..<count { y[i] = Foundation.tanh(x[i]) } }
}
