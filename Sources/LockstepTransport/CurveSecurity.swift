import CZeroMQ

/// CurveZMQ settings of one process: its key pair and the public keys it admits.
///
/// Server sockets (the coordinator's control socket, every worker's data socket)
/// encrypt with this process's secret key and ask a `ZAPHandler` on their context
/// whether a client's key is allowed; client sockets pin the server's public key,
/// so they talk only to the process that holds its secret key.
public struct CurveSecurity: Sendable, Equatable {
    public let keys: CurveKeyPair
    /// Public keys (Z85) that server sockets admit.
    public let allowed: Set<String>
    /// Seconds a connection may take to finish its handshake before it is dropped,
    /// so connections that never authenticate cannot pile up and hold descriptors.
    public var handshakeSeconds = 10.0

    /// The ZAP domain every Lockstep server socket asks its handler about.
    static let domain = "lockstep"

    public init(keys: CurveKeyPair, allowed: Set<String>) {
        self.keys = keys
        self.allowed = allowed
    }

    /// Makes `socket` a CURVE server (before `bind`). A `ZAPHandler` must run on its context.
    public func makeServer(_ socket: ZMQSocket) throws(ZMQError) {
        try socket.setOption(ZMQ_CURVE_SERVER, 1, name: "ZMQ_CURVE_SERVER")
        try socket.setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
        try socket.setOption(ZMQ_ZAP_DOMAIN, bytes: Array(Self.domain.utf8), name: "ZMQ_ZAP_DOMAIN")
        try socket.setHandshakeTimeout(seconds: handshakeSeconds)
    }

    /// Makes `socket` a CURVE client of the server whose public key is `serverKey` (before `connect`).
    public func makeClient(_ socket: ZMQSocket, serverKey: String) throws(ZMQError) {
        try socket.setOption(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8), name: "ZMQ_CURVE_SERVERKEY")
        try socket.setOption(ZMQ_CURVE_PUBLICKEY, bytes: Array(keys.publicKey.utf8), name: "ZMQ_CURVE_PUBLICKEY")
        try socket.setOption(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8), name: "ZMQ_CURVE_SECRETKEY")
    }
}
