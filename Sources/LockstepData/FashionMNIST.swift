/// Zalando's Fashion-MNIST (28×28 grey images, 10 classes), as packaged by Debian.
public enum FashionMNIST {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    public static let classes = 10
    /// 28×28 pixels per image.
    public static let features = 784
    /// Images in the training split.
    public static let trainCount = 60_000
    public static let files = (
        trainImages: "train-images-idx3-ubyte.gz", trainLabels: "train-labels-idx1-ubyte.gz",
        testImages: "t10k-images-idx3-ubyte.gz", testLabels: "t10k-labels-idx1-ubyte.gz"
    )

    /// Loads both splits. Pixels become `p/255`, then are standardized with the
    /// training set's single scalar mean and population standard deviation
    /// (numpy's `.std()`), applied to train and test alike.
    public static func load(directory: String) throws -> (train: Dataset, test: Dataset) {
        func path(_ name: String) -> String { directory.hasSuffix("/") ? directory + name : directory + "/" + name }
        let train = try loadRaw(images: path(files.trainImages), labels: path(files.trainLabels))
        let test = try loadRaw(images: path(files.testImages), labels: path(files.testLabels))
        guard train.features == test.features else {
            throw DataError.shapeMismatch(path: path(files.testImages),
                                          reason: "images have \(test.features) pixels but the training images have \(train.features)")
        }
        let table = standardization(train.pixels)
        var transform = DataTransform(shape: [1, 28, 28], classes: classes)
        transform.scale = 1.0 / 255
        let (mean, std) = moments(train.pixels)
        (transform.mean, transform.std) = ([mean], [std])
        var sets = (train.dataset(table), test.dataset(table))
        if sets.0.features == transform.features { (sets.0.transform, sets.1.transform) = (transform, transform) }
        return sets
    }

    struct Raw {
        var count: Int
        var features: Int
        var pixels: [UInt8]
        var labels: [Int32]

        func dataset(_ table: [Float]) -> Dataset {
            let images = [Float](unsafeUninitializedCapacity: pixels.count) { out, initialized in
                table.withUnsafeBufferPointer { t in
                    pixels.withUnsafeBufferPointer { src in
                        for i in 0..<src.count { out[i] = t[Int(src[i])] }
                    }
                }
                initialized = pixels.count
            }
            return Dataset(count: count, features: features, classes: FashionMNIST.classes, images: images, labels: labels,
                           sampleShape: [1, 28, 28].reduce(1, *) == features ? [1, 28, 28] : [features])
        }
    }

    static func loadRaw(images: String, labels: String) throws -> Raw {
        let x = try IDX.read(path: images, expectedMagic: IDX.imagesMagic)
        let y = try IDX.read(path: labels, expectedMagic: IDX.labelsMagic)
        guard x.dimensions[0] == y.dimensions[0] else {
            throw DataError.countMismatch(images: images, imageCount: x.dimensions[0], labels: labels, labelCount: y.dimensions[0])
        }
        var out = [Int32](repeating: 0, count: y.bytes.count)
        for (i, v) in y.bytes.enumerated() {
            guard Int(v) < classes else {
                throw DataError.labelOutOfRange(path: labels, index: i, value: Int(v), classes: classes)
            }
            out[i] = Int32(v)
        }
        return Raw(count: x.dimensions[0], features: x.dimensions[1] * x.dimensions[2], pixels: x.bytes, labels: out)
    }

    /// The map byte → standardized float, from the byte histogram of `pixels`
    /// (exact mean and variance in Double, one table lookup per pixel).
    static func standardization(_ pixels: [UInt8]) -> [Float] {
        let (mean, std) = moments(pixels)
        return (0..<256).map { Float((Double($0) / 255 - mean) / std) }
    }

    /// Mean and population standard deviation (1 when zero) of `pixels / 255`, from their histogram.
    static func moments(_ pixels: [UInt8]) -> (mean: Double, std: Double) {
        var histogram = [Int](repeating: 0, count: 256)
        pixels.withUnsafeBufferPointer { p in for b in p { histogram[Int(b)] &+= 1 } }
        let n = Double(max(pixels.count, 1))
        var mean = 0.0
        for b in 0..<256 { mean += Double(histogram[b]) * (Double(b) / 255) }
        mean /= n
        var variance = 0.0
        for b in 0..<256 {
            let d = Double(b) / 255 - mean
            variance += Double(histogram[b]) * d * d
        }
        variance /= n
        return (mean, variance > 0 ? variance.squareRoot() : 1)
    }
}
