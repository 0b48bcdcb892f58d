import XCTest
import LockstepKernels
@testable import LockstepNN

/// Convolutional models: against torch (TorchConvFixture, from tools/gen_conv_fixture.py),
/// independent of the thread count, and the shape errors of a layer list.
final class ConvNetTests: XCTestCase {
    private func fixtureModel() throws -> Sequential {
        let specs = try TorchConvFixture.layers.map(LayerSpec.init(parsing:))
        let model = try Sequential(input: FeatureShape(channels: 2, height: 8, width: 8), specs: specs)
        for (name, slot, _) in model.stateTensors {
            let values = try XCTUnwrap(TorchConvFixture.state[name], "fixture lacks \(name)")
            XCTAssertEqual(values.count, slot.count, name)
            values.withUnsafeBufferPointer { slot.pointer.update(from: $0.baseAddress!, count: slot.count) }
        }
        return model
    }

    /// Same weights and batch as torch's nn.Sequential: outputs and every parameter gradient within 1e-4 relative.
    func testForwardAndBackwardMatchTorch() throws {
        let model = try fixtureModel()
        XCTAssertEqual(model.stateTensors.map(\.name).filter { !$0.hasSuffix("running_mean") && !$0.hasSuffix("running_var") },
                       ["0.weight", "0.bias", "1.weight", "1.bias", "4.weight", "4.bias", "7.weight", "7.bias"])
        let batch = 4, context = StepContext(mode: .training)
        let y = try TorchConvFixture.input.withUnsafeBufferPointer { try model.forward($0.baseAddress!, batch: batch, context: context) }
        var worst: Float = 0
        func compare(_ actual: Float, _ expected: Float, _ what: String) {
            let scale = max(abs(expected), 1e-2)
            worst = max(worst, abs(actual - expected) / scale)
            XCTAssertLessThanOrEqual(abs(actual - expected), 1e-4 * scale, "\(what): \(actual) vs torch \(expected)")
        }
        for (i, e) in TorchConvFixture.output.enumerated() { compare(y[i], e, "output[\(i)]") }
        for (i, w) in TorchConvFixture.outputWeights.enumerated() { model.outputGradient[i] = w }
        try model.backward(batch: batch, context: context)
        for (name, slot, trainable) in model.stateTensors where trainable {
            let expected = try XCTUnwrap(TorchConvFixture.gradients[name])
            let offset = slot.pointer - model.parameters.pointer
            for i in 0..<slot.count { compare(model.gradients[offset + i], expected[i], "d\(name)[\(i)]") }
        }
        print("torch conv fixture: worst relative difference \(worst)")
    }

    /// Kernel threads split samples and GEMM tiles, never a sum: 1 and 3 threads give the same bits.
    func testResultsIndependentOfThreadCount() throws {
        let specs = try ["conv 8 3 pad 1", "batchnorm", "relu", "maxpool 2", "conv 6 3 stride 2", "avgpool 2", "flatten", "linear 4"]
            .map(LayerSpec.init(parsing:))
        let input = FeatureShape(channels: 3, height: 14, width: 14), batch = 9
        var r = CounterRandom(seed: 5)
        let x = (0..<(batch * input.features)).map { _ in r.nextSymmetric(1) }
        func run(_ threads: Int) throws -> ([Float], [Float]) {
            let model = try Sequential(input: input, specs: specs)
            model.initializeParameters(seed: 1)
            let context = StepContext(mode: .training, pool: ThreadPool(threads: threads))
            let y = try x.withUnsafeBufferPointer { try model.forward($0.baseAddress!, batch: batch, context: context) }
            let out = Array(UnsafeBufferPointer(start: y, count: batch * 4))
            for i in 0..<(batch * 4) { model.outputGradient[i] = Float(i % 7) - 3 }
            try model.backward(batch: batch, context: context)
            return (out, model.gradients.array)
        }
        let (y1, g1) = try run(1), (y3, g3) = try run(3)
        XCTAssertEqual(y1.map(\.bitPattern), y3.map(\.bitPattern))
        XCTAssertEqual(g1.map(\.bitPattern), g3.map(\.bitPattern))
    }

    /// The unrolled 2×2 max pool picks the same value and the same maximum as PyTorch's
    /// rule (a later value wins when greater or NaN), through ties and NaN, at several widths.
    func testTwoByTwoPoolMatchesTheWindowRule() {
        for width in [2, 8, 14, 16, 24, 30, 34] {
            let g = ConvGeometry(channels: 3, height: 6, width: width, kernel: 2, stride: 2, pad: 0)
            var random = CounterRandom(seed: UInt64(width))
            var x = (0..<g.inputCount).map { _ in Float(Int(random.nextSymmetric(3).rounded())) }  // many ties
            for i in stride(from: 5, to: x.count, by: 11) { x[i] = .nan }
            let outputs = g.channels * g.outPlane
            var y = [Float](repeating: 0, count: outputs), idx = [Int32](repeating: -1, count: outputs)
            x.withUnsafeBufferPointer { xs in MaxPool2d.twoByTwo(xs.baseAddress!, g, &y, &idx) }
            var o = 0
            for c in 0..<g.channels {
                for oh in 0..<g.outHeight {
                    for ow in 0..<g.outWidth {
                        let first = c * g.height * width + 2 * oh * width + 2 * ow
                        var best = first
                        for i in [first + 1, first + width, first + width + 1] where x[i] > x[best] || x[i].isNaN { best = i }
                        XCTAssertEqual(idx[o], Int32(best), "width \(width), output \(o)")
                        XCTAssertEqual(y[o].bitPattern, x[best].bitPattern, "width \(width), output \(o)")
                        o += 1
                    }
                }
            }
        }
    }

    func testLayerSpecsParseAndPrint() throws {
        XCTAssertEqual(try LayerSpec(parsing: "conv 32 3"), .conv(channels: 32, kernel: 3, stride: 1, pad: 0))
        XCTAssertEqual(try LayerSpec(parsing: "conv 16 5 stride 2 pad 2"), .conv(channels: 16, kernel: 5, stride: 2, pad: 2))
        XCTAssertEqual(try LayerSpec(parsing: "maxpool 3 stride 2"), .maxPool(kernel: 3, stride: 2))
        XCTAssertEqual(try LayerSpec(parsing: "avgpool 2"), .avgPool(kernel: 2, stride: 2))
        XCTAssertEqual(try LayerSpec(parsing: "flatten"), .flatten)
        for text in ["conv 16 5 stride 2 pad 2", "maxpool 3 stride 2", "avgpool 2", "conv 8 3", "flatten"] {
            XCTAssertEqual(try LayerSpec(parsing: text).description, text)
        }
        for bad in ["conv 32", "conv 32 3 stride", "conv 32 3 dilation 2", "conv 0 3", "maxpool", "flatten 2", "conv 8 3 pad -1"] {
            XCTAssertThrowsError(try LayerSpec(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".contains("layer \"\(bad)\""), "\(bad): \(error)")
            }
        }
    }

    func testPlanNamesTheLayerThatDoesNotFit() throws {
        func error(_ layers: [String], _ input: FeatureShape) -> String {
            do {
                _ = try ModelPlan(input: input, specs: try layers.map(LayerSpec.init(parsing:)))
                return ""
            } catch { return "\(error)" }
        }
        let image = FeatureShape(channels: 1, height: 28, width: 28)
        XCTAssertTrue(error(["conv 4 3", "linear 10"], image).contains("model.layers[1] \"linear 10\""))
        XCTAssertTrue(error(["conv 4 3", "linear 10"], image).contains("flatten"))
        XCTAssertTrue(error(["linear 10", "conv 4 3"], image).contains("model.layers[1]"))
        XCTAssertTrue(error(["conv 4 3"], FeatureShape(features: 64)).contains("image input"))
        XCTAssertTrue(error(["conv 4 30"], image).contains("does not fit"))
        XCTAssertTrue(error(["maxpool 29"], image).contains("does not fit"))
        XCTAssertEqual(error(["conv 4 3", "batchnorm", "maxpool 2", "flatten", "linear 10"], image), "")
        let plan = try ModelPlan(input: image, specs: ["conv 32 3 pad 1", "maxpool 2", "conv 64 3 pad 1", "maxpool 2", "flatten", "linear 10"]
            .map(LayerSpec.init(parsing:)))
        XCTAssertEqual(plan.shapes[4], FeatureShape(channels: 64, height: 7, width: 7))
        XCTAssertEqual(plan.parameterCount, 32 * 9 + 32 + 64 * 32 * 9 + 64 + 3136 * 10 + 10)
        // An MLP reads the image as flat features.
        XCTAssertEqual(try ModelPlan(input: image, specs: [.linear(10)]).shapes[0], FeatureShape(features: 784))
    }
}
