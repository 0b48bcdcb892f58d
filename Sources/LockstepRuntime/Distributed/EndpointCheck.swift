/// Checks what libzmq lets through: a TCP port above 65535 is silently taken
/// modulo 65536, so `tcp://host:99999` would listen on (or dial) port 34463.
enum EndpointCheck {
    /// Throws a one-line error naming `flag` when a `tcp://HOST:PORT` endpoint has a port outside 0...65535.
    static func validate(_ endpoint: String, flag: String) throws {
        guard endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":") else { return }
        let port = endpoint[endpoint.index(after: colon)...]
        if port == "*" { return }
        guard let n = Int(port), (0...65535).contains(n) else {
            throw LockstepError("\(flag) \(endpoint): the port must be a number from 0 to 65535; use an address like tcp://HOST:5555")
        }
    }
}
