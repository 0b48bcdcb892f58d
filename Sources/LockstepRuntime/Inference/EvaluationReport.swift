import Foundation
import LockstepData
import LockstepKernels
import LockstepNN

/// Accuracy, mean loss, per-class precision and recall and the confusion matrix of a
/// model on a labelled split (`lockstep eval`), with the trainer's evaluation batches.
public struct EvaluationReport: Codable, Equatable, Sendable {
    public struct ClassScore: Codable, Equatable, Sendable {
        public var `class`: String
        public var precision: Double
        public var recall: Double
        /// Samples of this class in the split.
        public var support: Int
    }

    public var samples: Int
    public var accuracy: Double
    public var loss: Double
    public var perClass: [ClassScore]
    /// `confusion[true class][predicted class]`.
    public var confusion: [[Int]]

    enum CodingKeys: String, CodingKey {
        case samples, accuracy, loss, perClass = "per_class", confusion
    }

    public init(model: TrainedModel, data: Dataset, batch: Int, pool: ThreadPool) throws {
        let classes = model.transform.classes, f = model.model.inputFeatures
        guard data.features == f else {
            throw LockstepError("the data has \(data.features) values a sample, the model reads \(f)")
        }
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var lossSum = 0.0
        let context = StepContext(mode: .evaluation, pool: pool)
        try data.images.withUnsafeBufferPointer { x in
            try data.labels.withUnsafeBufferPointer { y in
                var start = 0
                while start < data.count {
                    let n = min(batch, data.count - start)
                    let logits = try model.model.forward(x.baseAddress! + start * f, batch: n, context: context)
                    lossSum += SoftmaxCrossEntropy.evaluate(logits: logits, labels: y.baseAddress! + start, batch: n, classes: classes,
                                                            globalCount: n, dLogits: nil).lossSum
                    for r in 0..<n {
                        let z = logits + r * classes
                        var best = 0
                        for j in 1..<classes where z[j] > z[best] { best = j }
                        confusion[Int(y[start + r])][best] += 1
                    }
                    start += n
                }
            }
        }
        samples = data.count
        let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
        accuracy = Double(correct) / Double(max(data.count, 1))
        loss = lossSum / Double(max(data.count, 1))
        perClass = (0..<classes).map { c in
            let predicted = (0..<classes).reduce(0) { $0 + confusion[$1][c] }
            let actual = confusion[c].reduce(0, +)
            return ClassScore(class: model.transform.name(of: c),
                              precision: predicted > 0 ? Double(confusion[c][c]) / Double(predicted) : 0,
                              recall: actual > 0 ? Double(confusion[c][c]) / Double(actual) : 0, support: actual)
        }
        self.confusion = confusion
    }

    /// The terminal table: summary line, per-class scores, confusion matrix.
    public var table: String {
        var lines = [String(format: "test accuracy %.2f%% (%d samples), loss %.4f", 100 * accuracy, samples, loss), ""]
        let width = max(5, perClass.map(\.class.count).max() ?? 5)
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        lines.append(pad("class", width) + "  precision  recall  support")
        for s in perClass {
            lines.append(pad(s.class, width) + pad(String(format: "%.4f", s.precision), 11) + pad(String(format: "%.4f", s.recall), 8)
                         + pad(String(s.support), 9))
        }
        lines.append("")
        lines.append("confusion (rows: true class, columns: predicted)")
        let cell = max(5, String(confusion.flatMap { $0 }.max() ?? 0).count + 1)
        lines.append(pad("", width) + perClass.map { pad(String($0.class.prefix(cell - 1)), cell) }.joined())
        for (i, row) in confusion.enumerated() {
            lines.append(pad(perClass[i].class, width) + row.map { pad(String($0), cell) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}
