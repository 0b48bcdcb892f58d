import ArgumentParser
import LockstepRuntime

/// `--key`, `--allow`, `--coordinator-key`, `--insecure`: every process of a job
/// takes them; each overrides its `[security]` config key.
public struct SecurityOptions: ParsableArguments {
    public init() {}

    @Option(help: "This process's secret key file (from `lockstep keygen`; its public key is the .pub beside it). Required when any address leaves this machine.")
    public var key: String?
    @Option(help: "Directory of .pub files: the public keys of the processes admitted to the job.")
    public var allow: String?
    @Option(name: .customLong("coordinator-key"), help: "The coordinator's public key file, pinned by workers (default: coordinator.pub in --allow, or its only key).")
    public var coordinatorKey: String?
    @Flag(help: "No encryption or authentication, even on a network (a warning says so).")
    public var insecure = false

    func apply(to s: inout SecurityConfig) {
        if let key { s.key = key }
        if let allow { s.allow = allow }
        if let coordinatorKey { s.coordinatorKey = coordinatorKey }
        if insecure { s.insecure = true }
    }
}

/// `lockstep keygen`: a CurveZMQ key pair as two files.
public struct KeygenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CurveZMQ key pair: DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub (public; copy it into every process's --allow directory).")

    public init() {}

    @Option(help: "Directory for the key files (created, mode 0700).") public var out: String
    @Option(help: "File name stem, e.g. coordinator or worker1.") public var name: String

    public func run() throws {
        try CommandLineErrors.report {
            let (secret, pub) = try KeyFiles.generate(in: out, name: name)
            print("wrote \(secret) (secret: keep it on this host, mode 0600) and \(pub) (public)")
        }
    }
}
