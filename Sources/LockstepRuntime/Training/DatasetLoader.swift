import Foundation
import LockstepData

/// Loads the training and test sets a config names.
public enum DatasetLoader {
    /// The config with every `[data]` file path made absolute: relative to the working
    /// directory when the file is there, else to the config file's directory. Done once
    /// where the config is read, so processes started elsewhere get the same files.
    public static func resolvingPaths(_ config: TrainingConfig, configPath: String) -> TrainingConfig {
        guard var s = config.source else { return config }
        let base = URL(fileURLWithPath: configPath).deletingLastPathComponent().path
        func resolve(_ p: String?) -> String? {
            guard let p, !p.hasPrefix("/") else { return p }
            let here = FileManager.default.currentDirectoryPath + "/" + p
            if FileManager.default.fileExists(atPath: here) { return URL(fileURLWithPath: here).standardized.path }
            return URL(fileURLWithPath: base + "/" + p).standardized.path
        }
        s.train = resolve(s.train); s.test = resolve(s.test)
        s.trainX = resolve(s.trainX); s.trainY = resolve(s.trainY); s.testX = resolve(s.testX); s.testY = resolve(s.testY)
        s.trainImages = resolve(s.trainImages); s.trainLabels = resolve(s.trainLabels)
        s.testImages = resolve(s.testImages); s.testLabels = resolve(s.testLabels)
        var c = config
        c.source = s
        return c
    }

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
        case "fashion-mnist":
            do {
                return try FashionMNIST.load(directory: config.dataDir)
            } catch let e as DataError {
                throw LockstepError(e.description)
            }
        default:
            guard let source = config.source else { throw LockstepError("dataset \"\(config.dataset)\": no [data] files given") }
            do {
                let sets = try FileDatasets.load(source, seed: config.seed)
                return (sets.train, sets.test)
            } catch let e as DataError {
                throw LockstepError(e.description)
            }
        }
    }
}
