/// How the workers of `lockstep train --workers N` on one machine exchange gradients.
public enum DataPlane: String, Codable, Sendable, CaseIterable {
    /// ZeroMQ over loopback TCP.
    case tcp
    /// ZeroMQ over Unix-domain sockets.
    case ipc
    /// Shared-memory segments in /dev/shm.
    case shm
}
