import LockstepKernels

/// Max pooling over square windows, `torch.nn.MaxPool2d(K, stride)` (no padding, floor).
/// The gradient goes to the first maximum of each window in row-major order, as in PyTorch.
public final class MaxPool2d: Layer {
    public let geometry: ConvGeometry
    /// Input offset (within the sample) of each output's maximum, from the last training forward.
    private var argmax: [Int32] = []

    public init(input: FeatureShape, kernel: Int, stride: Int) {
        geometry = SampleBlocks.window(input, kernel: kernel, stride: stride, layer: "MaxPool2d")
    }

    public var inputFeatures: Int { geometry.inputCount }
    public var outputFeatures: Int { geometry.channels * geometry.outPlane }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let g = geometry, inF = inputFeatures, outF = outputFeatures
        if argmax.count < batch * outF { argmax = [Int32](repeating: 0, count: batch * outF) }
        argmax.withUnsafeMutableBufferPointer { am in
            let am = am.baseAddress!
            SampleBlocks.run(batch, context.pool) { s in
                let xs = x + s * inF, ys = y + s * outF, idx = am + s * outF
                if g.kernel == 2 && g.stride == 2 {
                    MaxPool2d.twoByTwo(xs, g, ys, idx)
                    return
                }
                for c in 0..<g.channels {
                    let plane = c * g.height * g.width
                    for oh in 0..<g.outHeight {
                        for ow in 0..<g.outWidth {
                            var best = plane + oh * g.stride * g.width + ow * g.stride
                            var value = -Float.infinity
                            for kh in 0..<g.kernel {
                                let row = plane + (oh * g.stride + kh) * g.width + ow * g.stride
                                for kw in 0..<g.kernel where xs[row + kw] > value || xs[row + kw].isNaN {
                                    value = xs[row + kw]
                                    best = row + kw
                                }
                            }
                            let o = (c * g.outHeight + oh) * g.outWidth + ow
                            ys[o] = value
                            idx[o] = Int32(best)
                        }
                    }
                }
            }
        }
    }

    /// The common 2×2 window with stride 2, unrolled: the same comparisons in the same order.
    @inline(__always)
    static func twoByTwo(_ xs: UnsafePointer<Float>, _ g: ConvGeometry, _ ys: UnsafeMutablePointer<Float>, _ idx: UnsafeMutablePointer<Int32>) {
        let w = g.width
        var o = 0
        for c in 0..<g.channels {
            let plane = c * g.height * w
            for oh in 0..<g.outHeight {
                let r0 = plane + 2 * oh * w, r1 = r0 + w
                for ow in 0..<g.outWidth {
                    let i0 = r0 + 2 * ow, i1 = r1 + 2 * ow
                    // Selects rather than branches (random data mispredicts half of them).
                    var best = i0, value = xs[i0]
                    let b = xs[i0 + 1], c = xs[i1], d = xs[i1 + 1]
                    let tb = b > value || b.isNaN
                    value = tb ? b : value; best = tb ? i0 + 1 : best
                    let tc = c > value || c.isNaN
                    value = tc ? c : value; best = tc ? i1 : best
                    let td = d > value || d.isNaN
                    value = td ? d : value; best = td ? i1 + 1 : best
                    ys[o] = value
                    idx[o] = Int32(best)
                    o += 1
                }
            }
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        guard let dx else { return }
        let inF = inputFeatures, outF = outputFeatures
        argmax.withUnsafeBufferPointer { am in
            let am = am.baseAddress!
            SampleBlocks.run(batch, context.pool) { s in
                let d = dx + s * inF, g = dy + s * outF, idx = am + s * outF
                d.update(repeating: 0, count: inF)
                for o in 0..<outF { d[Int(idx[o])] += g[o] }
            }
        }
    }

    public var summary: String {
        "MaxPool2d(\(geometry.kernel)" + (geometry.stride != geometry.kernel ? ", stride=\(geometry.stride)" : "") + ")"
    }
}
