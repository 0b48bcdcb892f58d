import LockstepData

/// Loads the training and test sets a config names.
public enum DatasetLoader {
    public static func load(_ config: TrainingConfig) throws -> (train: Dataset, test: Dataset) {
        switch config.dataset {
        case "synthetic":
            guard config.syntheticTrain > 0, config.syntheticTest > 0, config.syntheticFeatures > 0, config.syntheticClasses > 1 else {
                throw LockstepError("[data] synthetic_*: sizes must be positive and classes at least 2")
            }
            // One draw split in two, so both sets share the class means.
            let f = config.syntheticFeatures, n = config.syntheticTrain
            let all = SyntheticDataset.make(count: n + config.syntheticTest, features: f,
                                            classes: config.syntheticClasses, seed: config.seed)
            let train = Dataset(count: n, features: f, classes: all.classes,
                                images: Array(all.images[0..<(n * f)]), labels: Array(all.labels[0..<n]))
            let test = Dataset(count: config.syntheticTest, features: f, classes: all.classes,
                               images: Array(all.images[(n * f)...]), labels: Array(all.labels[n...]))
            return (train, test)
        default:
            do {
                return try FashionMNIST.load(directory: config.dataDir)
            } catch let e as DataError {
                throw LockstepError(e.description)
            }
        }
    }
}
