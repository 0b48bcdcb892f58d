import Foundation
import Synchronization

/// The coordinator's figures in Prometheus' text format (0.0.4), served over HTTP
/// at any path of `--metrics-port`. One thread accepts one connection at a time;
/// every read has a 1 s deadline and a request may be at most 8 KiB, so a stranger
/// can delay a scrape but never the job. The coordinator replaces the figures with
/// `update`.
public final class PrometheusEndpoint: Sendable {
    public let port: Int
    private let figures = Mutex<[(name: String, help: String, value: Double)]>([])
    private let stopping = Atomic<Bool>(false)
    private let listener: Int32

    /// Listens on all interfaces at `port` (0: any free port, see `port`).
    public init(port: Int) throws {
        guard (0...65535).contains(port) else { throw LockstepError("--metrics-port \(port): use a port from 0 to 65535") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LockstepError("--metrics-port \(port): cannot create a socket") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = INADDR_ANY
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound, listen(fd, 16) == 0 else {
            close(fd)
            throw LockstepError("--metrics-port \(port): cannot listen there (\(String(cString: strerror(errno)))); choose a free port")
        }
        listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.name = "lockstep-metrics"
        thread.start()
    }

    deinit { stop() }

    /// Replaces the figures served (each a gauge named `lockstep_<name>`).
    public func update(_ values: [(name: String, help: String, value: Double)]) {
        figures.withLock { $0 = values }
    }

    public func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    /// The exposition text: HELP and TYPE before each sample, a newline at the end.
    public func text() -> String {
        figures.withLock { list in
            var family = ""
            return list.map { f in
                let value = f.value.isNaN ? "NaN" : f.value.isInfinite ? (f.value > 0 ? "+Inf" : "-Inf") : "\(f.value)"
                // A labelled sample (`name{rank="1"}`) shares its family's HELP and TYPE lines.
                let name = String(f.name.prefix { $0 != "{" })
                defer { family = name }
                let head = name == family ? "" : "# HELP lockstep_\(name) \(f.help)\n# TYPE lockstep_\(name) gauge\n"
                return head + "lockstep_\(f.name) \(value)\n"
            }.joined()
        }
    }

    private func serve() {
        defer { close(listener) }
        while !stopping.load(ordering: .relaxed) {
            var item = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&item, 1, 200) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            var deadline = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &deadline, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &deadline, socklen_t(MemoryLayout<timeval>.size))
            var request = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 2048)
            while request.count < 8192, !request.ends(with: [13, 10, 13, 10]) {
                let n = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                if n <= 0 { break }
                request += chunk[..<n]
            }
            if request.starts(with: Array("GET ".utf8)) {
                let body = Array(text().utf8)
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                let response = Array(head.utf8) + body
                _ = response.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            close(client)
        }
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
