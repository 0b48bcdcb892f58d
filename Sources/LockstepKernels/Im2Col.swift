/// The geometry of a 2-D convolution or pooling window over one NCHW sample.
public struct ConvGeometry: Sendable, Equatable {
    public let channels: Int
    public let height: Int
    public let width: Int
    public let kernel: Int
    public let stride: Int
    public let pad: Int

    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, pad: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
    }

    public var outHeight: Int { (height + 2 * pad - kernel) / stride + 1 }
    public var outWidth: Int { (width + 2 * pad - kernel) / stride + 1 }
    public var outPlane: Int { outHeight * outWidth }
    /// Rows of the column matrix: one per (channel, kernel row, kernel column).
    public var patch: Int { channels * kernel * kernel }
    public var inputCount: Int { channels * height * width }

    /// The output positions `o` whose input coordinate `o·stride - pad + k` lies in `0..<size`.
    @inline(__always) func valid(_ k: Int, size: Int, outputs: Int) -> Range<Int> {
        let shift = pad - k  // input = o·stride - shift
        var lo = 0
        if shift > 0 { lo = (shift + stride - 1) / stride }
        var hi = outputs
        // o·stride - shift <= size - 1  ⇔  o <= (size - 1 + shift) / stride
        let last = size - 1 + shift
        hi = last < 0 ? 0 : min(outputs, last / stride + 1)
        return lo..<max(lo, hi)
    }
}

/// im2col and its adjoint for convolutions on the SGEMM core.
///
/// `gather` writes one sample's patches as columns: row `(c·K + kh)·K + kw`, column
/// `oh·Wo + ow` holds `x[c, oh·S - P + kh, ow·S - P + kw]` (zero outside the image), at
/// `cols + row·ld`. A batch's columns sit side by side (sample b at column offset
/// b·Wo·Ho), so one GEMM `W[Cout, C·K·K] · cols` convolves the whole batch.
/// `scatterAdd` is its transpose: every column entry is added back to its pixel,
/// in a fixed order, so the input gradient is deterministic.
public enum Im2Col {
    public static func gather(_ x: UnsafePointer<Float>, _ g: ConvGeometry, into cols: UnsafeMutablePointer<Float>, ld: Int) {
        let (ho, wo, k, s) = (g.outHeight, g.outWidth, g.kernel, g.stride)
        for c in 0..<g.channels {
            let plane = x + c * g.height * g.width
            for kh in 0..<k {
                let rows = g.valid(kh, size: g.height, outputs: ho)
                for kw in 0..<k {
                    let dst = cols + ((c * k + kh) * k + kw) * ld
                    let columns = g.valid(kw, size: g.width, outputs: wo)
                    for oh in 0..<ho {
                        let out = dst + oh * wo
                        guard rows.contains(oh) else { out.update(repeating: 0, count: wo); continue }
                        let src = plane + (oh * s - g.pad + kh) * g.width
                        if columns.lowerBound > 0 { out.update(repeating: 0, count: columns.lowerBound) }
                        if s == 1 {
                            let first = columns.lowerBound - g.pad + kw
                            (out + columns.lowerBound).update(from: src + first, count: columns.count)
                        } else {
                            for ow in columns { out[ow] = src[ow * s - g.pad + kw] }
                        }
                        if columns.upperBound < wo { (out + columns.upperBound).update(repeating: 0, count: wo - columns.upperBound) }
                    }
                }
            }
        }
    }

    /// `dx[c, ih, iw] += cols[row, column]` over every patch entry inside the image.
    public static func scatterAdd(_ cols: UnsafePointer<Float>, ld: Int, _ g: ConvGeometry, into dx: UnsafeMutablePointer<Float>) {
        let (ho, wo, k, s) = (g.outHeight, g.outWidth, g.kernel, g.stride)
        for c in 0..<g.channels {
            let plane = dx + c * g.height * g.width
            for kh in 0..<k {
                let rows = g.valid(kh, size: g.height, outputs: ho)
                for kw in 0..<k {
                    let src = cols + ((c * k + kh) * k + kw) * ld
                    let columns = g.valid(kw, size: g.width, outputs: wo)
                    for oh in rows {
                        let dst = plane + (oh * s - g.pad + kh) * g.width
                        let row = src + oh * wo
                        if s == 1 {
                            let d = dst + (columns.lowerBound - g.pad + kw), r = row + columns.lowerBound
                            for i in 0..<columns.count { d[i] += r[i] }
                        } else {
                            for ow in columns { dst[ow * s - g.pad + kw] += row[ow] }
                        }
                    }
                }
            }
        }
    }
}
