import Foundation

/// Everything a run needs, built once (from the TOML file and the command-line
/// flags), validated once, then handed on as a value: to the local launcher, to
/// the coordinator and worker processes it starts (as a JSON file they read
/// instead of the TOML), and from the coordinator to every worker inside its
/// typed assignment message.
public struct JobSpec: Codable, Sendable, Equatable {
    /// Model, data, optimizer, schedule and distributed settings: the file with the flags applied.
    public var config: TrainingConfig
    /// Checkpoints, metrics and trace files the run reads and writes.
    public var files: RunFiles
    /// The hash of the model the config *file* describes (before flags). A worker
    /// started by hand hashes its own file; the coordinator compares against this.
    public var modelHash: String

    public init(config: TrainingConfig, files: RunFiles = RunFiles(), modelHash: String? = nil) throws {
        try config.validate()
        self.config = config
        self.files = files
        self.modelHash = try modelHash ?? config.modelHash(inputFeatures: config.inputFeatures)
    }

    /// Reads the TOML file once, records its model hash, then applies `overrides`
    /// (the command-line flags) and validates the result.
    public static func load(configPath: String, files: RunFiles = RunFiles(),
                            overrides: (inout TrainingConfig) throws -> Void = { _ in }) throws -> JobSpec {
        let file = try ConfigLoader.load(path: configPath)
        let hash = try file.modelHash(inputFeatures: file.inputFeatures)
        var config = file
        try overrides(&config)
        return try JobSpec(config: config, files: files, modelHash: hash)
    }

    /// Writes the spec as JSON (mode 0600: it names the job's files) for child processes.
    public func write(to path: String) throws {
        let data = try JobSpec.encoder.encode(self)
        guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw LockstepError("cannot write the job spec to \(path)")
        }
    }

    /// Reads a spec written by `write(to:)` (by `lockstep train --workers N`).
    public static func read(from path: String) throws -> JobSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LockstepError("--job-spec \(path): no such file; it is written by `lockstep train --workers N`")
        }
        do {
            let spec = try decoder.decode(JobSpec.self, from: data)
            try spec.config.validate()
            return spec
        } catch let e as LockstepError {
            throw e
        } catch {
            throw LockstepError("--job-spec \(path): not a job spec (\(error))")
        }
    }

    /// JSON with inf and NaN spelled out (a diverged loss must still travel).
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}
