import Foundation

/// Writes `--metrics FILE`: one JSON object per line, flushed as it is written,
/// so a run that stops early still leaves every finished epoch on disk.
public final class MetricsWriter {
    private var handle: FileHandle?
    public let path: String

    /// Checks up front that `path` can be written; the file itself is created (and an
    /// existing one replaced) only by the first line, so a run that fails before its
    /// first epoch leaves an existing file as it was.
    public init(path: String) throws {
        self.path = path
        try RunFiles.checkWritable(path, flag: "--metrics")
    }

    deinit { try? handle?.close() }

    public func write(_ object: [String: Any]) {
        if handle == nil {
            guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
                FileHandle.standardError.write(Data("lockstep: --metrics \(path): cannot create the file; metrics are not written\n".utf8))
                return
            }
            handle = h
        }
        // JSON has no inf or NaN: a diverged loss is written as null.
        let clean = object.mapValues { value -> Any in
            if let d = value as? Double, !d.isFinite { return NSNull() }
            return value
        }
        guard let data = try? JSONSerialization.data(withJSONObject: clean, options: [.sortedKeys]) else { return }
        handle?.write(data)
        handle?.write(Data("\n".utf8))
    }

    public func epoch(_ r: EpochReport, extra: [String: Any] = [:]) {
        var o: [String: Any] = [
            "event": "epoch", "epoch": r.epoch, "loss": r.loss, "train_accuracy": r.trainAccuracy,
            "test_accuracy": r.testAccuracy, "samples_per_second": r.samplesPerSecond, "seconds": r.seconds, "steps": r.steps,
        ]
        o.merge(extra) { _, new in new }
        write(o)
    }

    public func final(_ r: FinalReport, extra: [String: Any] = [:]) {
        var o: [String: Any] = [
            "event": "final", "test_accuracy": r.testAccuracy, "samples_per_second": r.samplesPerSecond, "steps": r.steps,
            "epochs": r.epochs, "seconds": r.trainingSeconds, "loss": r.loss, "parameter_hash": r.parameterHash,
        ]
        o.merge(extra) { _, new in new }
        write(o)
    }
}
