#if arch(x86_64)
import LockstepKernelsAVX512
#endif

extension Gemm {
    /// One product of `sgemmSum`: op(A) is m×k at `a`, op(B) is k×n at `b`.
    public struct Product {
        public var a: UnsafePointer<Float>, lda: Int
        public var b: UnsafePointer<Float>, ldb: Int
        public var k: Int
        public init(a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, k: Int) {
            self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.k = k
        }
    }

    /// `C = alpha·op(A_0)·op(B_0) + beta·C`, then `C = alpha·op(A_s)·op(B_s) + C` for each
    /// next product: bitwise the result of those `sgemm` calls in order (a sum of
    /// per-part products, e.g. the weight gradient of several replicas summed in replica
    /// order). With AVX-512 and every depth within one KC block, each tile of C takes all
    /// the products while it is in L1, instead of one pass over C per product, on the
    /// calling thread; otherwise it makes the calls (on `pool`).
    public static func sgemmSum(transA: Bool, transB: Bool, m: Int, n: Int, products: [Product],
                                alpha: Float, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool = .serial) {
        var whole: Range<Int>? = 0..<m
        sgemmSum(transA: transA, transB: transB, m: m, n: n, products: products, alpha: alpha, beta: beta, c: c, ldc: ldc,
                 pool: pool, rows: { defer { whole = nil }; return whole }, finished: { _ in })
    }

    /// `sgemmSum` for the rows of C that `rows()` hands out, a range at a time, until it
    /// returns nil; `finished(range)` runs as soon as those rows of C are final (still in
    /// cache). Threads that share one C and take its rows from a common counter (work
    /// sharing) each call this: op(B) is packed once per call (or once between them, ahead:
    /// `packedB`, used where it matches the products), and every element of C sees
    /// the operations of the whole-matrix `sgemmSum` (rows are independent), so the bits
    /// do not depend on which thread computed which rows.
    public static func sgemmSum(transA: Bool, transB: Bool, m: Int, n: Int, products: [Product],
                                alpha: Float, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool = .serial,
                                packedB: SumPackedB? = nil, rows nextRows: () -> Range<Int>?, finished: (Range<Int>) -> Void) {
        let kern = kernel
        let bl = blocking(kern)
        let fused = kern == .avx512 && products.count > 1 && m > 0 && n > 0 && n <= bl.nc && alpha != 0
            && products.allSatisfy { $0.k > 0 && $0.k <= bl.kc }
        guard fused else {
            while let rows = nextRows() {
                precondition(rows.lowerBound >= 0 && rows.upperBound <= m, "Gemm.sgemmSum: rows \(rows) outside 0..<\(m)")
                for (s, p) in products.enumerated() {
                    let a = transA ? p.a + rows.lowerBound : p.a + rows.lowerBound * p.lda
                    sgemm(transA: transA, transB: transB, m: rows.count, n: n, k: p.k, alpha: alpha, a: a, lda: p.lda,
                          b: p.b, ldb: p.ldb, beta: s == 0 ? beta : 1, c: c + rows.lowerBound * ldc, ldc: ldc, pool: pool)
                }
                finished(rows)
            }
            return
        }
        #if arch(x86_64)
        for p in products {
            precondition(p.lda >= max(1, transA ? m : p.k) && p.ldb >= max(1, transB ? p.k : n),
                         "Gemm.sgemmSum: leading dimension too small (lda \(p.lda), ldb \(p.ldb)) for m=\(m) n=\(n) k=\(p.k)")
        }
        precondition(ldc >= n, "Gemm.sgemmSum: ldc \(ldc) < n \(n)")
        let parts = products.count
        let kMax = products.map(\.k).max()!
        let ncMax = min(bl.nc, (n + bl.nr - 1) / bl.nr * bl.nr)
        let mcMax = min(bl.mc, (m + bl.mr - 1) / bl.mr * bl.mr)
        let prepacked = packedB.flatMap { $0.matches(products, n: n) ? $0 : nil }
        withScratch { scratch in
            scratch.reserve(packedA: parts * mcMax * kMax, packedB: prepacked == nil ? parts * kMax * ncMax : 0)
            let pa = scratch.packedA, pb = scratch.packedB
            withUnsafeTemporaryAllocation(of: Int.self, capacity: parts) { ks in
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 2 * parts) { ptrs in
                    for s in 0..<parts {
                        ks[s] = products[s].k
                        ptrs[s] = UnsafePointer(pa + s * mcMax * kMax)
                        ptrs[parts + s] = prepacked?.part(s) ?? UnsafePointer(pb + s * kMax * ncMax)
                    }
                    // n ≤ NC: one packed block of each op(B), for every range of rows.
                    var packed = prepacked != nil
                    while let rows = nextRows() {
                        precondition(rows.lowerBound >= 0 && rows.upperBound <= m, "Gemm.sgemmSum: rows \(rows) outside 0..<\(m)")
                        if !packed {
                            for (s, p) in products.enumerated() {
                                packB(kern, transposed: transB, p.b, ldb: p.ldb, k: p.k, n: n, into: pb + s * kMax * ncMax)
                            }
                            packed = true
                        }
                        var ic = rows.lowerBound
                        while ic < rows.upperBound {
                            let mcb = min(bl.mc, rows.upperBound - ic)
                            for (s, p) in products.enumerated() {
                                packA(kern, transposed: transA, transA ? p.a + ic : p.a + ic * p.lda, lda: p.lda, m: mcb, k: p.k,
                                      into: pa + s * mcMax * kMax)
                            }
                            GemmAVX512.macroKernelSum(m: mcb, n: n, parts: parts, ks: ks.baseAddress!,
                                                      pas: ptrs.baseAddress!, pbs: ptrs.baseAddress! + parts,
                                                      c: c + ic * ldc, ldc: ldc, alpha: alpha, beta: beta)
                            ic += bl.mc
                        }
                        finished(rows)
                    }
                }
            }
        }
        #endif
    }
}
