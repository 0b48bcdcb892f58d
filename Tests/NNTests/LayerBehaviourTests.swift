import XCTest
import LockstepKernels
@testable import LockstepNN

final class LayerBehaviourTests: XCTestCase {
    func testBatchNormTrainingNormalizesAndUpdatesRunningStatistics() throws {
        let bn = BatchNorm(features: 2)
        let model = Sequential(layers: [bn])
        model.initializeParameters(seed: 0)
        let x: [Float] = [1, 10, 2, 20, 3, 30, 6, 40]  // column 0: 1,2,3,6 ; column 1: 10,20,30,40
        let y = try x.withUnsafeBufferPointer { try model.forward($0.baseAddress!, batch: 4, context: StepContext(mode: .training)) }
        // Column 0: mean 3, biased var 3.5
        let expected0 = [1, 2, 3, 6].map { (Float($0) - 3) / (3.5 + 1e-5).squareRoot() }
        for r in 0..<4 { XCTAssertEqual(y[r * 2], expected0[r], accuracy: 1e-5) }
        XCTAssertEqual(bn.runningMean[0], 0.1 * 3, accuracy: 1e-6)
        XCTAssertEqual(bn.runningMean[1], 0.1 * 25, accuracy: 1e-5)
        // running var uses the unbiased variance: 3.5 * 4/3
        XCTAssertEqual(bn.runningVar[0], 0.9 + 0.1 * 3.5 * 4 / 3, accuracy: 1e-5)
        XCTAssertEqual(bn.batchesTracked, 1)

        // Evaluation uses running statistics and leaves them alone.
        let before = bn.runningMean.array
        let ye = try x.withUnsafeBufferPointer { try model.forward($0.baseAddress!, batch: 4, context: StepContext(mode: .evaluation)) }
        XCTAssertEqual(ye[0], (1 - bn.runningMean[0]) / (bn.runningVar[0] + 1e-5).squareRoot(), accuracy: 1e-5)
        XCTAssertEqual(bn.runningMean.array, before)
    }

    func testDropoutStatisticsAndDeterminism() throws {
        let p: Float = 0.3, n = 100_000
        let drop = Dropout(probability: p, features: n, layerIndex: 2)
        let x = [Float](repeating: 1, count: n)
        var y1 = [Float](repeating: 0, count: n), y2 = y1, y3 = y1
        let ctx = StepContext(mode: .training, step: 5, rank: 1, seed: 42)
        try x.withUnsafeBufferPointer { xp in
            try y1.withUnsafeMutableBufferPointer { try drop.forward(xp.baseAddress!, batch: 1, output: $0.baseAddress!, context: ctx) }
            try y2.withUnsafeMutableBufferPointer { try drop.forward(xp.baseAddress!, batch: 1, output: $0.baseAddress!, context: ctx) }
            var other = ctx; other.step = 6
            try y3.withUnsafeMutableBufferPointer { try drop.forward(xp.baseAddress!, batch: 1, output: $0.baseAddress!, context: other) }
        }
        let kept = y1.filter { $0 != 0 }.count
        let keptFraction = Double(kept) / Double(n)
        // Binomial std of the kept fraction: sqrt(0.21/1e5) ≈ 0.0014; allow 5σ.
        XCTAssertEqual(keptFraction, 0.7, accuracy: 0.0075)
        XCTAssertTrue(y1.allSatisfy { $0 == 0 || abs($0 - 1 / 0.7) < 1e-6 })
        XCTAssertEqual(y1.reduce(0, +) / Float(n), 1, accuracy: 0.015)   // inverted dropout keeps the mean
        XCTAssertEqual(y1, y2, "same (seed, rank, step) must give the same mask")
        XCTAssertNotEqual(y1, y3, "another step must give another mask")

        var ye = [Float](repeating: 0, count: n)
        try x.withUnsafeBufferPointer { xp in
            try ye.withUnsafeMutableBufferPointer {
                try drop.forward(xp.baseAddress!, batch: 1, output: $0.baseAddress!, context: StepContext(mode: .evaluation))
            }
        }
        XCTAssertEqual(ye, x)
    }

    func testMaxoutTiesGoToLowestPiece() throws {
        let m = Maxout(inputFeatures: 4, pieces: 2)
        let x: [Float] = [2, 2, -1, 3]
        var y = [Float](repeating: 0, count: 2)
        var dx = [Float](repeating: 9, count: 4)
        let dy: [Float] = [1, 1]
        let ctx = StepContext(mode: .training)
        try x.withUnsafeBufferPointer { xp in
            try y.withUnsafeMutableBufferPointer { try m.forward(xp.baseAddress!, batch: 1, output: $0.baseAddress!, context: ctx) }
            try dy.withUnsafeBufferPointer { dyp in
                try y.withUnsafeBufferPointer { yp in
                    try dx.withUnsafeMutableBufferPointer {
                        try m.backward(dyp.baseAddress!, batch: 1, input: xp.baseAddress!, output: yp.baseAddress!, dx: $0.baseAddress!, context: ctx)
                    }
                }
            }
        }
        XCTAssertEqual(y, [2, 3])
        XCTAssertEqual(dx, [1, 0, 0, 1])
    }

    func testLayerSpecParsingAndActivationSubstitution() throws {
        let specs = try ["linear 512", "batchnorm", "relu", "linear 10"].map(LayerSpec.init(parsing:))
        XCTAssertEqual(specs, [.linear(512), .batchNorm, .activation(.relu), .linear(10)])
        XCTAssertEqual(try LayerSpec.substituting(activation: "tanh", maxoutPieces: 2, in: specs),
                       [.linear(512), .batchNorm, .activation(.tanh), .linear(10)])
        XCTAssertEqual(try LayerSpec.substituting(activation: "maxout", maxoutPieces: 3, in: specs),
                       [.linear(1536), .batchNorm, .maxout(3), .linear(10)])
        XCTAssertThrowsError(try LayerSpec(parsing: "softplus"))
        XCTAssertThrowsError(try LayerSpec(parsing: "dropout 1.5"))
        XCTAssertThrowsError(try LayerSpec.substituting(activation: "gelu", maxoutPieces: 2, in: specs))
    }

    func testStateDictNamesFollowSequentialIndices() {
        let model = Sequential(inputFeatures: 784, specs: [.linear(512), .batchNorm, .activation(.relu), .linear(10)])
        XCTAssertEqual(model.stateTensors.map(\.name),
                       ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "3.weight", "3.bias"])
        XCTAssertEqual(model.stateTensors[0].slot.shape, [512, 784])
        XCTAssertEqual(model.parameterCount, 512 * 784 + 512 + 1024 + 10 * 512 + 10)
    }
}
