/// Errors of a `PeerTransport`, shared by every implementation.
public enum TransportError: Error, Equatable, CustomStringConvertible {
    /// No message arrived from `rank` within `seconds`; `host` says where it runs
    /// ("n3, 10.88.0.3:6001": host name and the address that was dialled).
    case peerTimeout(rank: Int, host: String?, seconds: Double)
    /// A message from `rank` had a different size than the receiver expected:
    /// the ranks disagree about the collective they are running.
    case sizeMismatch(rank: Int, tag: UInt32, expected: Int, actual: Int)
    /// A rank outside `0..<worldSize`, or the caller's own rank.
    case invalidPeer(rank: Int, worldSize: Int)
    /// The transport was closed or is not connected yet.
    case notConnected(String)

    public var description: String {
        switch self {
        case let .peerTimeout(rank, host, seconds):
            let place = host.map { " (\($0))" } ?? ""
            return "timed out after \(seconds) s waiting for rank \(rank)\(place): "
                + "the peer is dead, hung or unreachable; check its log and the network"
        case let .sizeMismatch(rank, tag, expected, actual):
            return "message from rank \(rank) (tag \(tag)) has \(actual) bytes, expected \(expected): "
                + "ranks disagree about the collective (different model or call order?)"
        case let .invalidPeer(rank, worldSize):
            return "peer rank \(rank) is not a valid peer in a world of size \(worldSize)"
        case let .notConnected(why):
            return "transport not usable: \(why)"
        }
    }
}
