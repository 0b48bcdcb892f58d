import LockstepBase

/// Loads a dataset of the user's own files (`DataSource`): CSV tables, NumPy arrays or
/// IDX images. Input shape and class count come from the files; every error is one
/// line naming the file, the row and, for CSV, the line and column.
public enum FileDatasets {
    /// One split as read: features, labels as written, and where each row came from.
    struct Split {
        var features: [Float]
        var count: Int
        var shape: [Int]
        var labels: Labels
        /// The file the labels came from.
        var labelPath: String
        /// How a message names row `i` (0-based) of the label file.
        var row: @Sendable (Int) -> String
    }

    enum Labels {
        case names([String])
        case integers([Int64])
        var count: Int {
            switch self {
            case .names(let n): return n.count
            case .integers(let v): return v.count
            }
        }
    }

    public static func load(_ source: DataSource, seed: UInt64) throws -> (train: Dataset, test: Dataset, transform: DataTransform) {
        var train = try read(source, test: false)
        var test: Split
        if try testPaths(source) {
            test = try read(source, test: true)
        } else {
            (train, test) = try split(train, fraction: source.testFraction, seed: seed, source: source)
        }
        guard train.shape == test.shape else {
            throw DataError.invalidArgument(path: test.labelPath, reason: "test samples have shape \(test.shape) but the training samples \(train.shape); use files with the same columns or image size")
        }
        let shape = source.shape ?? train.shape
        guard shape.reduce(1, *) == train.shape.reduce(1, *), shape.allSatisfy({ $0 > 0 }) else {
            throw DataError.invalidArgument(path: train.labelPath, reason: "[data] shape = \(shape) has \(shape.reduce(1, *)) values a sample, the data has \(train.shape.reduce(1, *))")
        }
        var transform = DataTransform(shape: shape, classes: 0)
        let (trainLabels, testLabels) = try indices(train, test, classes: source.classes, transform: &transform)
        if source.format == .idx { transform.scale = 1.0 / 255 }
        if source.format == .csv { transform.label = source.label }
        if source.standardizes {
            if source.format == .idx { scalarStatistics(train.features, into: &transform) }
            else { transform.learnStandardization(train.features, rows: train.count) }
        }
        transform.apply(&train.features)
        transform.apply(&test.features)
        let f = transform.features
        var trainSet = Dataset(count: train.count, features: f, classes: transform.classes, images: train.features, labels: trainLabels, sampleShape: shape)
        trainSet.transform = transform
        train.features = []
        var testSet = Dataset(count: test.count, features: f, classes: transform.classes, images: test.features, labels: testLabels, sampleShape: shape)
        testSet.transform = transform
        return (trainSet, testSet, transform)
    }

    /// The test split alone (`lockstep eval --data`), read with a checkpoint's transform.
    public static func loadTest(_ source: DataSource, transform: DataTransform) throws -> Dataset {
        var test = try read(source, test: true)
        guard test.shape.reduce(1, *) == transform.features else {
            throw DataError.invalidArgument(path: test.labelPath, reason: "samples have \(test.shape.reduce(1, *)) values, the model was trained on \(transform.features)")
        }
        let labels = try indices(test, classes: transform.classes, names: transform.classNames)
        transform.apply(&test.features)
        return Dataset(count: test.count, features: transform.features, classes: transform.classes, images: test.features,
                       labels: labels, sampleShape: transform.shape)
    }

    /// Whether the source names test files (else `test_fraction` splits the training rows).
    static func testPaths(_ s: DataSource) throws -> Bool {
        let given: Bool
        switch s.format {
        case .csv: given = s.test != nil
        case .npy: given = s.testX != nil || s.testY != nil
        case .idx: given = s.testImages != nil || s.testLabels != nil
        }
        if given, s.testFraction != nil {
            throw DataError.invalidArgument(path: "[data]", reason: "give either test files or test_fraction, not both")
        }
        if !given, s.testFraction == nil {
            throw DataError.invalidArgument(path: "[data]", reason: "no test split: name the test file(s) or set test_fraction (e.g. 0.2)")
        }
        return given
    }

    static func required(_ value: String?, _ key: String) throws -> String {
        guard let value, !value.isEmpty else { throw DataError.invalidArgument(path: "[data]", reason: "\(key) is missing: name the file") }
        return value
    }

    static func read(_ s: DataSource, test: Bool) throws -> Split {
        switch s.format {
        case .csv:
            let path = try required(test ? s.test : s.train, test ? "test" : "train")
            let table = try CSVTable(path: path, label: s.label)
            return Split(features: table.features, count: table.rows, shape: [table.featureCount], labels: .names(table.labels),
                         labelPath: path, row: { "line \(CSVTable.line(ofRow: $0)) (row \($0 + 1))" })
        case .npy:
            let xPath = try required(test ? s.testX : s.trainX, test ? "test_x" : "train_x")
            let yPath = try required(test ? s.testY : s.trainY, test ? "test_y" : "train_y")
            let x = try NPYArray(path: xPath), y = try NPYArray(path: yPath)
            guard x.isFloatingOrByte, x.shape.count >= 2 else {
                throw DataError.invalidArgument(path: xPath, reason: x.isFloatingOrByte
                    ? "shape \(x.shape): features need one row per sample (N×…)"
                    : "unsupported dtype '\(x.dtype)' for features; save them as float32, float64 or uint8")
            }
            let integerLabels: Bool
            if case .integer = y.kind { integerLabels = true } else { integerLabels = y.kind == .uint8 }
            guard integerLabels else {
                throw DataError.invalidArgument(path: yPath, reason: "unsupported dtype '\(y.dtype)' for labels; save them as integers (e.g. y.astype(numpy.int64))")
            }
            guard y.shape.count == 1 || (y.shape.count == 2 && y.shape[1] == 1) else {
                throw DataError.invalidArgument(path: yPath, reason: "shape \(y.shape): labels need one integer per sample (N,)")
            }
            guard x.count == y.count else {
                throw DataError.invalidArgument(path: yPath, reason: "\(y.count) labels but \(xPath) holds \(x.count) samples; x and y need the same first dimension")
            }
            let labels = (0..<y.count).map { y.integer($0) }
            return Split(features: x.floats(rows: 0..<x.count), count: x.count, shape: Array(x.shape.dropFirst()), labels: .integers(labels),
                         labelPath: yPath, row: { "row \($0 + 1) (index \($0))" })
        case .idx:
            let imagesPath = try required(test ? s.testImages : s.trainImages, test ? "test_images" : "train_images")
            let labelsPath = try required(test ? s.testLabels : s.trainLabels, test ? "test_labels" : "train_labels")
            let images = try IDX.read(path: imagesPath, expectedMagic: IDX.imagesMagic)
            let labels = try IDX.read(path: labelsPath, expectedMagic: IDX.labelsMagic)
            guard images.dimensions[0] == labels.dimensions[0] else {
                throw DataError.countMismatch(images: imagesPath, imageCount: images.dimensions[0], labels: labelsPath, labelCount: labels.dimensions[0])
            }
            let features = images.bytes.map { Float($0) }
            return Split(features: features, count: images.dimensions[0], shape: Array(images.dimensions.dropFirst()),
                         labels: .integers(labels.bytes.map { Int64($0) }), labelPath: labelsPath, row: { "label \($0 + 1) (index \($0))" })
        }
    }

    /// Labels of both splits as class indices; string labels are mapped to their sorted order.
    static func indices(_ train: Split, _ test: Split, classes: Int?, transform: inout DataTransform) throws -> ([Int32], [Int32]) {
        var names: [String]?
        if case .names(let a) = train.labels, case .names(let b) = test.labels,
           !(a.allSatisfy { Int64($0) != nil } && b.allSatisfy { Int64($0) != nil }) {
            names = Set(a).sorted()
        }
        var count = classes
        if names == nil, count == nil {
            var largest: Int64 = 0
            for split in [train, test] {
                for (i, v) in integers(split).enumerated() where v > largest {
                    guard v < 1 << 16 else {
                        throw DataError.invalidArgument(path: split.labelPath, reason: "\(split.row(i)): label \(v) is outside 0...65535; labels must be class indices from 0 (or set [data] classes)")
                    }
                    largest = v
                }
            }
            count = Int(largest) + 1
        }
        let classCount = names?.count ?? count!
        guard classCount >= 2 else {
            throw DataError.invalidArgument(path: train.labelPath, reason: "the labels hold \(classCount) class; training needs at least 2")
        }
        transform.classes = classCount
        transform.classNames = names
        return (try indices(train, classes: classCount, names: names), try indices(test, classes: classCount, names: names))
    }

    static func integers(_ s: Split) -> [Int64] {
        switch s.labels {
        case .integers(let v): return v
        case .names(let n): return n.map { Int64($0) ?? -1 }
        }
    }

    /// One split's labels as indices in `0..<classes`, or an error naming the first bad row.
    static func indices(_ split: Split, classes: Int, names: [String]?) throws -> [Int32] {
        if let names, case .names(let labels) = split.labels {
            let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, Int32($0)) })
            return try labels.enumerated().map { i, name in
                guard let k = index[name] else {
                    throw DataError.invalidArgument(path: split.labelPath, reason: "\(split.row(i)): label \"\(name.prefix(40))\" is not one of the \(names.count) training classes")
                }
                return k
            }
        }
        if case .names(let labels) = split.labels, let i = labels.firstIndex(where: { Int64($0) == nil }) {
            throw DataError.invalidArgument(path: split.labelPath, reason: "\(split.row(i)): label \"\(labels[i].prefix(40))\" is not an integer class, and the model's classes are integers 0...\(classes - 1)")
        }
        return try integers(split).enumerated().map { i, v in
            guard v >= 0, v < classes else {
                throw DataError.invalidArgument(path: split.labelPath, reason: "\(split.row(i)): label \(v) is outside the class range 0...\(classes - 1)")
            }
            return Int32(v)
        }
    }

    /// `test_fraction`: a seeded draw of the training rows becomes the test split; both keep file order.
    static func split(_ all: Split, fraction: Double?, seed: UInt64, source: DataSource) throws -> (Split, Split) {
        let f = fraction ?? 0
        let n = all.count, k = Int((Double(n) * f).rounded())
        guard f > 0, f < 1, k >= 1, k < n else {
            throw DataError.invalidArgument(path: "[data]", reason: "test_fraction = \(f) leaves \(k) of \(n) rows for testing; use a fraction in (0, 1) that leaves rows on both sides")
        }
        var order = Array(0..<n)
        var rng = SplitMix64(seed: SplitMix64.derive(seed, 0x7E57))
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, rng.nextInt(below: i + 1)) }
        var isTest = [Bool](repeating: false, count: n)
        for i in order.prefix(k) { isTest[i] = true }
        func pick(_ test: Bool) -> Split {
            let rows = (0..<n).filter { isTest[$0] == test }
            let width = all.shape.reduce(1, *)
            var features = [Float](repeating: 0, count: rows.count * width)
            all.features.withUnsafeBufferPointer { src in
                features.withUnsafeMutableBufferPointer { dst in
                    for (r, row) in rows.enumerated() {
                        (dst.baseAddress! + r * width).update(from: src.baseAddress! + row * width, count: width)
                    }
                }
            }
            let labels: Labels
            switch all.labels {
            case .names(let v): labels = .names(rows.map { v[$0] })
            case .integers(let v): labels = .integers(rows.map { v[$0] })
            }
            let row = all.row
            return Split(features: features, count: rows.count, shape: all.shape, labels: labels, labelPath: all.labelPath,
                         row: { row(rows[$0]) })
        }
        return (pick(false), pick(true))
    }

    /// Fashion-MNIST's standardization: one mean and population std over every scaled pixel.
    static func scalarStatistics(_ values: [Float], into t: inout DataTransform) {
        var sum = 0.0
        for v in values { sum += Double(v) * t.scale }
        let mean = sum / Double(max(values.count, 1))
        var squares = 0.0
        for v in values { let d = Double(v) * t.scale - mean; squares += d * d }
        let std = (squares / Double(max(values.count, 1))).squareRoot()
        t.mean = [mean]
        t.std = [std > 0 ? std : 1]
    }
}
