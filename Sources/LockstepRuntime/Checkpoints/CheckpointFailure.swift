/// A checkpoint that could not be written under `--on-checkpoint-error stop`: the
/// run stops, and a restart would not help (the disk is still full).
public struct CheckpointFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
