import XCTest
import LockstepKernels
@testable import LockstepNN

/// Finite-difference checks of every layer's backward and of the loss.
/// Loss used: L(x, θ) = Σ y(x, θ)·w for a fixed random w, so dL/dy = w.
/// Central differences with h = 1e-2 in Float; tolerance 2e-3 absolute + 2e-2 relative.
final class GradientCheckTests: XCTestCase {
    private func randomArray(_ n: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var r = CounterRandom(seed: seed)
        return (0..<n).map { _ in r.nextSymmetric(scale) }
    }

    private func check(_ layer: Layer, batch: Int, input: [Float]? = nil, mode: Mode = .training,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let model = Sequential(layers: [layer])
        model.initializeParameters(seed: 7)
        // Perturb parameters away from their defaults (BatchNorm's γ=1, β=0).
        for i in 0..<model.parameterCount { model.parameters[i] += randomArray(model.parameterCount, seed: 99)[i] * 0.3 }
        let inF = layer.inputFeatures, outF = layer.outputFeatures
        var x = input ?? randomArray(batch * inF, seed: 3, scale: 2)
        let w = randomArray(batch * outF, seed: 5)
        let ctx = StepContext(mode: mode, step: 3, rank: 0, seed: 11)

        func loss() throws -> Double {
            let y = try x.withUnsafeBufferPointer { try model.forward($0.baseAddress!, batch: batch, context: ctx) }
            var s = 0.0
            for i in 0..<(batch * outF) { s += Double(y[i]) * Double(w[i]) }
            return s
        }

        _ = try loss()
        for i in 0..<(batch * outF) { model.outputGradient[i] = w[i] }
        // Backward of a one-layer model passes dx = nil; run the layer directly to get dx.
        var dx = [Float](repeating: 0, count: batch * inF)
        let y = try x.withUnsafeBufferPointer { try model.forward($0.baseAddress!, batch: batch, context: ctx) }
        try x.withUnsafeBufferPointer { xp in
            try w.withUnsafeBufferPointer { wp in
                try dx.withUnsafeMutableBufferPointer { dxp in
                    try layer.backward(wp.baseAddress!, batch: batch, input: xp.baseAddress!, output: y,
                                       dx: dxp.baseAddress!, context: ctx)
                }
            }
        }
        let analyticParams = model.gradients.array

        let h: Float = 1e-2
        var worst = 0.0
        for i in 0..<x.count {
            let saved = x[i]
            x[i] = saved + h; let up = try loss()
            x[i] = saved - h; let down = try loss()
            x[i] = saved
            let numeric = (up - down) / Double(2 * h)
            let err = abs(numeric - Double(dx[i]))
            worst = max(worst, err / (2e-3 + 2e-2 * abs(numeric)))
            XCTAssertEqual(numeric, Double(dx[i]), accuracy: 2e-3 + 2e-2 * abs(numeric),
                           "\(layer.summary) dx[\(i)]", file: file, line: line)
        }
        for i in 0..<model.parameterCount {
            let saved = model.parameters[i]
            model.parameters[i] = saved + h; let up = try loss()
            model.parameters[i] = saved - h; let down = try loss()
            model.parameters[i] = saved
            let numeric = (up - down) / Double(2 * h)
            XCTAssertEqual(numeric, Double(analyticParams[i]), accuracy: 2e-3 + 2e-2 * abs(numeric),
                           "\(layer.summary) dθ[\(i)]", file: file, line: line)
        }
        XCTAssertLessThanOrEqual(worst, 1, file: file, line: line)
    }

    func testLinear() throws { try check(Linear(inputFeatures: 5, outputFeatures: 4), batch: 3) }
    func testBatchNormTraining() throws { try check(BatchNorm(features: 4), batch: 6) }
    func testBatchNormEvaluation() throws { try check(BatchNorm(features: 4), batch: 3, mode: .evaluation) }
    func testSigmoid() throws { try check(Activation(.sigmoid, features: 4), batch: 3) }
    func testTanh() throws { try check(Activation(.tanh, features: 4), batch: 3) }

    /// Inputs kept away from the kink at 0 (|x| ≥ 0.1 > h).
    private func awayFromZero(_ n: Int) -> [Float] {
        randomArray(n, seed: 21, scale: 2).map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
    }
    func testReLU() throws { try check(Activation(.relu, features: 4), batch: 3, input: awayFromZero(12)) }
    func testLeakyReLU() throws { try check(Activation(.leakyRelu, features: 4), batch: 3, input: awayFromZero(12)) }

    func testMaxout() throws {
        // Pieces spaced ≥ 0.1 apart within each group, so no perturbation changes the arg-max.
        let x: [Float] = (0..<24).map { i in Float((i * 7) % 24) * 0.11 - 1.3 }
        try check(Maxout(inputFeatures: 8, pieces: 2), batch: 3, input: x)
    }

    func testDropout() throws { try check(Dropout(probability: 0.4, features: 6, layerIndex: 1), batch: 4) }

    func testConv2dPadded() throws {
        try check(Conv2d(input: FeatureShape(channels: 2, height: 5, width: 5), outChannels: 3, kernel: 3, stride: 1, pad: 1), batch: 2)
    }

    func testConv2dStrided() throws {
        try check(Conv2d(input: FeatureShape(channels: 2, height: 7, width: 6), outChannels: 2, kernel: 3, stride: 2, pad: 0), batch: 2)
    }

    func testConv2dAcrossChunks() throws {
        // More samples than one im2col chunk holds: the weight gradient sums over chunks.
        let conv = Conv2d(input: FeatureShape(channels: 1, height: 4, width: 4), outChannels: 2, kernel: 3, stride: 1, pad: 1)
        conv.columnBudget = 2 * conv.geometry.patch * conv.geometry.outPlane
        XCTAssertEqual(conv.chunkSamples, 2)
        try check(conv, batch: 5)
    }

    /// Distinct values ≥ 0.1 apart, so no perturbation moves a window's maximum.
    private func spaced(_ n: Int) -> [Float] { (0..<n).map { i in Float((i * 11) % n) * 0.13 - 2 } }

    func testMaxPool() throws {
        try check(MaxPool2d(input: FeatureShape(channels: 2, height: 4, width: 5), kernel: 2, stride: 2), batch: 2, input: spaced(80))
    }

    func testMaxPoolOverlapping() throws {
        try check(MaxPool2d(input: FeatureShape(channels: 1, height: 5, width: 5), kernel: 3, stride: 2), batch: 2, input: spaced(50))
    }

    func testAvgPool() throws {
        try check(AvgPool2d(input: FeatureShape(channels: 2, height: 4, width: 4), kernel: 2, stride: 2), batch: 2)
    }

    func testFlatten() throws { try check(Flatten(features: 6), batch: 2) }
    func testBatchNorm2dTraining() throws { try check(BatchNorm(features: 3, spatial: 4), batch: 3) }
    func testBatchNorm2dEvaluation() throws { try check(BatchNorm(features: 3, spatial: 4), batch: 2, mode: .evaluation) }

    func testSoftmaxCrossEntropyGradient() {
        let batch = 4, classes = 5, global = 10
        var z = randomArray(batch * classes, seed: 8, scale: 3)
        let labels: [Int32] = [0, 3, 4, 1]
        var grad = [Float](repeating: 0, count: batch * classes)
        func meanLoss() -> Double {
            z.withUnsafeBufferPointer { zp in labels.withUnsafeBufferPointer { lp in
                SoftmaxCrossEntropy.evaluate(logits: zp.baseAddress!, labels: lp.baseAddress!, batch: batch, classes: classes,
                                             globalCount: global, dLogits: nil).lossSum / Double(global)
            } }
        }
        z.withUnsafeBufferPointer { zp in labels.withUnsafeBufferPointer { lp in grad.withUnsafeMutableBufferPointer { gp in
            _ = SoftmaxCrossEntropy.evaluate(logits: zp.baseAddress!, labels: lp.baseAddress!, batch: batch, classes: classes,
                                             globalCount: global, dLogits: gp.baseAddress!)
        } } }
        let h: Float = 1e-2
        for i in 0..<z.count {
            let saved = z[i]
            z[i] = saved + h; let up = meanLoss()
            z[i] = saved - h; let down = meanLoss()
            z[i] = saved
            let numeric = (up - down) / Double(2 * h)
            XCTAssertEqual(numeric, Double(grad[i]), accuracy: 1e-4 + 1e-2 * abs(numeric), "dz[\(i)]")
        }
    }

    func testSoftmaxCrossEntropyIsStableForHugeLogits() {
        let z: [Float] = [1000, -1000, 0]
        let labels: [Int32] = [0]
        let r = z.withUnsafeBufferPointer { zp in labels.withUnsafeBufferPointer { lp in
            SoftmaxCrossEntropy.evaluate(logits: zp.baseAddress!, labels: lp.baseAddress!, batch: 1, classes: 3, globalCount: 1, dLogits: nil)
        } }
        XCTAssertEqual(r.lossSum, 0, accuracy: 1e-6)
        XCTAssertEqual(r.correct, 1)
    }
}
