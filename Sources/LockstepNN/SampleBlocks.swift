import LockstepKernels

/// Sample-parallel loops and pooling windows of the image layers.
enum SampleBlocks {
    /// A pooling window's geometry over `input` (no padding).
    static func window(_ input: FeatureShape, kernel: Int, stride: Int, layer: String) -> ConvGeometry {
        let g = ConvGeometry(channels: input.channels, height: input.height, width: input.width, kernel: kernel, stride: stride, pad: 0)
        precondition(input.spatial && g.outHeight >= 1 && g.outWidth >= 1, "\(layer): the window does not fit the input")
        return g
    }

    /// Runs `body(sample)` for `0..<count`, one contiguous block of samples per pool thread.
    static func run(_ count: Int, _ pool: ThreadPool, _ body: (Int) -> Void) {
        let t = min(pool.threadCount, count)
        guard t > 1 else { for i in 0..<count { body(i) }; return }
        pool.parallelFor(t) { part in
            for i in (count * part / t)..<(count * (part + 1) / t) { body(i) }
        }
    }
}
