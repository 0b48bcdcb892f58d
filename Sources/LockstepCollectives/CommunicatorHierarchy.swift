/// The two communicators of a hierarchical all-reduce (`Communicator.hierarchy`):
/// `local` over the ranks of this host (shared memory where the worker set it
/// up), `cross` over the ranks with this rank's local rank on every host.
public struct CommunicatorHierarchy {
    public let local: Communicator
    public let cross: Communicator

    public init(local: Communicator, cross: Communicator) {
        self.local = local
        self.cross = cross
    }
}
