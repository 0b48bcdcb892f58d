extension Gemm {
    /// op(B) of every product of a `sgemmSum`, packed ahead of the call, so that threads
    /// sharing one sum (each taking rows of C) pack each op(B) once between them instead
    /// of each packing all of them: thread s packs part s (`pack`), and after a barrier every
    /// thread passes this to `sgemmSum(…, packedB:)`. The layout is the one `sgemmSum`
    /// packs itself, so the bits are the same.
    public final class SumPackedB {
        let kern: GemmKernel
        public let parts: Int, maxDepth: Int, n: Int
        /// Floats per part: `maxDepth` × n rounded up to whole micro-panels.
        let partStride: Int
        let buffer: UnsafeMutablePointer<Float>
        /// Depth and source of each packed part (0 and nil: not packed); one slot per part,
        /// written by its packer.
        private let depths: UnsafeMutablePointer<Int>
        private let sources: UnsafeMutablePointer<UnsafePointer<Float>?>

        /// Whether `sgemmSum` takes its fused path, the one that uses packed parts, for
        /// `parts` products of depths up to `maxDepth` and `n` columns.
        public static func applies(parts: Int, maxDepth: Int, n: Int) -> Bool {
            let bl = blocking(kernel)
            return kernel == .avx512 && parts > 1 && n > 0 && n <= bl.nc && maxDepth > 0 && maxDepth <= bl.kc
        }

        /// Room for `parts` products of depth at most `maxDepth` and `n` columns (`applies` must hold).
        public init(parts: Int, maxDepth: Int, n: Int) {
            precondition(Self.applies(parts: parts, maxDepth: maxDepth, n: n),
                         "Gemm.SumPackedB: parts=\(parts) maxDepth=\(maxDepth) n=\(n) outside the fused sgemmSum path")
            kern = Gemm.kernel
            let bl = blocking(kern)
            self.parts = parts
            self.maxDepth = maxDepth
            self.n = n
            partStride = maxDepth * ((n + bl.nr - 1) / bl.nr * bl.nr)
            buffer = UnsafeMutableRawPointer.allocate(byteCount: parts * partStride * MemoryLayout<Float>.stride, alignment: 64)
                .bindMemory(to: Float.self, capacity: parts * partStride)
            depths = .allocate(capacity: parts)
            depths.initialize(repeating: 0, count: parts)
            sources = .allocate(capacity: parts)
            sources.initialize(repeating: nil, count: parts)
        }

        deinit {
            buffer.deallocate()
            depths.deallocate()
            sources.deallocate()
        }

        /// Packs op(B) of product `s` (`k × n`, op(B) = B or Bᵀ at `b`). Distinct parts may be
        /// packed by distinct threads at once. Pack again whenever B changes: `sgemmSum`
        /// checks only that the depth and the address match.
        public func pack(part s: Int, transB: Bool, b: UnsafePointer<Float>, ldb: Int, k: Int) {
            precondition(s >= 0 && s < parts && k > 0 && k <= maxDepth, "Gemm.SumPackedB.pack: part \(s) depth \(k)")
            packB(kern, transposed: transB, b, ldb: ldb, k: k, n: n, into: buffer + s * partStride)
            depths[s] = k
            sources[s] = b
        }

        func part(_ s: Int) -> UnsafePointer<Float> { UnsafePointer(buffer + s * partStride) }

        /// Whether the packed parts are those of `products` (depth and address) with `n` columns.
        func matches(_ products: [Product], n: Int) -> Bool {
            n == self.n && products.count == parts && kern == Gemm.kernel
                && products.indices.allSatisfy { depths[$0] == products[$0].k && sources[$0] == products[$0].b }
        }
    }
}
