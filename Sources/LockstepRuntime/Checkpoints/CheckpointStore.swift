import Foundation
import LockstepData
import LockstepTransport

/// `--checkpoint-dir DIR`: numbered checkpoints, each a safetensors data file
/// `step-00000200.safetensors` and its manifest `step-00000200.json`, written
/// last. Every file is written atomically (temporary file, fsync, rename,
/// directory fsync), so a process killed while saving leaves the previous
/// checkpoints whole; its temporary file is removed by the next save.
/// The newest `keep` complete checkpoints are kept.
public struct CheckpointStore: Sendable {
    public let directory: String
    public let keep: Int

    public init(directory: String, keep: Int) throws {
        guard keep >= 1 else { throw LockstepError("--keep-checkpoints \(keep): must be at least 1") }
        self.directory = directory
        self.keep = keep
    }

    /// Creates the directory if needed; throws a one-line error if it cannot be written.
    public func prepare() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw LockstepError("--checkpoint-dir \(directory): a file, not a directory; give a directory")
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            } catch {
                throw LockstepError("--checkpoint-dir \(directory): cannot create it (\(error.localizedDescription)); choose a writable directory")
            }
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw LockstepError("--checkpoint-dir \(directory): not writable; choose a writable directory")
        }
    }

    static func name(step: Int) -> String { String(format: "step-%08d", step) }

    public func dataPath(step: Int) -> String { directory + "/" + Self.name(step: step) + ".safetensors" }
    public func manifestPath(step: Int) -> String { directory + "/" + Self.name(step: step) + ".json" }

    /// Writes checkpoint `step`: the data file, then its manifest; then removes the
    /// checkpoints beyond the newest `keep` and any leftover temporary files.
    /// On failure (a full disk) nothing older is touched and no partial file stays.
    public func write(step: Int, worldSize: Int, entries: [SafeTensors.Entry], metadata: [String: String]) throws {
        let data = dataPath(step: step)
        try SafeTensors.write(entries: entries, metadata: metadata, to: data)
        let (bytes, crc) = try Self.checksum(path: data)
        let manifest = CheckpointManifest(step: step, worldSize: worldSize, file: (data as NSString).lastPathComponent, bytes: bytes,
                                          crc32c: String(format: "%08x", crc), written: ISO8601DateFormatter().string(from: Date()))
        do {
            try AtomicFile.write(Array(try CheckpointManifest.encoder.encode(manifest)), to: manifestPath(step: step))
        } catch {
            unlink(data)
            throw error
        }
        prune()
    }

    /// The newest checkpoint whose manifest parses and whose data file matches it.
    /// Each newer one that does not is reported through `warn` and skipped.
    public func newestComplete(warn: (String) -> Void) -> CheckpointManifest? {
        let manifests = manifestSteps()
        for step in dataSteps() where step > (manifests.last ?? -1) {
            warn("skipping \(dataPath(step: step)): it has no manifest (its save was interrupted)")
        }
        for step in manifests.reversed() {
            do {
                return try verified(step: step)
            } catch {
                warn("skipping checkpoint \(manifestPath(step: step)): \(error)")
            }
        }
        return nil
    }

    /// Reads and checks checkpoint `step`'s manifest against its data file.
    public func verified(step: Int) throws -> CheckpointManifest {
        let path = manifestPath(step: step)
        guard let bytes = FileManager.default.contents(atPath: path), bytes.count < 1 << 20 else {
            throw LockstepError("its manifest cannot be read")
        }
        guard let m = try? JSONDecoder().decode(CheckpointManifest.self, from: bytes), m.step == step,
              !m.file.contains("/"), m.file == (dataPath(step: step) as NSString).lastPathComponent else {
            throw LockstepError("its manifest is damaged")
        }
        let (size, crc) = try Self.checksum(path: directory + "/" + m.file)
        guard size == m.bytes, String(format: "%08x", crc) == m.crc32c else {
            throw LockstepError("\(m.file) has \(size) bytes and CRC-32C \(String(format: "%08x", crc)), its manifest says \(m.bytes) and \(m.crc32c); the file is damaged")
        }
        return m
    }

    /// Steps with a manifest, ascending.
    func manifestSteps() -> [Int] { steps(suffix: ".json") }
    /// Steps with a data file, ascending.
    func dataSteps() -> [Int] { steps(suffix: ".safetensors") }

    private func steps(suffix: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("step-"), name.hasSuffix(suffix) else { return nil }
            return Int(name.dropFirst(5).dropLast(suffix.count))
        }.sorted()
    }

    /// Removes checkpoints beyond the newest `keep` complete ones (manifest first), data
    /// files older than the newest manifest that never got one, and temporary files.
    func prune() {
        let complete = manifestSteps()
        for step in complete.dropLast(keep) {
            unlink(manifestPath(step: step))
            unlink(dataPath(step: step))
        }
        if let newest = complete.last {
            for step in dataSteps() where step < newest && !complete.contains(step) { unlink(dataPath(step: step)) }
        }
        removeTemporaries()
    }

    /// Temporary files left by a save that was killed (`.step-….tmp-PID-N`).
    public func removeTemporaries() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(".step-") && name.contains(".tmp-") { unlink(directory + "/" + name) }
    }

    static func checksum(path: String) throws -> (Int, UInt32) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LockstepError("\(path) cannot be read")
        }
        let crc = data.withUnsafeBytes { CRC32C.checksum($0) }
        return (data.count, crc)
    }
}
