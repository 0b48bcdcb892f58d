import Foundation

/// Writes `--metrics FILE`: one JSON object per line, flushed as it is written,
/// so a run that stops early still leaves every finished epoch on disk.
public final class MetricsWriter {
    private let handle: FileHandle
    public let path: String

    public init(path: String) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            throw LockstepError("--metrics \(path): directory \(dir) does not exist; create it or choose another path")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw LockstepError("--metrics \(path): cannot create the file; check the path and permissions")
        }
        handle = h
    }

    deinit { try? handle.close() }

    public func write(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        handle.write(data)
        handle.write(Data("\n".utf8))
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
