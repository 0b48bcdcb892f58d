import Foundation
import LockstepKernels

/// `lockstep train` without `--workers`: one process, the kernel core's threads.
public enum SingleProcessRun {
    public static func run(_ job: JobSpec) throws -> FinalReport {
        let config = job.config, files = job.files
        try files.checkInputs()
        try files.checkOutputs()
        let pool = ThreadPool(threads: config.threads)
        let metrics = try files.metrics.map { try MetricsWriter(path: $0) }
        let board = try files.tensorboard.map { try TensorBoardWriter(directory: $0) }
        let (train, test) = try DatasetLoader.load(config)
        let trainer = try Trainer(config: config, train: train, test: test, pool: pool, trace: files.trace != nil)
        if let path = files.initFrom { try Checkpoint.initialize(trainer, from: path) }
        if let path = try files.resumePath(log: log) { try Checkpoint.resume(trainer, from: path) }
        let checkpoints = try files.checkpointSchedule(log: log)
        checkpoints?.store.removeTemporaries()
        checkpoints?.lastWritten = trainer.globalStep
        files.removeSaveTemporaries()
        trainer.afterStep = { t in
            try checkpoints?.afterStep(t)
            try files.saveIfDue(t, log: log)
        }
        log("model: \(trainer.model.summary) (\(trainer.model.parameterCount) parameters)")
        log("optimizer: \(config.optimizer.kind.rawValue) lr \(config.optimizer.learningRate); batch \(config.batchSize == 0 ? "full" : String(config.batchSize)); \(config.threads) threads; \(trainer.plannedSteps) steps")

        let progress = ConsoleProgress(totalSteps: trainer.plannedSteps)
        var step = 0
        progress.onStep = { report in
            step = report.globalStep
            board?.step(report)
        }
        progress.onEpoch = { report in
            board?.epoch(report, step: step)
            metrics?.epoch(report)
        }
        trainer.observer = progress
        let final = try trainer.run()
        if let path = files.trace, let tracer = trainer.tracer { try Tracer.write(tracer.events, workers: 1, to: path) }
        metrics?.final(final, extra: ["workers": 1, "threads": config.threads])
        log(String(format: "final: test accuracy %.2f%%, %.0f samples/s over %d steps, parameter hash %@",
                   100 * final.testAccuracy, final.samplesPerSecond, final.steps, final.parameterHash))
        return final
    }

    static func log(_ s: String) {
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}
