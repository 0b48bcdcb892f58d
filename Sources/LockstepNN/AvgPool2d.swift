import LockstepKernels

/// Average pooling over square windows, `torch.nn.AvgPool2d(K, stride)` (no padding, floor).
public final class AvgPool2d: Layer {
    public let geometry: ConvGeometry

    public init(input: FeatureShape, kernel: Int, stride: Int) {
        geometry = SampleBlocks.window(input, kernel: kernel, stride: stride, layer: "AvgPool2d")
    }

    public var inputFeatures: Int { geometry.inputCount }
    public var outputFeatures: Int { geometry.channels * geometry.outPlane }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, output y: UnsafeMutablePointer<Float>, context: StepContext) throws {
        let g = geometry, inF = inputFeatures, outF = outputFeatures
        let scale = 1 / Float(g.kernel * g.kernel)
        SampleBlocks.run(batch, context.pool) { s in
            let xs = x + s * inF, ys = y + s * outF
            for c in 0..<g.channels {
                let plane = c * g.height * g.width
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        var sum: Float = 0
                        for kh in 0..<g.kernel {
                            let row = xs + plane + (oh * g.stride + kh) * g.width + ow * g.stride
                            for kw in 0..<g.kernel { sum += row[kw] }
                        }
                        ys[(c * g.outHeight + oh) * g.outWidth + ow] = sum * scale
                    }
                }
            }
        }
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, input x: UnsafePointer<Float>, output y: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, context: StepContext) throws {
        guard let dx else { return }
        let g = geometry, inF = inputFeatures, outF = outputFeatures
        let scale = 1 / Float(g.kernel * g.kernel)
        SampleBlocks.run(batch, context.pool) { s in
            let d = dx + s * inF, gs = dy + s * outF
            d.update(repeating: 0, count: inF)
            for c in 0..<g.channels {
                let plane = c * g.height * g.width
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        let v = gs[(c * g.outHeight + oh) * g.outWidth + ow] * scale
                        for kh in 0..<g.kernel {
                            let row = d + plane + (oh * g.stride + kh) * g.width + ow * g.stride
                            for kw in 0..<g.kernel { row[kw] += v }
                        }
                    }
                }
            }
        }
    }

    public var summary: String {
        "AvgPool2d(\(geometry.kernel)" + (geometry.stride != geometry.kernel ? ", stride=\(geometry.stride)" : "") + ")"
    }
}
