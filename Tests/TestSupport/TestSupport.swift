import XCTest
import LockstepBase

/// Shared assertions for the test targets. Failures point at the caller's line.

/// The largest elementwise difference between two arrays.
public struct MaxDifference: CustomStringConvertible, Sendable {
    public var maxAbs: Double = 0
    public var maxAbsIndex = -1
    public var maxRel: Double = 0
    public var maxRelIndex = -1
    /// First index where the tolerance `|a-b| <= atol + rtol·|b|` fails (NaN-aware), or nil.
    public var firstFailure: Int?

    public var description: String {
        "max abs diff \(maxAbs) at [\(maxAbsIndex)], max rel diff \(maxRel) at [\(maxRelIndex)]"
    }
}

/// Compares `actual` to `expected` elementwise: |a - b| <= atol + rtol·|b|.
/// NaN matches only NaN; infinities must match exactly.
/// (Non-generic on purpose: generic code from another module runs unspecialized and slow.)
public func maxDifference(_ actual: [Double], _ expected: [Double], rtol: Double, atol: Double) -> MaxDifference {
    var d = MaxDifference()
    for i in 0..<min(actual.count, expected.count) {
        let a = actual[i], b = expected[i]
        if a.isNaN || b.isNaN || a.isInfinite || b.isInfinite {
            let same = (a.isNaN && b.isNaN) || a == b
            if !same {
                if d.firstFailure == nil { d.firstFailure = i }
                d.maxAbs = .infinity; d.maxAbsIndex = i
            }
            continue
        }
        let abs = Swift.abs(a - b)
        let rel = b == 0 ? (a == 0 ? 0 : Double.infinity) : abs / Swift.abs(b)
        if abs > d.maxAbs { d.maxAbs = abs; d.maxAbsIndex = i }
        if rel > d.maxRel { d.maxRel = rel; d.maxRelIndex = i }
        if abs > atol + rtol * Swift.abs(b), d.firstFailure == nil { d.firstFailure = i }
    }
    return d
}

/// Asserts `actual ≈ expected` elementwise (|a - b| <= atol + rtol·|b|), reporting
/// the max abs/rel difference with indices and the first failing element.
public func assertClose(
    _ actual: [Double], _ expected: [Double], rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("assertClose: count \(actual.count) != expected count \(expected.count). \(message())", file: file, line: line)
        return
    }
    let d = maxDifference(actual, expected, rtol: rtol, atol: atol)
    if let i = d.firstFailure {
        XCTFail("assertClose failed (rtol \(rtol), atol \(atol)): first at [\(i)] got \(actual[i]) expected \(expected[i]); \(d). \(message())", file: file, line: line)
    }
}

/// `Float` form of `assertClose` (compared in Double).
public func assertClose(
    _ actual: [Float], _ expected: [Float], rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose(actual.map(Double.init), expected.map(Double.init), rtol: rtol, atol: atol, message(), file: file, line: line)
}

/// Scalar form of `assertClose`.
public func assertClose(
    _ actual: Float, _ expected: Float, rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose([Double(actual)], [Double(expected)], rtol: rtol, atol: atol, message(), file: file, line: line)
}

/// Scalar `Double` form of `assertClose`.
public func assertClose(
    _ actual: Double, _ expected: Double, rtol: Double = 1e-5, atol: Double = 1e-6,
    _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    assertClose([actual], [expected], rtol: rtol, atol: atol, message(), file: file, line: line)
}

/// Asserts two arrays are bitwise identical (NaN payloads included), naming the first difference.
public func assertBitwiseEqual(
    _ actual: [Float], _ expected: [Float], _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual.count == expected.count else {
        XCTFail("assertBitwiseEqual: count \(actual.count) != \(expected.count). \(message())", file: file, line: line)
        return
    }
    if let i = actual.indices.first(where: { actual[$0].bitPattern != expected[$0].bitPattern }) {
        XCTFail("assertBitwiseEqual: first difference at [\(i)]: \(actual[i]) vs \(expected[i]). \(message())", file: file, line: line)
    }
}

/// Deterministic generator for test data (Lockstep's SplitMix64).
public struct TestRandom: Sendable {
    private var generator: SplitMix64
    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }
    public mutating func next() -> UInt64 { generator.next() }
    /// Uniform in [lo, hi).
    public mutating func float(_ lo: Float = -1, _ hi: Float = 1) -> Float {
        lo + (hi - lo) * (Float(next() >> 40) / Float(1 << 24))
    }
    /// `count` uniform values in [lo, hi).
    public mutating func floats(_ count: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
        (0..<count).map { _ in float(lo, hi) }
    }
}
