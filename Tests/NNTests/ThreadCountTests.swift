import XCTest
import LockstepKernels
@testable import LockstepNN

/// Layers split work across the kernel pool; the result must not depend on the thread count.
final class ThreadCountTests: XCTestCase {
    private func run(threads: Int) throws -> [Float] {
        let model = Sequential(inputFeatures: 96, specs: [.linear(256), .batchNorm, .activation(.relu), .linear(10)])
        model.initializeParameters(seed: 3)
        var random = CounterRandom(seed: 9)
        let batch = 200
        let x = (0..<(batch * 96)).map { _ in random.nextSymmetric(2) }
        let labels = (0..<batch).map { Int32($0 % 10) }
        let ctx = StepContext(mode: .training, pool: ThreadPool(threads: threads))
        // Forward keeps a pointer to x for backward: both run inside one borrow of x's storage.
        let logits = try x.withUnsafeBufferPointer { xp -> [Float] in
            let out = try model.forward(xp.baseAddress!, batch: batch, context: ctx)
            _ = labels.withUnsafeBufferPointer {
                SoftmaxCrossEntropy.evaluate(logits: out, labels: $0.baseAddress!, batch: batch, classes: 10,
                                             globalCount: batch, dLogits: model.outputGradient)
            }
            let logits = Array(UnsafeBufferPointer(start: out, count: batch * 10))
            try model.backward(batch: batch, context: ctx)
            return logits
        }
        return model.gradients.array + logits
    }

    func testOneAndTwoThreadsGiveTheSameBits() throws {
        let one = try run(threads: 1)
        let two = try run(threads: 2)
        XCTAssertEqual(one.count, two.count)
        XCTAssertTrue(zip(one, two).allSatisfy { $0.bitPattern == $1.bitPattern }, "results differ between 1 and 2 threads")
    }
}
