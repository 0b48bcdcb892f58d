/// A user-facing failure: one line that says what is wrong and what to do.
public struct LockstepError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
