import XCTest
import TestSupport
@testable import LockstepKernels

final class GemmSumTests: XCTestCase {
    /// `sgemmSum` gives the bits of one `sgemm` per product (beta, then 1), for every
    /// transpose case, ragged shapes, several products, depths over one KC block
    /// (the fallback), and alpha/beta other than 1/0.
    func testMatchesSequentialCallsBitwise() {
        var rng = TestRandom(seed: 31)
        let cases: [(m: Int, n: Int, ks: [Int], alpha: Float, beta: Float)] = [
            (252, 784, [64, 64], 1, 0), (132, 512, [64, 64], 1, 0), (13, 37, [5, 9, 1], 0.5, 0.25),
            (200, 48, [100, 300], 1, 1), (1, 1, [1, 1], 1, 0), (25, 17, [7], 2, 0.5), (30, 40, [0, 3], 1, 0),
        ]
        for (m, n, ks, alpha, beta) in cases {
            for (transA, transB) in [(true, false), (false, false), (false, true), (true, true)] {
                // Operands in buffers of their own (pointers that outlive any closure).
                var buffers: [UnsafeMutablePointer<Float>] = []
                defer { buffers.forEach { $0.deallocate() } }
                func copy(_ x: [Float]) -> UnsafePointer<Float> {
                    let p = UnsafeMutablePointer<Float>.allocate(capacity: x.count)
                    p.initialize(from: x, count: x.count)
                    buffers.append(p)
                    return UnsafePointer(p)
                }
                let products = ks.map { k in
                    Gemm.Product(a: copy(rng.floats(max(m * k, 1))), lda: transA ? m : max(k, 1),
                                 b: copy(rng.floats(max(k * n, 1))), ldb: transB ? max(k, 1) : n, k: k)
                }
                let c0 = rng.floats(m * n)
                var fused = c0, sequential = c0
                Gemm.sgemmSum(transA: transA, transB: transB, m: m, n: n, products: products,
                              alpha: alpha, beta: beta, c: &fused, ldc: n)
                for (s, p) in products.enumerated() {
                    Gemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: p.k, alpha: alpha, a: p.a, lda: p.lda,
                               b: p.b, ldb: p.ldb, beta: s == 0 ? beta : 1, c: &sequential, ldc: n)
                }
                XCTAssertEqual(fused.map(\.bitPattern), sequential.map(\.bitPattern),
                               "m=\(m) n=\(n) ks=\(ks) transA=\(transA) transB=\(transB)")
                // And the value itself, against the double-precision reference.
                var reference = c0
                for (s, p) in products.enumerated() {
                    var part = [Float](repeating: 0, count: m * n)
                    Gemm.sgemmNaive(transA: transA, transB: transB, m: m, n: n, k: p.k, alpha: 1, a: p.a, lda: p.lda,
                                    b: p.b, ldb: p.ldb, beta: 0, c: &part, ldc: n)
                    for i in 0..<(m * n) { reference[i] = (s == 0 ? beta * reference[i] : reference[i]) + alpha * part[i] }
                }
                assertClose(fused, reference, rtol: 1e-4, atol: 1e-4 * Double(ks.reduce(0, +) + 1), "value m=\(m) n=\(n) ks=\(ks)")
            }
        }
    }
}
