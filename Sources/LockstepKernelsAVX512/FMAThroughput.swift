#if arch(x86_64)

extension GemmAVX512 {
    /// Runs 16 independent chains x ← x·a + b on zmm registers for `iterations` steps
    /// (16 × 16 lanes × 2 FLOP per step: enough chains to keep both FMA pipes busy
    /// through a 4-cycle latency) and returns a sum of the results, which the caller
    /// must use so the work is not removed.
    @inline(never)
    public static func fmaChains(iterations: Int) -> Float {
        let a = V(repeating: 0.999_999), b = V(repeating: 1e-7)
        var x0 = V(repeating: 1.00), x1 = V(repeating: 1.01), x2 = V(repeating: 1.02), x3 = V(repeating: 1.03)
        var x4 = V(repeating: 1.04), x5 = V(repeating: 1.05), x6 = V(repeating: 1.06), x7 = V(repeating: 1.07)
        var x8 = V(repeating: 1.08), x9 = V(repeating: 1.09), xa = V(repeating: 1.10), xb = V(repeating: 1.11)
        var xc = V(repeating: 1.12), xd = V(repeating: 1.13), xe = V(repeating: 1.14), xf = V(repeating: 1.15)
        for _ in 0..<iterations {
            x0 = b.addingProduct(x0, a); x1 = b.addingProduct(x1, a); x2 = b.addingProduct(x2, a); x3 = b.addingProduct(x3, a)
            x4 = b.addingProduct(x4, a); x5 = b.addingProduct(x5, a); x6 = b.addingProduct(x6, a); x7 = b.addingProduct(x7, a)
            x8 = b.addingProduct(x8, a); x9 = b.addingProduct(x9, a); xa = b.addingProduct(xa, a); xb = b.addingProduct(xb, a)
            xc = b.addingProduct(xc, a); xd = b.addingProduct(xd, a); xe = b.addingProduct(xe, a); xf = b.addingProduct(xf, a)
        }
        let s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) + ((x8 + x9) + (xa + xb)) + ((xc + xd) + (xe + xf))
        return s.sum()
    }

    /// FLOP per step of `fmaChains`.
    public static let fmaChainsFlopsPerIteration = 16 * 16 * 2
}

#endif
