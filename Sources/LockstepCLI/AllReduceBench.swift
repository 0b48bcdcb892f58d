import ArgumentParser
import LockstepBench
import Foundation
import LockstepCollectives
import LockstepRuntime
import LockstepTransport

/// `lockstep bench allreduce`: collectives between real processes over
/// ZeroMQ, nccl-tests conventions.
///
/// This process is only the launcher: it starts `--workers` copies of its own
/// executable (`--rank r`), each with a `ZMQPeerTransport`. Rendezvous goes
/// through the children's pipes: every child binds its data endpoint and
/// prints it, the launcher sends the whole table back on each child's stdin,
/// rank 0 runs the benchmark's bookkeeping and prints its results as JSON lines
/// that the launcher turns into the table. Every wait has a deadline; children
/// exit when the launcher dies (they watch `getppid`).
public struct AllReduceBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "All-reduce, reduce-scatter and all-gather between N worker processes over ZeroMQ (tcp or ipc) or shared memory (shm); nccl-tests columns.")
    public init() {}

    @Option(help: "Worker processes (world size).") public var workers: Int = 2
    @Option(help: "Comma-separated buffer sizes in bytes; K and M suffixes are powers of 1024.")
    public var sizes: String = "4,4K,64K,1M,16M,64M"
    @Option(help: "tcp (ZeroMQ over loopback), ipc (ZeroMQ over Unix sockets) or shm (shared memory).") public var transport: DataPlane = .tcp
    @Option(help: "Comma-separated operations: allreduce, reducescatter, allgather.")
    public var ops: String = "allreduce,reducescatter,allgather"
    @Option(help: "All-reduce algorithm: auto (what training uses), ring, rd (recursive doubling), small (direct exchange), both (ring and rd: the two auto chooses between, to find the crossover) or all three.")
    public var algorithm: String = "auto"
    @Option(help: "Most timed calls per size (small sizes get up to this many; large ones at least 5).")
    public var iterations: Int = 200
    @Option(help: "Warm-up calls per size.") public var warmup: Int = 3
    @Option(name: .customLong("chunk-bytes"), help: "Ring chunk size in bytes (default: the Communicator's).")
    public var chunkBytes: Int?
    @Option(name: .customLong("small-threshold"), help: "Override the small-message thresholds (bytes) of auto: recursive-doubling all-reduce and Bruck all-gather up to it; 0 forces the ring.")
    public var smallThreshold: Int?
    @Option(name: .customLong("zero-copy-minimum"), help: "Send payloads of at least this many bytes without a copy (default: the transport's; a huge value disables).")
    public var zeroCopyMinimum: Int?
    @Option(help: "Deadline in seconds for every wait (rendezvous, each receive, the whole run ×10).")
    public var timeout: Double = 60
    @Option(help: "Comma-separated network namespaces, one per rank: rank r runs in the r-th (as hosts on one machine, e.g. the namespace cluster's n2,n3); tcp only, needs root.")
    public var netns: String?
    @Option(help: "plain, or curve: every connection encrypted and authenticated with CurveZMQ (a throwaway key pair for the run), tcp only.")
    public var security: String = "plain"
    @Flag(help: "Print JSON instead of a Markdown table.") public var json = false
    @Option(name: .customLong("key-dir"), help: .hidden) public var keyDir: String?

    @Option(help: .hidden) public var rank: Int?

    public func run() throws {
        try CommandLineErrors.report {
            let plan = try BenchPlan(self)
            if let rank {
                try BenchWorker(plan: plan, rank: rank).run()
            } else {
                let outcome = try BenchLauncher(plan: plan).run()
                let report = BenchReport(machine: MachineInfo.current(), plan: plan, outcome: outcome)
                print(json ? try report.json() : report.markdown())
            }
        }
    }
}

/// The parsed, validated options shared by launcher and workers.
struct BenchPlan: Codable {
    var workers: Int
    var sizes: [Int]
    var transport: DataPlane
    var operations: [AllReduceBenchmark.Operation]
    var algorithms: [AllReduceBenchmark.Algorithm]
    var iterations: Int
    var warmup: Int
    var chunkBytes: Int?
    var smallThreshold: Int?
    var zeroCopyMinimum: Int?
    var timeout: Double
    /// Rank r runs in network namespace namespaces[r] (empty: all in this one).
    var namespaces: [String]
    /// CurveZMQ on every connection, with the key pair in `keyDir` (`bench.key`).
    var curve: Bool
    var keyDir: String?
    /// The arguments that reproduce this plan in a child.
    var childArguments: [String]

    init(_ o: AllReduceBench) throws {
        guard o.workers >= 2 else { throw LockstepError("--workers \(o.workers): a collective needs at least 2 processes") }
        guard o.timeout > 0, o.timeout <= 86_400, o.iterations >= 1, o.warmup >= 0 else {
            throw LockstepError("--timeout (at most 86400 s), --iterations and --warmup must be positive")
        }
        guard o.workers <= 256 else { throw LockstepError("--workers \(o.workers): at most 256 processes") }
        workers = o.workers
        transport = o.transport
        iterations = o.iterations
        warmup = o.warmup
        chunkBytes = o.chunkBytes
        smallThreshold = o.smallThreshold
        zeroCopyMinimum = o.zeroCopyMinimum
        timeout = o.timeout
        sizes = try o.sizes.split(separator: ",", omittingEmptySubsequences: false).map { try Self.parseSize(String($0)) }
        guard !sizes.isEmpty else { throw LockstepError("--sizes: give at least one size") }
        if let big = sizes.first(where: { $0 > 1 << 30 }) {
            throw LockstepError("--sizes: \(big) bytes is over the 1 GiB the benchmark allows per buffer")
        }
        operations = try o.ops.split(separator: ",").map { name in
            switch name.lowercased().replacingOccurrences(of: "-", with: "") {
            case "allreduce": return .allReduce
            case "reducescatter": return .reduceScatter
            case "allgather": return .allGather
            default: throw LockstepError("--ops: unknown operation \(name); use allreduce, reducescatter, allgather")
            }
        }
        switch o.algorithm {
        case "auto": algorithms = [.auto]
        case "ring": algorithms = [.ring]
        case "small": algorithms = [.small]
        case "rd", "recursive-doubling": algorithms = [.recursiveDoubling]
        case "both": algorithms = [.ring, .recursiveDoubling]
        case "all": algorithms = [.ring, .recursiveDoubling, .small]
        default: throw LockstepError("--algorithm \(o.algorithm): use auto, ring, small, rd, both or all")
        }
        if let c = o.chunkBytes, c < 4 { throw LockstepError("--chunk-bytes \(c): at least 4") }
        guard ["plain", "curve"].contains(o.security) else { throw LockstepError("--security \(o.security): use plain or curve") }
        curve = o.security == "curve"
        keyDir = o.keyDir
        if curve, o.transport != .tcp { throw LockstepError("--security curve: applies to --transport tcp (ipc and shm never leave this machine)") }
        namespaces = o.netns.map { $0.split(separator: ",").map(String.init) } ?? []
        if !namespaces.isEmpty {
            guard namespaces.count == o.workers, o.transport == .tcp else {
                throw LockstepError("--netns \(o.netns!): name one namespace per worker (\(o.workers)), with --transport tcp")
            }
            for ns in namespaces where !FileManager.default.fileExists(atPath: "/run/netns/\(ns)") {
                throw LockstepError("--netns: no network namespace \(ns) (/run/netns/\(ns)); create it, e.g. with ../shared/cluster/slurm-netns.sh up")
            }
        }
        var args = ["bench", "allreduce", "--workers", String(o.workers), "--sizes", o.sizes, "--transport", o.transport.rawValue,
                    "--ops", o.ops, "--algorithm", o.algorithm, "--iterations", String(o.iterations),
                    "--warmup", String(o.warmup), "--timeout", String(o.timeout)]
        if let c = o.chunkBytes { args += ["--chunk-bytes", String(c)] }
        if let t = o.smallThreshold { args += ["--small-threshold", String(t)] }
        if let z = o.zeroCopyMinimum { args += ["--zero-copy-minimum", String(z)] }
        if let n = o.netns { args += ["--netns", n] }
        if curve { args += ["--security", "curve"] }
        childArguments = args
    }

    /// "4", "4K", "64k", "1M", "16MiB" → bytes (whole floats, at least one).
    static func parseSize(_ text: String) throws -> Int {
        var t = text.trimmingCharacters(in: .whitespaces).uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        var scale = 1
        if t.hasSuffix("K") { scale = 1 << 10; t.removeLast() } else if t.hasSuffix("M") { scale = 1 << 20; t.removeLast() }
        else if t.hasSuffix("G") { scale = 1 << 30; t.removeLast() }
        guard let n = Int(t), n > 0 else { throw LockstepError("--sizes: cannot read \(text) as a size such as 4, 4K, 1M") }
        let bytes = n * scale
        guard bytes % 4 == 0 else { throw LockstepError("--sizes: \(text) is not a whole number of 4-byte floats") }
        return bytes
    }
}

/// CPU model, logical cores, libzmq version: the header of every report.
struct MachineInfo: Codable {
    var cpu: String
    var cores: Int
    var libzmq: String
    var crc32cHardware: Bool

    static func current() -> MachineInfo {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { $0.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "" } ?? "unknown CPU"
        let v = ZMQContext.version
        return MachineInfo(cpu: model, cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))),
                           libzmq: "\(v.major).\(v.minor).\(v.patch)", crc32cHardware: CRC32C.isHardwareAccelerated)
    }
}
