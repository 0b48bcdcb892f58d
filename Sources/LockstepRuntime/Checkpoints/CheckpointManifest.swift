import Foundation

/// The small JSON file that makes a checkpoint complete: written (atomically) after
/// its data file, it names that file with its size and CRC-32C. A data file without
/// a manifest, or one whose bytes no longer match it, is torn or damaged and is
/// never resumed from.
public struct CheckpointManifest: Codable, Sendable, Equatable {
    /// Optimizer steps done when it was written.
    public var step: Int
    /// Workers of the run that wrote it.
    public var worldSize: Int
    /// The data file (safetensors), relative to the manifest's directory.
    public var file: String
    public var bytes: Int
    /// CRC-32C of the data file, 8 hex digits.
    public var crc32c: String
    /// When it was written (ISO 8601), for people.
    public var written: String

    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted]
        return e
    }
}
