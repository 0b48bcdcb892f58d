import LockstepData

/// Loads the training and test sets a config names.
public enum DatasetLoader {
    public static func load(_ config: TrainingConfig) throws -> (train: Dataset, test: Dataset) {
        switch config.dataset {
        case "synthetic":
            guard config.syntheticTrain > 0, config.syntheticTest > 0, config.syntheticFeatures > 0, config.syntheticClasses > 1 else {
                throw LockstepError("[data] synthetic_*: sizes must be positive and classes at least 2")
            }
            let train = SyntheticDataset.make(count: config.syntheticTrain, features: config.syntheticFeatures,
                                              classes: config.syntheticClasses, seed: config.seed)
            let test = SyntheticDataset.make(count: config.syntheticTest, features: config.syntheticFeatures,
                                             classes: config.syntheticClasses, seed: config.seed &+ 1)
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
