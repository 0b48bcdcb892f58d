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
        for (flag, path) in [("--resume", resume), ("--init-from", initFrom)] {
            guard let path else { continue }
            var st = stat()
            guard stat(path, &st) == 0 else { throw LockstepError("\(flag) \(path): no such file; check the path") }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw LockstepError("\(flag) \(path): not a regular file (a directory, pipe or device); give a checkpoint file")
            }
        }
    }

    /// Checks before any work that every output path can be written, so a bad
    /// `--save`, `--trace` or `--metrics` fails at once instead of after training.
    public func checkOutputs() throws {
        if let p = metrics { try Self.checkWritable(p, flag: "--metrics") }
        if let p = save { try Self.checkWritable(p, flag: "--save") }
        if let p = trace { try Self.checkWritable(p, flag: "--trace") }
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
