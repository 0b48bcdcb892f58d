/// What turns a file's rows into model inputs and a model's outputs into class names:
/// the sample shape, the class names of string labels, and the standardization
/// learned from the training split. Saved in every checkpoint's metadata
/// (`lockstep.data`, JSON) so `lockstep predict` reads new rows as training did.
public struct DataTransform: Codable, Equatable, Sendable {
    public var shape: [Int]
    public var classes: Int
    /// Class names in index order, for string labels; nil when labels are integers.
    public var classNames: [String]?
    /// The label column of a CSV source (new rows to predict may carry it; it is skipped).
    public var label: String?
    /// Raw values are multiplied by `scale` (idx: 1/255), then standardized.
    public var scale: Double = 1
    /// One entry (a scalar for every feature) or one per feature; nil without standardization.
    public var mean: [Double]?
    public var std: [Double]?

    public init(shape: [Int], classes: Int, classNames: [String]? = nil) {
        self.shape = shape
        self.classes = classes
        self.classNames = classNames
    }

    public var features: Int { shape.reduce(1, *) }

    /// The name of class `index`: its string label, or the index itself.
    public func name(of index: Int) -> String { classNames.map { $0[index] } ?? String(index) }

    /// Per-column statistics of `values` (`rows × features`), in Double; a constant column keeps std 1.
    public mutating func learnStandardization(_ values: [Float], rows: Int) {
        let f = features
        var mean = [Double](repeating: 0, count: f), squares = [Double](repeating: 0, count: f)
        values.withUnsafeBufferPointer { v in
            for r in 0..<rows { for j in 0..<f { mean[j] += Double(v[r * f + j]) * scale } }
            for j in 0..<f { mean[j] /= Double(max(rows, 1)) }
            for r in 0..<rows { for j in 0..<f { let d = Double(v[r * f + j]) * scale - mean[j]; squares[j] += d * d } }
        }
        self.mean = mean
        std = squares.map { s in let v = (s / Double(max(rows, 1))).squareRoot(); return v > 0 ? v : 1 }
    }

    /// Applies the scale and standardization in place to `values` (`features` a row).
    public func apply(_ values: inout [Float]) {
        guard scale != 1 || mean != nil else { return }
        let f = features, m = mean ?? [0], s = std ?? [1], scale = self.scale
        let perFeature = m.count == f && f > 1
        values.withUnsafeMutableBufferPointer { v in
            for i in 0..<v.count {
                let j = perFeature ? i % f : 0
                v[i] = Float((Double(v[i]) * scale - m[j]) / s[j])
            }
        }
    }
}
