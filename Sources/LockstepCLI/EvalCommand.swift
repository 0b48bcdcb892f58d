import ArgumentParser
import Foundation
import LockstepData
import LockstepKernels
import LockstepRuntime

/// `lockstep eval --checkpoint F --config F [--data …]`: a checkpoint's scores on a test split.
public struct EvalCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a checkpoint on the config's test split (or --data): accuracy, loss, per-class precision and recall, confusion matrix.")

    public init() {}

    @Option(help: "A checkpoint any run wrote (--save, --checkpoint-dir, sharded or not).") public var checkpoint: String
    @Option(help: "The config the model was trained with (its layers and data).") public var config: String
    @Option(help: "Another test split: fashion-mnist: a directory; csv: a CSV with the label column; npy and idx: the features (or images) file, with --labels.")
    public var data: String?
    @Option(help: "With --data for npy and idx: the labels file.") public var labels: String?
    @Flag(help: "Print one JSON object (accuracy, loss, per_class, confusion) instead of the table.") public var json = false
    @Option(help: "Threads of the kernel core.") public var threads: Int = 2

    public func run() throws {
        try CommandLineErrors.report {
            guard threads >= 1, threads <= 1024 else { throw LockstepError("--threads \(threads): use 1 to 1024") }
            var training = try ConfigLoader.load(path: config)
            let model = try TrainedModel(checkpoint: checkpoint, config: training)
            let test: Dataset
            if let data {
                test = try testSplit(&training, path: data, model: model)
            } else if training.source != nil {
                do { test = try FileDatasets.loadTest(training.source!, transform: model.transform) } catch let e as DataError {
                    throw LockstepError(e.description)
                }
            } else {
                test = try DatasetLoader.load(training).test
            }
            let report = try EvaluationReport(model: model, data: test, batch: training.evalBatchSize, pool: ThreadPool(threads: threads))
            print(json ? report.json : report.table)
        }
    }

    /// `--data`: the test split from other files, read with the checkpoint's transform.
    private func testSplit(_ training: inout TrainingConfig, path: String, model: TrainedModel) throws -> Dataset {
        switch training.dataset {
        case "fashion-mnist":
            training.dataDir = path
            return try DatasetLoader.load(training).test
        case "synthetic":
            throw LockstepError("--data \(path): the config's dataset is synthetic, which reads no files")
        default:
            var source = training.source!
            switch source.format {
            case .csv: source.test = path
            case .npy, .idx:
                guard let labels else { throw LockstepError("--data \(path): give the labels file too (--labels)") }
                if source.format == .npy { (source.testX, source.testY) = (path, labels) } else { (source.testImages, source.testLabels) = (path, labels) }
            }
            source.testFraction = nil
            do { return try FileDatasets.loadTest(source, transform: model.transform) } catch let e as DataError {
                throw LockstepError(e.description)
            }
        }
    }
}

/// `lockstep predict --checkpoint F --input F.(csv|npy) [--output F]`: class probabilities of new rows.
public struct PredictCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Predict the class of every row of a CSV (with a header) or .npy file: a CSV of the class and one probability per class.")

    public init() {}

    @Option(help: "A checkpoint any run wrote.") public var checkpoint: String
    @Option(help: "Rows to predict: a .csv with a header (feature columns as in training) or a .npy array (N×…).") public var input: String
    @Option(help: "Write the CSV here instead of standard output.") public var output: String?
    @Option(help: "The run's config, for checkpoints that do not record their layers.") public var config: String?
    @Option(help: "Threads of the kernel core.") public var threads: Int = 2

    public func run() throws {
        try CommandLineErrors.report {
            guard threads >= 1, threads <= 1024 else { throw LockstepError("--threads \(threads): use 1 to 1024") }
            let training = try config.map { try ConfigLoader.load(path: $0) }
            let model = try TrainedModel(checkpoint: checkpoint, config: training)
            if let output { try RunFiles.checkWritable(output, flag: "--output") }
            let (rows, count) = try PredictionInput.read(path: input, transform: model.transform, label: model.transform.label ?? "label")
            let p = try model.probabilities(rows, count: count, batch: 1000, pool: ThreadPool(threads: threads))
            let classes = model.transform.classes
            var text = "class," + (0..<classes).map { "p_" + csvField(model.transform.name(of: $0)) }.joined(separator: ",") + "\n"
            text.reserveCapacity(count * classes * 12)
            for r in 0..<count {
                let q = p[(r * classes)..<((r + 1) * classes)]
                var best = 0
                for j in 1..<classes where q[q.startIndex + j] > q[q.startIndex + best] { best = j }
                text += csvField(model.transform.name(of: best))
                for v in q { text += "," + String(v) }
                text += "\n"
            }
            if let output {
                do { try AtomicFile.write(Array(text.utf8), to: output) } catch {
                    throw LockstepError("--output \(output): cannot write it (\(error))")
                }
                FileHandle.standardError.write(Data("predict: \(count) rows → \(output)\n".utf8))
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }

    private func csvField(_ s: String) -> String {
        s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
