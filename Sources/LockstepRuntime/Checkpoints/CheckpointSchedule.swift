import Foundation

/// When a run writes checkpoints into its `CheckpointStore`: every `every` steps,
/// at every epoch end and after the last step. Every rank calls `afterStep` (a
/// sharded run gathers its optimizer state); rank 0 writes.
///
/// A checkpoint that cannot be written (a full disk) is one line on the terminal;
/// the previous checkpoints stay as they were. Then the run goes on
/// (`.continue`) or stops (`.stop`), as `--on-checkpoint-error` says.
public final class CheckpointSchedule {
    public enum FailurePolicy: String, Codable, Sendable, CaseIterable {
        case `continue`
        case stop
    }

    public let store: CheckpointStore
    public let every: Int?
    public let onFailure: FailurePolicy
    /// The step of the last checkpoint written (or resumed from).
    public var lastWritten: Int?
    /// Checkpoints that could not be written.
    public private(set) var failures = 0
    private let log: (String) -> Void

    public init(store: CheckpointStore, every: Int?, onFailure: FailurePolicy, log: @escaping (String) -> Void) {
        self.store = store
        self.every = every
        self.onFailure = onFailure
        self.log = log
    }

    /// Writes a checkpoint if `trainer`'s step is due (or `force`).
    public func afterStep(_ trainer: Trainer, force: Bool = false) throws {
        let step = trainer.globalStep
        let due = step % trainer.stepsPerEpoch == 0 || step == trainer.plannedSteps || every.map { step % $0 == 0 } ?? false
        guard force || due, step != lastWritten else { return }
        guard let (entries, metadata) = try Checkpoint.contents(trainer, epoch: step / trainer.stepsPerEpoch) else {
            lastWritten = step
            return
        }
        do {
            try store.write(step: step, worldSize: trainer.worldSize, entries: entries, metadata: metadata)
            lastWritten = step
        } catch {
            failures += 1
            let previous = lastWritten.map { "the previous checkpoint (step \($0)) is intact" } ?? "no earlier checkpoint exists"
            let line = "checkpoint at step \(step) not written to \(store.directory): \(error); \(previous)"
            guard onFailure == .continue else {
                throw CheckpointFailure(line + "; stopping (--on-checkpoint-error stop)")
            }
            log("warning: " + line + "; training goes on (--on-checkpoint-error continue)")
        }
    }

    /// `--resume auto`: the data file of the newest complete checkpoint, or nil (with a
    /// line saying so) when there is none yet. Torn or damaged ones are skipped with a warning.
    public static func resolveAuto(_ store: CheckpointStore, log: (String) -> Void) -> CheckpointManifest? {
        let found = store.newestComplete { log("warning: " + $0) }
        if found == nil { log("--resume auto: no complete checkpoint in \(store.directory) yet; starting at step 0") }
        return found
    }
}
