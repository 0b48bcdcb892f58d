import CZeroMQ
import Foundation
import Synchronization

/// The ZeroMQ authentication handler (ZAP, RFC 27) of one context: libzmq asks it
/// about every client that completes a CURVE handshake with a server socket of the
/// context, and it admits exactly the allowlisted public keys. An admitted
/// connection's messages carry the client's key as their "User-Id"
/// (`ZMQMessage.userID`), so a process can check who a message is from.
///
/// Without a handler libzmq would admit every key, so it is started (and bound)
/// before any server socket of the context binds. One thread, one REP socket;
/// `stop` closes it (the context can only end after that).
public final class ZAPHandler: Sendable {
    /// Connections refused so far.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    private let stopping = Atomic<Bool>(false)
    private let refusedCount = Atomic<Int>(0)
    private let done = DispatchSemaphore(value: 0)

    /// - Parameter note: called with one line per refusal (the caller rate-limits it).
    public init(context: ZMQContext, allowed: Set<String>, owner: String, note: @escaping @Sendable (String) -> Void) throws {
        let socket = try ZMQSocket(context: context, kind: .rep)
        try socket.bind("inproc://zeromq.zap.01")
        nonisolated(unsafe) let handed = socket  // used by the handler thread alone from here on
        let thread = Thread { [self] in
            serve(handed, allowed: allowed, owner: owner, note: note)
            handed.close()
            done.signal()
        }
        thread.name = "lockstep-zap"
        thread.start()
    }

    /// Stops the handler and closes its socket (waits at most 2 s).
    public func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        _ = done.wait(timeout: .now() + 2)
    }

    private func serve(_ socket: ZMQSocket, allowed: Set<String>, owner: String, note: @Sendable (String) -> Void) {
        while !stopping.load(ordering: .relaxed) {
            guard let parts = try? socket.receiveMultipart(timeoutSeconds: 0.1) else { continue }
            let fields = parts.map(\.array)
            // version, request id, domain, address, routing id, mechanism, credentials...
            guard fields.count >= 6 else { continue }
            let requestID = fields[1]
            let address = String(decoding: fields[3], as: UTF8.self)
            let mechanism = String(decoding: fields[5], as: UTF8.self)
            var status = "400", text = "not allowed", user = ""
            if mechanism == "CURVE", fields.count >= 7, let key = CurveKeyPair.z85(fields[6]) {
                if allowed.contains(key) {
                    (status, text, user) = ("200", "OK", key)
                } else {
                    note("\(owner): refused a connection from \(address): its key \(key.prefix(8))… is not in the allowlist (--allow)")
                }
            } else {
                note("\(owner): refused a connection from \(address): it did not present a CURVE key (mechanism \(mechanism))")
            }
            if status != "200" { refusedCount.add(1, ordering: .relaxed) }
            let reply = [Array("1.0".utf8), requestID, Array(status.utf8), Array(text.utf8), Array(user.utf8), []]
            try? socket.sendMultipart(reply)
        }
    }
}
