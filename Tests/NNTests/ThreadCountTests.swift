import XCTest
import LockstepKernels
@testable import LockstepNN

/// Layers split work across the kernel pool; the result must not depend on the thread count.
final class ThreadCountTests: XCTestCase {
    private func run(threads: Int) throws -> [Float] {
        let saved = ThreadPool.shared
        ThreadPool.shared = ThreadPool(threads: threads)
        defer { ThreadPool.shared = saved }
        let model = Sequential(inputFeatures: 96, specs: [.linear(256), .batchNorm, .activation(.relu), .linear(10)])
        model.initializeParameters(seed: 3)
        var random = CounterRandom(seed: 9)
        let batch = 200
        let x = (0..<(batch * 96)).map { _ in random.nextSymmetric(2) }
        let labels = (0..<batch).map { Int32($0 % 10) }
        let ctx = StepContext(mode: .training)
        let logits = try x.withUnsafeBufferPointer { try model.forward($0.baseAddress!, batch: batch, context: ctx) }
        _ = labels.withUnsafeBufferPointer {
            SoftmaxCrossEntropy.evaluate(logits: logits, labels: $0.baseAddress!, batch: batch, classes: 10,
                                         globalCount: batch, dLogits: model.outputGradient)
        }
        try model.backward(batch: batch, context: ctx)
        return model.gradients.array + Array(UnsafeBufferPointer(start: logits, count: batch * 10))
    }

    func testOneAndTwoThreadsGiveTheSameBits() throws {
        let one = try run(threads: 1)
        let two = try run(threads: 2)
        XCTAssertEqual(one.count, two.count)
        XCTAssertTrue(zip(one, two).allSatisfy { $0.bitPattern == $1.bitPattern }, "results differ between 1 and 2 threads")
    }
}
