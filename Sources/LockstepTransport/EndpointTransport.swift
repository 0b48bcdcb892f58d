import LockstepCollectives

/// A `PeerTransport` a worker binds to an endpoint, publishes, connects to its
/// peers' endpoints and closes: `ZMQPeerTransport` (tcp://, ipc://) or
/// `ShmPeerTransport` (shm://).
public protocol EndpointTransport: PeerTransport {
    /// The endpoint peers must connect to.
    var boundEndpoint: String { get }
    /// Deadline of every wait.
    var timeoutSeconds: Double { get set }
    /// Connects to every peer (`peers[r]` is rank r's `boundEndpoint`);
    /// `hosts` names each rank's machine in error messages; `keys` are the
    /// peers' CurveZMQ public keys when the job runs with security.
    func connect(peers: [String], hosts: [String]?, keys: [String]?) throws
    /// Every peer has connected (called after the first barrier).
    func peersConnected()
    func close()
}

extension EndpointTransport {
    public func peersConnected() {}
}

/// Binds the transport an endpoint's scheme asks for.
public enum EndpointTransports {
    public static func bind(_ endpoint: String, rank: Int, worldSize: Int, jobID: UInt64, context: ZMQContext,
                            timeoutSeconds: Double, maximumPayloadBytes: Int? = nil, security: CurveSecurity? = nil,
                            onRefusal: @escaping @Sendable (String) -> Void = { _ in }) throws -> EndpointTransport {
        if endpoint.hasPrefix("shm://") {
            return try ShmPeerTransport(rank: rank, worldSize: worldSize, jobID: jobID, bindEndpoint: endpoint,
                                        timeoutSeconds: timeoutSeconds)
        }
        return try ZMQPeerTransport(rank: rank, worldSize: worldSize, jobID: jobID, bindEndpoint: endpoint,
                                    context: context, timeoutSeconds: timeoutSeconds, maximumPayloadBytes: maximumPayloadBytes,
                                    security: security, onRefusal: onRefusal)
    }
}
