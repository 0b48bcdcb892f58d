import Synchronization
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

    /// Rows handed out in chunks (`rows:`/`finished:`) from a counter two threads share,
    /// as the trainer's shared weight gradient does: the bits of the whole-matrix call,
    /// each chunk reported once when final, for chunks of whole and ragged micro-tiles,
    /// the fused path and the fallback (a depth over one KC block; N over one NC block).
    func testRowChunksFromTwoThreadsMatchWholeCallBitwise() {
        var rng = TestRandom(seed: 32)
        let cases: [(m: Int, n: Int, ks: [Int], chunk: Int)] = [
            (512, 784, [64, 64], 48), (256, 512, [64, 64], 96), (100, 33, [7, 5, 3], 7), (200, 48, [100, 300], 24),
            (13, 4100, [5, 9], 12),
        ]
        let pool = ThreadPool(threads: 2), serial = ThreadPool(threads: 1)
        for (m, n, ks, chunk) in cases {
            let products = randomProducts(m: m, n: n, ks: ks, rng: &rng)
            defer { release(products) }
            let whole = wholeSum(m: m, n: n, products)
            let chunked = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
            chunked.initialize(repeating: .nan, count: m * n)
            defer { chunked.deallocate() }
            let counter = Atomic<Int>(0)
            let reported = UnsafeMutablePointer<Int>.allocate(capacity: m)
            reported.initialize(repeating: 0, count: m)
            defer { reported.deallocate() }
            let ran = pool.runOnEachThread { _ in
                Gemm.sgemmSum(transA: true, transB: false, m: m, n: n, products: products, alpha: 1, beta: 0, c: chunked, ldc: n,
                              pool: serial,
                              rows: {
                                  let lo = counter.wrappingAdd(1, ordering: .relaxed).oldValue * chunk
                                  return lo < m ? lo..<min(m, lo + chunk) : nil
                              },
                              finished: { rows in for i in rows { reported[i] += 1 } })
            }
            XCTAssertTrue(ran)
            XCTAssertEqual((0..<m).map { reported[$0] }, Array(repeating: 1, count: m), "m=\(m) n=\(n) chunk=\(chunk)")
            XCTAssertEqual(Array(UnsafeBufferPointer(start: chunked, count: m * n)).map(\.bitPattern), whole.map(\.bitPattern),
                           "m=\(m) n=\(n) ks=\(ks) chunk=\(chunk)")
        }
    }
}

extension GemmSumTests {
    /// Inputs packed ahead, each part by its own thread (`Gemm.SumPackedB`), give the bits
    /// of the call that packs them itself; a packed set that does not match the products
    /// (another depth, another address) is ignored, not used.
    func testPackedAheadMatchesSelfPackedBitwise() throws {
        let (m, n, ks) = (96, 784, [64, 60])
        try XCTSkipUnless(Gemm.SumPackedB.applies(parts: ks.count, maxDepth: 64, n: n), "needs the AVX-512 fused path")
        var rng = TestRandom(seed: 33)
        let products = randomProducts(m: m, n: n, ks: ks, rng: &rng)
        defer { release(products) }
        let whole = wholeSum(m: m, n: n, products)

        let packed = Gemm.SumPackedB(parts: ks.count, maxDepth: 64, n: n)
        let pool = ThreadPool(threads: 2), serial = ThreadPool(threads: 1)
        XCTAssertTrue(pool.runOnEachThread { t in
            packed.pack(part: t, transB: false, b: products[t].b, ldb: n, k: products[t].k)
        })
        // The packed parts are read as they are: spoil the sources to be sure no thread packs them again.
        let spoiled = products.map { p in
            let copy = heapCopy(Array(UnsafeBufferPointer(start: p.b, count: p.k * n)))
            UnsafeMutablePointer(mutating: p.b).update(repeating: .nan, count: p.k * n)
            return copy
        }
        defer { spoiled.forEach { $0.deallocate() } }
        let fromPacked = wholeSum(m: m, n: n, products, packedB: packed, pool: serial)
        XCTAssertEqual(fromPacked.map(\.bitPattern), whole.map(\.bitPattern))

        // Restore the sources; products at other addresses do not match the packed set.
        for (p, copy) in zip(products, spoiled) { UnsafeMutablePointer(mutating: p.b).update(from: copy, count: p.k * n) }
        let moved = products.map { p in
            Gemm.Product(a: p.a, lda: p.lda, b: UnsafePointer(heapCopy(Array(UnsafeBufferPointer(start: p.b, count: p.k * n)))),
                         ldb: p.ldb, k: p.k)
        }
        defer { moved.forEach { UnsafeMutablePointer(mutating: $0.b).deallocate() } }
        UnsafeMutablePointer(mutating: packed.part(0)).update(repeating: .nan, count: 64 * n)  // would poison a use
        let unmatched = wholeSum(m: m, n: n, moved, packedB: packed, pool: serial)
        XCTAssertEqual(unmatched.map(\.bitPattern), whole.map(\.bitPattern))
    }
}

/// Products of random Aᵀ (`m × k` stored `k × m`) and B (`k × n`) in heap buffers of their own (`release` frees them).
private func randomProducts(m: Int, n: Int, ks: [Int], rng: inout TestRandom) -> [Gemm.Product] {
    ks.map { k in
        Gemm.Product(a: UnsafePointer(heapCopy(rng.floats(m * k))), lda: m, b: UnsafePointer(heapCopy(rng.floats(k * n))), ldb: n, k: k)
    }
}

private func release(_ products: [Gemm.Product]) {
    for p in products {
        UnsafeMutablePointer(mutating: p.a).deallocate()
        UnsafeMutablePointer(mutating: p.b).deallocate()
    }
}

/// `C = Σ A_sᵀ B_s` over all rows in one call (C starts as NaN: beta 0 must not read it):
/// the plain `sgemmSum`, or with `packedB` the form that takes its rows from a closure.
private func wholeSum(m: Int, n: Int, _ products: [Gemm.Product], packedB: Gemm.SumPackedB? = nil,
                      pool: ThreadPool = .serial) -> [Float] {
    var c = [Float](repeating: .nan, count: m * n)
    guard let packedB else {
        Gemm.sgemmSum(transA: true, transB: false, m: m, n: n, products: products, alpha: 1, beta: 0, c: &c, ldc: n, pool: pool)
        return c
    }
    var rows: Range<Int>? = 0..<m
    Gemm.sgemmSum(transA: true, transB: false, m: m, n: n, products: products, alpha: 1, beta: 0, c: &c, ldc: n,
                  pool: pool, packedB: packedB, rows: { defer { rows = nil }; return rows }, finished: { _ in })
    return c
}

/// A heap copy of `values` (the caller deallocates).
private func heapCopy(_ values: [Float]) -> UnsafeMutablePointer<Float> {
    let p = UnsafeMutablePointer<Float>.allocate(capacity: values.count)
    p.initialize(from: values, count: values.count)
    return p
}
