import Foundation
import LockstepKernels

/// Softmax cross-entropy with the log-sum-exp shift.
///
/// The loss is a mean over the *global* batch: a worker passes `globalCount`,
/// so its gradient `(softmax(z) - onehot(y)) / globalCount` sums across workers
/// to the exact gradient of the global mean (docs/MATH.md, "Loss").
public enum SoftmaxCrossEntropy {
    /// Returns the *sum* of per-sample losses over this batch and the number of correct
    /// predictions; writes the gradient into `dLogits` when it is non-nil.
    public static func evaluate(
        logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int,
        globalCount: Int, dLogits: UnsafeMutablePointer<Float>?
    ) -> (lossSum: Double, correct: Int) {
        var lossSum = 0.0
        var correct = 0
        let weight = 1 / Float(max(globalCount, 1))
        for r in 0..<batch {
            let z = logits + r * classes
            let label = Int(labels[r])
            var maxValue = z[0], argmax = 0
            for j in 1..<classes where z[j] > maxValue { maxValue = z[j]; argmax = j }
            if argmax == label { correct += 1 }
            var sum: Float = 0
            for j in 0..<classes { sum += expf(z[j] - maxValue) }
            let logSum = logf(sum)
            lossSum += Double(logSum - (z[label] - maxValue))
            if let dLogits {
                let g = dLogits + r * classes
                let inv = 1 / sum
                for j in 0..<classes { g[j] = expf(z[j] - maxValue) * inv * weight }
                g[label] -= weight
            }
        }
        return (lossSum, correct)
    }
}
