import LockstepBase
/// A classification data set in memory: `count` rows of `features` floats, one label each.
public struct Dataset: Sendable {
    public let count: Int
    public let features: Int
    public let classes: Int
    /// `count × features`, row-major.
    public var images: [Float]
    /// Class indices in `0..<classes`.
    public let labels: [Int32]
    /// One sample's dimensions as the data gives them: `[C, H, W]` or `[H, W]` for images, `[F]` for a table row.
    public let sampleShape: [Int]
    /// How the files' values became these rows (standardization, class names), for checkpoints.
    public var transform: DataTransform?

    public init(count: Int, features: Int, classes: Int, images: [Float], labels: [Int32], sampleShape: [Int]? = nil) {
        precondition(images.count == count * features, "Dataset: \(images.count) values for \(count)×\(features)")
        precondition(labels.count == count, "Dataset: \(labels.count) labels for \(count) rows")
        self.count = count
        self.features = features
        self.classes = classes
        self.images = images
        self.labels = labels
        self.sampleShape = sampleShape ?? [features]
        precondition(self.sampleShape.reduce(1, *) == features, "Dataset: shape \(self.sampleShape) for \(features) features")
    }
}

/// A learnable synthetic task for benchmarks and tests: each class has a
/// Gaussian mean (entries N(0, 1)); a sample is its class mean plus N(0, σ²)
/// noise with σ = 2 (overlapping, but well above chance for a linear model).
public enum SyntheticDataset {
    public static func make(count: Int, features: Int, classes: Int, seed: UInt64) -> Dataset {
        precondition(count >= 0 && features > 0 && classes > 0, "SyntheticDataset: bad shape")
        var meanRNG = SplitMix64(seed: SplitMix64.derive(seed, 1))
        var means = [Float](repeating: 0, count: classes * features)
        for i in 0..<means.count { means[i] = meanRNG.nextGaussian() }
        var rng = SplitMix64(seed: SplitMix64.derive(seed, 2))
        var labels = [Int32](repeating: 0, count: count)
        var images = [Float](repeating: 0, count: count * features)
        images.withUnsafeMutableBufferPointer { x in
            for r in 0..<count {
                let c = rng.nextInt(below: classes)
                labels[r] = Int32(c)
                let row = r * features
                let mean = c * features
                for f in 0..<features { x[row + f] = means[mean + f] + 2 * rng.nextGaussian() }
            }
        }
        return Dataset(count: count, features: features, classes: classes, images: images, labels: labels)
    }
}
