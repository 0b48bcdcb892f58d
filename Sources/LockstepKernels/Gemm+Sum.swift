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
                                alpha: Float, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, pool: ThreadPool = .shared) {
        let kern = kernel
        let bl = blocking(kern)
        let fused = kern == .avx512 && products.count > 1 && m > 0 && n > 0 && alpha != 0
            && products.allSatisfy { $0.k > 0 && $0.k <= bl.kc }
        guard fused else {
            for (s, p) in products.enumerated() {
                sgemm(transA: transA, transB: transB, m: m, n: n, k: p.k, alpha: alpha, a: p.a, lda: p.lda,
                      b: p.b, ldb: p.ldb, beta: s == 0 ? beta : 1, c: c, ldc: ldc, pool: pool)
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
        withScratch { scratch in
            scratch.reserve(packedA: parts * mcMax * kMax, packedB: parts * kMax * ncMax)
            let pa = scratch.packedA, pb = scratch.packedB
            withUnsafeTemporaryAllocation(of: Int.self, capacity: parts) { ks in
                withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 2 * parts) { ptrs in
                    for s in 0..<parts {
                        ks[s] = products[s].k
                        ptrs[s] = UnsafePointer(pa + s * mcMax * kMax)
                        ptrs[parts + s] = UnsafePointer(pb + s * kMax * ncMax)
                    }
                    var jc = 0
                    while jc < n {
                        let ncb = min(bl.nc, n - jc)
                        for (s, p) in products.enumerated() {
                            packB(kern, transposed: transB, transB ? p.b + jc * p.ldb : p.b + jc, ldb: p.ldb, k: p.k, n: ncb,
                                  into: pb + s * kMax * ncMax)
                        }
                        var ic = 0
                        while ic < m {
                            let mcb = min(bl.mc, m - ic)
                            for (s, p) in products.enumerated() {
                                packA(kern, transposed: transA, transA ? p.a + ic : p.a + ic * p.lda, lda: p.lda, m: mcb, k: p.k,
                                      into: pa + s * mcMax * kMax)
                            }
                            GemmAVX512.macroKernelSum(m: mcb, n: ncb, parts: parts, ks: ks.baseAddress!,
                                                      pas: ptrs.baseAddress!, pbs: ptrs.baseAddress! + parts,
                                                      c: c + ic * ldc + jc, ldc: ldc, alpha: alpha, beta: beta)
                            ic += bl.mc
                        }
                        jc += bl.nc
                    }
                }
            }
        }
        #endif
    }
}
