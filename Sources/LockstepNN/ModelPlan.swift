/// The shapes a list of layer specs produces from an input shape, checked before
/// anything is allocated: every error names the layer and says what to write instead.
///
/// The input reaches the first layer as an image only when that layer is a
/// convolution or a pooling; otherwise it is flat (an MLP on 28×28 images sees 784
/// features, as `x.view(-1, 784)` in PyTorch). After a convolution or pooling, the
/// shape stays an image through BatchNorm (then BatchNorm2d), activations and
/// dropout, until `flatten`.
public struct ModelPlan: Sendable {
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    /// The input of each layer, then the model's output (count + 1 entries).
    public let shapes: [FeatureShape]
    public let parameterCount: Int

    public init(input: FeatureShape, specs: [LayerSpec], maximumParameters: Int = 1 << 28) throws {
        var shape = input
        if let first = specs.first, !first.needsImage { shape = input.flattened }
        var shapes = [shape]
        var parameters = 0
        for (index, spec) in specs.enumerated() {
            func fail(_ text: String) -> Error { Error(description: "model.layers[\(index)] \"\(spec)\": \(text)") }
            let next: FeatureShape
            var weights = 0
            switch spec {
            case .linear(let n):
                guard !shape.spatial else {
                    throw fail("its input is a \(shape) feature map; put \"flatten\" before it (nn.Flatten in PyTorch)")
                }
                (weights, _) = n.multipliedReportingOverflow(by: shape.features + 1)
                next = FeatureShape(features: n)
            case .conv(let c, let k, let stride, let pad):
                guard shape.spatial else {
                    throw fail("needs an image input (channels × height × width) but gets \(shape.features) flat features; convolutions must come before \"flatten\" and \"linear\", and the data must have an image shape")
                }
                let h = (shape.height + 2 * pad - k) / stride + 1, w = (shape.width + 2 * pad - k) / stride + 1
                guard shape.height + 2 * pad >= k, shape.width + 2 * pad >= k, h >= 1, w >= 1 else {
                    throw fail("a \(k)×\(k) kernel does not fit the \(shape) input (padding \(pad)); use a smaller kernel or more padding")
                }
                (weights, _) = c.multipliedReportingOverflow(by: shape.channels * k * k + 1)
                next = FeatureShape(channels: c, height: h, width: w)
            case .maxPool(let k, let stride), .avgPool(let k, let stride):
                guard shape.spatial else { throw fail("needs an image input but gets \(shape.features) flat features") }
                guard shape.height >= k, shape.width >= k else {
                    throw fail("a \(k)×\(k) window does not fit the \(shape) input; use a smaller window")
                }
                next = FeatureShape(channels: shape.channels, height: (shape.height - k) / stride + 1, width: (shape.width - k) / stride + 1)
            case .flatten:
                next = shape.flattened
            case .batchNorm:
                weights = 2 * shape.channels
                next = shape
            case .maxout(let k):
                guard !shape.spatial else { throw fail("maxout works on flat features; put \"flatten\" before it") }
                guard shape.features % k == 0 else {
                    throw fail("\(shape.features) features do not split into \(k) pieces; make the layer before it a multiple of \(k) wide")
                }
                next = FeatureShape(features: shape.features / k)
            case .activation, .dropout:
                next = shape
            }
            guard next.features <= LayerSpec.maximumActivation else {
                throw fail("its output of \(next) = \(next.features) floats a sample is larger than \(LayerSpec.maximumActivation); use fewer channels or a stride")
            }
            let (sum, overflow) = parameters.addingReportingOverflow(weights)
            guard !overflow, weights >= 0, sum <= maximumParameters else {
                throw fail("the model has more than \(maximumParameters) parameters (1 GiB of weights); use narrower layers")
            }
            parameters = sum
            shape = next
            shapes.append(shape)
        }
        self.shapes = shapes
        parameterCount = parameters
    }

    public var output: FeatureShape { shapes.last! }
}
