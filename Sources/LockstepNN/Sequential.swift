import LockstepKernels

/// A model as a sequence of layers, with every trainable float in one flat arena.
///
/// Layer i's parameters occupy `parameterRanges[i]` of `parameters` (and the
/// same range of `gradients`), in layer order, so the all-reduce and the
/// optimizer work on a few large contiguous ranges and a ZeRO shard is a slice.
public final class Sequential {
    public let layers: [Layer]
    public let inputFeatures: Int
    /// The shape the first layer reads (an image for a convolutional model).
    public let inputShape: FeatureShape
    public let parameters: FloatBuffer
    public let gradients: FloatBuffer
    public let parameterRanges: [Range<Int>]

    private var activations: [FloatBuffer] = []   // output of layer i
    private var gradBuffers: [FloatBuffer] = []   // dL/d(output of layer i)
    private var capacity = 0
    private var lastInput: UnsafePointer<Float>?

    /// With `sharedParameters`, the model reads its parameters from that arena (another
    /// model's, for a replica on another thread) and keeps only its gradients to itself.
    public init(layers: [Layer], sharedParameters: FloatBuffer? = nil, inputShape: FeatureShape? = nil) {
        precondition(!layers.isEmpty, "a model needs at least one layer")
        self.layers = layers
        inputFeatures = layers[0].inputFeatures
        self.inputShape = inputShape ?? FeatureShape(features: layers[0].inputFeatures)
        precondition(self.inputShape.features == inputFeatures, "input shape \(self.inputShape) does not match the first layer")
        var ranges: [Range<Int>] = []
        var offset = 0
        for layer in layers {
            ranges.append(offset..<(offset + layer.parameterCount))
            offset += layer.parameterCount
        }
        parameterRanges = ranges
        if let sharedParameters {
            precondition(sharedParameters.count == offset, "shared parameter arena has \(sharedParameters.count) floats, the layers need \(offset)")
        }
        parameters = sharedParameters ?? FloatBuffer(count: offset)
        gradients = FloatBuffer(count: offset)
        for (layer, range) in zip(layers, ranges) {
            layer.bind(parameters: parameters.pointer + range.lowerBound, gradients: gradients.pointer + range.lowerBound)
        }
    }

    /// Builds the layers of `specs` after a flat input of `inputFeatures` (a model with
    /// no image layers; a spec list that does not fit stops the process).
    public convenience init(inputFeatures: Int, specs: [LayerSpec], synchronizedBatchNorm: Bool = true,
                            sharingParametersWith owner: Sequential? = nil) {
        let built: (layers: [Layer], input: FeatureShape)
        do {
            built = try Sequential.layers(input: FeatureShape(features: inputFeatures), specs: specs, synchronizedBatchNorm: synchronizedBatchNorm)
        } catch {
            preconditionFailure("\(error)")
        }
        self.init(layers: built.layers, sharedParameters: owner?.parameters, inputShape: built.input)
    }

    /// Builds the layers of `specs` after an input of shape `input` (see `ModelPlan` for
    /// when the input is read as an image); a spec list that does not fit throws `ModelPlan.Error`.
    public convenience init(input: FeatureShape, specs: [LayerSpec], synchronizedBatchNorm: Bool = true,
                            sharingParametersWith owner: Sequential? = nil) throws {
        let built = try Sequential.layers(input: input, specs: specs, synchronizedBatchNorm: synchronizedBatchNorm)
        self.init(layers: built.layers, sharedParameters: owner?.parameters, inputShape: built.input)
    }

    /// The layers of `specs` and the shape the first of them reads.
    static func layers(input: FeatureShape, specs: [LayerSpec], synchronizedBatchNorm: Bool) throws -> (layers: [Layer], input: FeatureShape) {
        let plan = try ModelPlan(input: input, specs: specs)
        var layers: [Layer] = []
        for (index, spec) in specs.enumerated() {
            let shape = plan.shapes[index], width = shape.features
            let layer: Layer
            switch spec {
            case .linear(let n): layer = Linear(inputFeatures: width, outputFeatures: n)
            case .batchNorm:
                layer = BatchNorm(features: shape.channels, spatial: shape.spatial ? shape.plane : 1, synchronized: synchronizedBatchNorm)
            case .activation(let kind): layer = Activation(kind, features: width)
            case .maxout(let k): layer = Maxout(inputFeatures: width, pieces: k)
            case .dropout(let p): layer = Dropout(probability: p, features: width, layerIndex: index)
            case .conv(let c, let k, let stride, let pad):
                layer = Conv2d(input: shape, outChannels: c, kernel: k, stride: stride, pad: pad)
            case .maxPool(let k, let stride): layer = MaxPool2d(input: shape, kernel: k, stride: stride)
            case .avgPool(let k, let stride): layer = AvgPool2d(input: shape, kernel: k, stride: stride)
            case .flatten: layer = Flatten(features: width)
            }
            layers.append(layer)
        }
        return (layers, plan.shapes[0])
    }

    /// Copies the non-trainable state (BatchNorm running statistics and batch counts)
    /// of a model with the same layers, such as the owner of a replica's parameters.
    public func copyBuffers(from other: Sequential) {
        precondition(other.layers.count == layers.count, "copyBuffers: models differ in layers")
        for (mine, theirs) in zip(layers, other.layers) {
            for (a, b) in zip(mine.bufferSlots, theirs.bufferSlots) {
                precondition(a.count == b.count, "copyBuffers: \(a.suffix) differs in size")
                a.pointer.update(from: b.pointer, count: a.count)
            }
            if let a = mine as? BatchNorm, let b = theirs as? BatchNorm { a.batchesTracked = b.batchesTracked }
        }
    }

    public var parameterCount: Int { parameters.count }
    public var outputFeatures: Int { layers.last!.outputFeatures }

    /// PyTorch's default initialization, from a seeded stream (identical on every worker).
    public func initializeParameters(seed: UInt64) {
        for (i, layer) in layers.enumerated() {
            var random = CounterRandom(seed: seed, 0x1A7E, UInt64(i))
            layer.initializeParameters(random: &random)
        }
    }

    private func ensureCapacity(_ batch: Int) {
        guard batch > capacity else { return }
        capacity = batch
        activations = layers.map { FloatBuffer(count: batch * $0.outputFeatures) }
        gradBuffers = layers.map { FloatBuffer(count: batch * $0.outputFeatures) }
    }

    /// Runs every layer; returns the logits (valid until the next call).
    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: StepContext) throws -> UnsafeMutablePointer<Float> {
        try forward(x, batch: batch, context: context, from: 0)
    }

    /// Runs layers `first..<end` only (`end` nil: to the last layer): layers before
    /// `first` must already have written their outputs (`output(of:)`) for this batch.
    /// `x` is still the model's input. Returns the output of layer `end - 1`.
    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: StepContext, from first: Int,
                        to end: Int? = nil) throws -> UnsafeMutablePointer<Float> {
        let end = end ?? layers.count
        precondition(first >= 0 && first < end && end <= layers.count, "forward over layers \(first)..<\(end) of \(layers.count)")
        ensureCapacity(batch)
        lastInput = x
        var input = first == 0 ? x : UnsafePointer(activations[first - 1].pointer)
        for i in first..<end {
            try layers[i].forward(input, batch: batch, output: activations[i].pointer, context: context)
            input = UnsafePointer(activations[i].pointer)
        }
        return activations[end - 1].pointer
    }

    /// Output buffer of layer `i` (room for the largest batch seen).
    public func output(of i: Int, batch: Int) -> UnsafeMutablePointer<Float> {
        ensureCapacity(batch)
        return activations[i].pointer
    }

    /// Output buffer of layer `i` as the last forward left it (no resizing: safe to read
    /// from another thread while this model's own thread runs).
    public func lastOutput(of i: Int) -> UnsafeMutablePointer<Float> { activations[i].pointer }

    /// dL/d(output of layer `i`) after `backward`.
    public func outputGradient(of i: Int) -> UnsafeMutablePointer<Float> { gradBuffers[i].pointer }

    /// Buffer for dL/d(logits) of the last forward's batch.
    public var outputGradient: UnsafeMutablePointer<Float> { gradBuffers[layers.count - 1].pointer }

    /// Backward from `outputGradient`, last layer first, down to layer `last` (0: all).
    /// `layerDone(i)` is called as soon as layer i's parameter gradients are final
    /// (for bucketed all-reduce).
    /// With `from top`, starts at layer `top`, whose output gradient must be in `outputGradient(of: top)`.
    public func backward(batch: Int, context: StepContext, from top: Int? = nil, through last: Int = 0,
                         layerDone: ((Int) -> Void)? = nil) throws {
        guard let x = lastInput else { preconditionFailure("backward before forward") }
        let top = top ?? layers.count - 1
        guard top >= last else { return }
        for i in stride(from: top, through: last, by: -1) {
            let input = i == 0 ? x : UnsafePointer(activations[i - 1].pointer)
            let dx: UnsafeMutablePointer<Float>? = i == 0 ? nil : gradBuffers[i - 1].pointer
            try layers[i].backward(gradBuffers[i].pointer, batch: batch, input: input, output: activations[i].pointer,
                                   dx: dx, context: context)
            layerDone?(i)
        }
    }

    /// Every tensor of the model in PyTorch `state_dict` order: `"<index>.<name>"`.
    public var stateTensors: [(name: String, slot: TensorSlot, trainable: Bool)] {
        var out: [(String, TensorSlot, Bool)] = []
        for (i, layer) in layers.enumerated() {
            for s in layer.parameterSlots { out.append(("\(i).\(s.suffix)", s, true)) }
            for s in layer.bufferSlots { out.append(("\(i).\(s.suffix)", s, false)) }
        }
        return out
    }

    public var batchNormLayers: [(index: Int, layer: BatchNorm)] {
        layers.enumerated().compactMap { i, l in (l as? BatchNorm).map { (i, $0) } }
    }

    public var summary: String { layers.map(\.summary).joined(separator: " → ") }
}
