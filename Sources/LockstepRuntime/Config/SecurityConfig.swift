import Foundation
import LockstepTransport

/// `[security]`: where this process's keys are (`--key`, `--allow`,
/// `--coordinator-key`) or that it runs without security (`--insecure`).
///
/// Each process reads its own: the settings travel to the children of
/// `lockstep train --workers N` in the job spec, never in a coordinator's assignment.
public struct SecurityConfig: Codable, Sendable, Equatable {
    /// This process's secret key file (its public key is the `.pub` beside it).
    public var key: String?
    /// A directory of `.pub` files: the public keys admitted.
    public var allow: String?
    /// The coordinator's public key file, pinned by workers.
    public var coordinatorKey: String?
    /// No encryption or authentication even on a network.
    public var insecure = false

    public init(key: String? = nil, allow: String? = nil, coordinatorKey: String? = nil, insecure: Bool = false) {
        self.key = key
        self.allow = allow
        self.coordinatorKey = coordinatorKey
        self.insecure = insecure
    }

    /// What a process whose sockets use `endpoints` runs with: CURVE when it has keys,
    /// or when any endpoint leaves this machine (then keys are required); nil (plain)
    /// with `--insecure` (after a warning) or on loopback without keys.
    /// - Parameter role: "coordinator" or "rank 1", for the warning.
    public func resolve(endpoints: [String], role: String) throws -> JobSecurity? {
        if insecure {
            if key != nil { throw LockstepError("--insecure and --key: choose one (--insecure turns encryption and authentication off)") }
            logLine("warning: \(role): --insecure: traffic is not encrypted, and anyone who can reach this job's ports can join it or read its gradients")
            return nil
        }
        guard let key else {
            if let remote = endpoints.first(where: { !Self.staysOnThisMachine($0) }) {
                throw LockstepError("\(remote) is reachable from the network, so the job needs keys: make them with `lockstep keygen --out keys --name job` and pass --key keys/job.key --allow keys (or --insecure on a trusted network)")
            }
            return nil
        }
        guard let allow else {
            throw LockstepError("--key \(key): give --allow DIR too, a directory of the .pub files of the job's processes")
        }
        let pair = try KeyFiles.readSecret(key, flag: "--key")
        let allowed = try KeyFiles.readAllowlist(allow, flag: "--allow")
        let coordinator: String
        if let coordinatorKey {
            coordinator = try KeyFiles.readPublic(coordinatorKey, flag: "--coordinator-key")
        } else if let named = allowed["coordinator.pub"] {
            coordinator = named
        } else if allowed.count == 1 {
            coordinator = allowed.values.first!
        } else {
            throw LockstepError("--allow \(allow) holds \(allowed.count) keys: give --coordinator-key FILE.pub, the coordinator's public key (or name it coordinator.pub)")
        }
        return JobSecurity(curve: CurveSecurity(keys: pair, allowed: Set(allowed.values)), coordinatorKey: coordinator)
    }

    /// ipc://, shm://, inproc:// and loopback TCP addresses never leave this machine.
    static func staysOnThisMachine(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("shm://") || endpoint.hasPrefix("inproc://") { return true }
        guard let (host, _) = RouteAddress.hostAndPort(of: endpoint) else { return false }
        return RouteAddress.isLoopback(host)
    }
}

/// The resolved security of one process: its CURVE keys and allowlist, and the
/// coordinator's public key that its control connection pins.
public struct JobSecurity: Sendable, Equatable {
    public var curve: CurveSecurity
    public var coordinatorKey: String
}
