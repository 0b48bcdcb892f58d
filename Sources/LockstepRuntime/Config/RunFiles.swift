import Foundation

/// The files a run reads and writes besides its config.
public struct RunFiles: Codable, Sendable, Equatable {
    public var initFrom: String?
    public var save: String?
    public var resume: String?
    public var metrics: String?
    /// Chrome trace of a few steps (forward, backward, bucket all-reduces, optimizer).
    public var trace: String?
    /// Directory for TensorBoard event files.
    public var tensorboard: String?
    /// Where the coordinator serves its figures to Prometheus (not a file, but an output of the run).
    public var metricsPort: Int?
    /// `--checkpoint-dir`: numbered checkpoints during training (`CheckpointStore`).
    public var checkpointDir: String?
    /// `--checkpoint-every N` steps (besides every epoch end and the last step).
    public var checkpointEvery: Int?
    /// `--keep-checkpoints K`: the newest K complete checkpoints stay.
    public var keepCheckpoints: Int = 3
    /// `--on-checkpoint-error`: what a run does when a checkpoint cannot be written.
    public var onCheckpointError: CheckpointSchedule.FailurePolicy = .continue

    /// `--resume auto`: the newest complete checkpoint in `checkpointDir`.
    public static let resumeAuto = "auto"

    public init(initFrom: String? = nil, save: String? = nil, resume: String? = nil, metrics: String? = nil, trace: String? = nil,
                tensorboard: String? = nil, metricsPort: Int? = nil) {
        self.metricsPort = metricsPort
        self.trace = trace
        self.tensorboard = tensorboard
        self.initFrom = initFrom
        self.save = save
        self.resume = resume
        self.metrics = metrics
    }

    /// Checks before any work that the checkpoints to read exist.
    public func checkInputs() throws {
        if resume == Self.resumeAuto, checkpointDir == nil {
            throw LockstepError("--resume auto needs --checkpoint-dir DIR: it resumes from the newest complete checkpoint there")
        }
        if let n = checkpointEvery, n < 1 { throw LockstepError("--checkpoint-every \(n): must be at least 1 step") }
        if checkpointEvery != nil, checkpointDir == nil { throw LockstepError("--checkpoint-every needs --checkpoint-dir DIR") }
        if keepCheckpoints < 1 { throw LockstepError("--keep-checkpoints \(keepCheckpoints): must be at least 1") }
        for (flag, path) in [("--resume", resume == Self.resumeAuto ? nil : resume), ("--init-from", initFrom)] {
            guard let path else { continue }
            var st = stat()
            guard stat(path, &st) == 0 else { throw LockstepError("\(flag) \(path): no such file; check the path") }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw LockstepError("\(flag) \(path): not a regular file (a directory, pipe or device); give a checkpoint file")
            }
        }
    }

    /// `--save`: replaces the file at every epoch end and after the last step (every rank
    /// calls it; a sharded run gathers its optimizer state). A failure (a full disk) is one
    /// line at once; the run stops under `--on-checkpoint-error stop`, else goes on.
    public func saveIfDue(_ trainer: Trainer, log: (String) -> Void) throws {
        let step = trainer.globalStep, perEpoch = trainer.stepsPerEpoch
        guard let save, step % perEpoch == 0 || step == trainer.plannedSteps else { return }
        do {
            try Checkpoint.save(trainer, to: save, epoch: (step + perEpoch - 1) / perEpoch)
        } catch {
            let line = "\(error); the previous --save file is intact"
            guard onCheckpointError == .continue else { throw CheckpointFailure(line + "; stopping (--on-checkpoint-error stop)") }
            log("warning: " + line + "; training goes on (--on-checkpoint-error continue)")
        }
    }

    /// Removes the temporary file a killed `--save` left beside its target (`.NAME.tmp-PID-N`).
    public func removeSaveTemporaries() {
        guard let save else { return }
        let dir = (save as NSString).deletingLastPathComponent, name = (save as NSString).lastPathComponent
        let directory = dir.isEmpty ? "." : dir
        for file in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where file.hasPrefix("." + name + ".tmp-") {
            unlink(directory + "/" + file)
        }
    }

    /// The checkpoint schedule of `--checkpoint-dir`, or nil.
    public func checkpointSchedule(log: @escaping (String) -> Void) throws -> CheckpointSchedule? {
        guard let dir = checkpointDir else { return nil }
        return CheckpointSchedule(store: try CheckpointStore(directory: dir, keep: keepCheckpoints), every: checkpointEvery,
                                  onFailure: onCheckpointError, log: log)
    }

    /// The checkpoint file to resume from: `resume`, or with `--resume auto` the newest
    /// complete one in `checkpointDir` (nil when there is none yet).
    public func resumePath(log: (String) -> Void) throws -> String? {
        guard resume == Self.resumeAuto else { return resume }
        guard let dir = checkpointDir else { throw LockstepError("--resume auto needs --checkpoint-dir DIR") }
        let store = try CheckpointStore(directory: dir, keep: keepCheckpoints)
        guard let m = CheckpointSchedule.resolveAuto(store, log: log) else { return nil }
        log("--resume auto: resuming from \(store.dataPath(step: m.step)) (step \(m.step))")
        return store.dataPath(step: m.step)
    }

    /// Checks before any work that every output path can be written, so a bad
    /// `--save`, `--trace` or `--metrics` fails at once instead of after training.
    public func checkOutputs() throws {
        if let p = metrics { try Self.checkWritable(p, flag: "--metrics") }
        if let p = save { try Self.checkWritable(p, flag: "--save") }
        if let p = trace { try Self.checkWritable(p, flag: "--trace") }
        if let dir = checkpointDir { try CheckpointStore(directory: dir, keep: keepCheckpoints).prepare() }
        if let dir = tensorboard {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw LockstepError("--tensorboard \(dir): a file, not a directory; give a directory for the event files")
            }
        }
    }

    /// Throws a one-line error naming `flag` unless a file can be created at `path`.
    public static func checkWritable(_ path: String, flag: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let directory = dir.isEmpty ? "." : dir
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LockstepError("\(flag) \(path): directory \(directory) does not exist; create it or choose another path")
        }
        var isFile: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFile) {
            guard !isFile.boolValue, FileManager.default.isWritableFile(atPath: path) else {
                throw LockstepError("\(flag) \(path): cannot write there; choose a writable file path")
            }
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw LockstepError("\(flag) \(path): directory \(directory) is not writable; choose another path")
        }
    }
}
