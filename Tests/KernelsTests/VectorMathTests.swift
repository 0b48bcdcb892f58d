import XCTest
import TestSupport
@testable import LockstepKernels

/// Dense sweeps against double-precision libm; the bounds are the documented constants.
final class VectorMathTests: XCTestCase {
    /// `count` evenly spaced points in [lo, hi] (odd count so the tail path runs too).
    func sweep(_ lo: Float, _ hi: Float, count: Int = 1_000_003) -> [Float] {
        (0..<count).map { lo + (hi - lo) * Float(Double($0) / Double(count - 1)) }
    }

    func apply(_ f: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in f(xp.baseAddress!, yp.baseAddress!, x.count) } }
        return y
    }

    func errors(_ y: [Float], _ ref: [Double]) -> (abs: Double, rel: Double, at: Int) {
        var a = 0.0, r = 0.0, at = -1
        for i in 0..<y.count {
            let d = abs(Double(y[i]) - ref[i])
            a = max(a, d)
            if ref[i] != 0, d / abs(ref[i]) > r { r = d / abs(ref[i]); at = i }
        }
        return (a, r, at)
    }

    func testExpRelativeError() {
        let x = sweep(-87.3, 88.72)
        let y = apply({ VectorMath.exp($0, $1, count: $2) }, x)
        let e = errors(y, x.map { Foundation.exp(Double($0)) })
        XCTAssertLessThanOrEqual(e.rel, Double(VectorMath.expMaxRelativeError), "max rel error \(e.rel) at x=\(x[max(e.at, 0)])")
        // Subnormal results: tiny absolute error.
        let xs = sweep(-103.9, -87.3, count: 10_001)
        let ys = apply({ VectorMath.exp($0, $1, count: $2) }, xs)
        XCTAssertLessThanOrEqual(errors(ys, xs.map { Foundation.exp(Double($0)) }).abs, 3e-45)
    }

    func testExpSaturation() {
        let y = apply({ VectorMath.exp($0, $1, count: $2) }, [-100, -200, -.infinity, 88.8, 100, .infinity, 0, .nan, -1e30, 1e30])
        XCTAssertLessThan(Double(y[0]), 1e-43)
        XCTAssertEqual(y[1], 0); XCTAssertEqual(y[2], 0)
        XCTAssertEqual(y[3], .infinity); XCTAssertEqual(y[4], .infinity); XCTAssertEqual(y[5], .infinity)
        XCTAssertEqual(y[6], 1)
        XCTAssertTrue(y[7].isNaN)
        XCTAssertEqual(y[8], 0); XCTAssertEqual(y[9], .infinity)
    }

    func testSigmoidErrors() {
        let x = sweep(-87, 88)
        let y = apply({ VectorMath.sigmoid($0, $1, count: $2) }, x)
        let e = errors(y, x.map { 1 / (1 + Foundation.exp(-Double($0))) })
        XCTAssertLessThanOrEqual(e.rel, Double(VectorMath.sigmoidMaxRelativeError), "max rel error \(e.rel) at x=\(x[max(e.at, 0)])")
        XCTAssertLessThanOrEqual(e.abs, Double(VectorMath.sigmoidMaxAbsoluteError))
        let near0 = sweep(-1e-3, 1e-3, count: 100_001)
        let en = errors(apply({ VectorMath.sigmoid($0, $1, count: $2) }, near0), near0.map { 1 / (1 + Foundation.exp(-Double($0))) })
        XCTAssertLessThanOrEqual(en.rel, Double(VectorMath.sigmoidMaxRelativeError))
        let sat = apply({ VectorMath.sigmoid($0, $1, count: $2) }, [-100, 100, -1e30, 1e30, -.infinity, .infinity])
        XCTAssertEqual(sat, [0, 1, 0, 1, 0, 1])
    }

    func testTanhErrors() {
        let x = sweep(-12, 12)
        let y = apply({ VectorMath.tanh($0, $1, count: $2) }, x)
        let e = errors(y, x.map { Foundation.tanh(Double($0)) })
        XCTAssertLessThanOrEqual(e.rel, Double(VectorMath.tanhMaxRelativeError), "max rel error \(e.rel) at x=\(x[max(e.at, 0)])")
        XCTAssertLessThanOrEqual(e.abs, Double(VectorMath.tanhMaxAbsoluteError))
        // Relative error near 0, where 1 - 2/(e+1) would cancel.
        for (lo, hi) in [(Float(-1), Float(1)), (-1e-3, 1e-3), (-1e-30, 1e-30)] {
            let xs = sweep(lo, hi, count: 200_001)
            let en = errors(apply({ VectorMath.tanh($0, $1, count: $2) }, xs), xs.map { Foundation.tanh(Double($0)) })
            XCTAssertLessThanOrEqual(en.rel, Double(VectorMath.tanhMaxRelativeError), "near 0 in [\(lo), \(hi)] at x=\(xs[max(en.at, 0)])")
        }
        let sat = apply({ VectorMath.tanh($0, $1, count: $2) }, [-50, 50, -1e30, 1e30, -.infinity, .infinity, 0, -0.0])
        XCTAssertEqual(sat, [-1, 1, -1, 1, -1, 1, 0, 0])
        XCTAssertEqual(sat[7].sign, .minus)
    }

    /// Every length 0...40 (tails of every size) matches the per-element result of a long run.
    func testTailsMatchVectorPath() {
        var rng = TestRandom(seed: 42)
        let x = rng.floats(40, -10, 10)
        let full = apply({ VectorMath.tanh($0, $1, count: $2) }, x)
        for n in 0...40 {
            let part = apply({ VectorMath.tanh($0, $1, count: $2) }, Array(x[0..<n]))
            assertBitwiseEqual(part, Array(full[0..<n]), "n=\(n)")
        }
        let naive = apply({ VectorMath.expNaive($0, $1, count: $2) }, x)
        assertClose(apply({ VectorMath.exp($0, $1, count: $2) }, x), naive, rtol: Double(VectorMath.expMaxRelativeError) * 2, atol: 0)
        assertClose(apply({ VectorMath.sigmoid($0, $1, count: $2) }, x), apply({ VectorMath.sigmoidNaive($0, $1, count: $2) }, x), rtol: 4e-7, atol: 0)
        assertClose(full, apply({ VectorMath.tanhNaive($0, $1, count: $2) }, x), rtol: 5e-7, atol: 0)
    }
}
