import Foundation
import LockstepBase
import LockstepBench
import LockstepRuntime

/// The processes `lockstep bench cluster` starts: ranks in the namespace nodes
/// n2, n3, … (via nsenter, which joins a node's network and execs the rank), each
/// with a log file, a deadline, and no survivors.
final class ClusterBenchRuns {
    let executable: String
    let config: String
    let steps: Int
    let threads: Int
    let python: String
    let anchor: String
    let torchEpochs: Int
    /// Each run gets its own coordinator port: no wait for a port in TIME_WAIT.
    private var port = 29_700

    init(executable: String, config: String, steps: Int, threads: Int, python: String, anchor: String, torchEpochs: Int) {
        (self.executable, self.config, self.steps, self.threads) = (executable, config, steps, threads)
        (self.python, self.anchor, self.torchEpochs) = (python, anchor, torchEpochs)
    }

    static func bitsPerSecond(_ rate: String) -> Double? {
        let r = rate.lowercased()
        for (suffix, scale) in [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)] where r.hasSuffix(suffix) {
            return Double(r.dropLast(suffix.count)).flatMap { $0 > 0 ? $0 * scale : nil }
        }
        return nil
    }

    /// α and β from the 1 MiB and 16 MiB all-reduces. Token buckets let short bursts
    /// pass above the rate, which can make the least-squares α negative; α is then 0 and
    /// β what the largest size needs.
    static func alphaBeta(_ results: [AllReduceBenchmark.Result], workers: Int) throws -> AlphaBetaModel {
        let samples = results.map { AlphaBetaModel.Sample(workers: workers, bytes: $0.bytes, seconds: $0.seconds) }
        let fit = try AlphaBetaModel.fit(samples)
        guard fit.alpha < 0, let largest = samples.max(by: { $0.bytes < $1.bytes }) else { return fit }
        let n = Double(workers)
        return AlphaBetaModel(alpha: 0, beta: largest.seconds / (2 * (n - 1) / n * Double(largest.bytes)))
    }

    static func node(_ host: Int) -> String { "n\(host + 2)" }
    static func address(_ host: Int) -> String { "10.88.0.\(host + 2)" }

    func note(_ s: String) { FileHandle.standardError.write(Data("bench cluster: \(s)\n".utf8)) }

    /// Starts the cluster when nodes n2…n(hosts+1) are not all there.
    func ensureNodes(_ hosts: Int, cluster: String) throws {
        let missing = (0..<hosts).contains { !FileManager.default.fileExists(atPath: "/run/netns/\(Self.node($0))") }
        if missing {
            note("starting the namespace cluster: \(cluster) up \(hosts)")
            try shell(["/bin/bash", cluster, "up", String(hosts)], timeout: 900)
        }
    }

    /// Runs a command to its end; its output goes to our stderr.
    @discardableResult
    func shell(_ command: [String], timeout: Double = 120) throws -> Int32 {
        let p = try start(command, log: FileHandle.standardError)
        try wait(p, timeout: timeout, name: command.joined(separator: " "))
        guard p.terminationStatus == 0 else { throw LockstepError("bench cluster: \(command.joined(separator: " ")) failed (status \(p.terminationStatus))") }
        return 0
    }

    /// `lockstep bench allreduce` with one rank per node: 1 MiB and 16 MiB.
    func allReduce(hosts: Int) throws -> [AllReduceBenchmark.Result] {
        let nodes = (0..<hosts).map(Self.node).joined(separator: ",")
        let options = try AllReduceBench.parse(["--workers", String(hosts), "--sizes", "1M,16M", "--ops", "allreduce",
                                                "--iterations", "10", "--warmup", "2", "--timeout", "120", "--netns", nodes])
        return try BenchLauncher(plan: try BenchPlan(options)).run().results
    }

    /// `lockstep run` on `hosts` nodes × `perHost` workers, with torchrun's variables.
    func train(hosts: Int, perHost: Int, extra: [String]) throws -> TrainRun {
        let world = hosts * perHost, port = nextPort()
        return try inTemporaryDirectory { dir in
            // Rank 0, which also runs the coordinator, starts last: the others wait for it.
            try runRanks(Array((0..<world).reversed()), name: "lockstep run", timeout: 600, logs: dir) { rank in
                ["/usr/bin/nsenter", "--net=/run/netns/\(Self.node(rank / perHost))", "/usr/bin/env",
                 "RANK=\(rank)", "WORLD_SIZE=\(world)", "LOCAL_RANK=\(rank % perHost)", "MASTER_ADDR=\(Self.address(0))",
                 "MASTER_PORT=\(port)", executable, "run", "--config", config, "--threads", String(threads),
                 "--max-steps", String(steps), "--epochs", "1000",
                 // Plain TCP, like the anchor's gloo: these figures are of the network, not of CurveZMQ.
                 "--insecure"] + extra
                    + (rank == 0 ? ["--metrics", "\(dir)/metrics.jsonl"] : [])
            }
            return try TrainRun.parse(metricsFile: "\(dir)/metrics.jsonl", workers: world)
        }
    }

    /// Why torch DDP cannot run, or nil when `python` imports torch and the anchor exists.
    func torchMissing() -> String? {
        guard FileManager.default.fileExists(atPath: anchor) else { return "not run: \(anchor) not found" }
        guard let p = try? start([python, "-c", "import torch"], log: FileHandle.nullDevice),
              (try? wait(p, timeout: 60, name: "python")) != nil, p.terminationStatus == 0 else {
            return "not run: \(python) cannot import torch (pass --python with one that can)"
        }
        return nil
    }

    /// The anchor's samples/s (median epoch) with one rank per node, gloo over eth0.
    func torchSamplesPerSecond(hosts: Int) throws -> Double {
        let port = nextPort()
        return try inTemporaryDirectory { dir in
            let logs = try runRanks(Array(0..<hosts), name: "torch DDP", timeout: 900, logs: dir) { rank in
                ["/usr/bin/nsenter", "--net=/run/netns/\(Self.node(rank))", "/usr/bin/env", "GLOO_SOCKET_IFNAME=eth0",
                 "OMP_NUM_THREADS=\(threads)", python, anchor, "--world", String(hosts), "--rank", String(rank),
                 "--master", Self.address(0), "--port", String(port), "--epochs", String(torchEpochs), "--threads", String(threads)]
            }
            let out = (try? String(contentsOfFile: logs[0], encoding: .utf8)) ?? ""
            for line in out.split(separator: "\n").reversed() {
                if let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                   let sps = (o["sps_median"] as? NSNumber)?.doubleValue { return sps }
            }
            throw LockstepError("bench cluster: torch rank 0 printed no result; its log:\n\(tail(logs[0]))")
        }
    }

    private func nextPort() -> Int { port += 1; return port }

    /// `body` with a fresh temporary directory, removed afterwards.
    private func inTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-cluster-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return try body(dir)
    }

    /// Starts `command(rank)` for each rank in `order`, each logging to LOGS/rank-R.log, and
    /// waits for all, each at most `timeout` s. Returns the logs by rank. A rank that fails
    /// is named with its exit status and log tail, and the others are killed.
    private func runRanks(_ order: [Int], name: String, timeout: Double, logs dir: String,
                          _ command: (Int) -> [String]) throws -> [String] {
        var started: [(rank: Int, process: Process, log: String)] = []
        defer { for s in started where s.process.isRunning { kill(s.process.processIdentifier, SIGKILL) } }
        for rank in order {
            let log = "\(dir)/rank-\(rank).log"
            started.append((rank, try start(command(rank), log: try logFile(log)), log))
        }
        for s in started {
            try wait(s.process, timeout: timeout, name: "\(name) rank \(s.rank)", log: s.log)
            guard s.process.terminationStatus == 0 else {
                throw LockstepError("bench cluster: \(name) rank \(s.rank) failed (status \(s.process.terminationStatus)); its log:\n\(tail(s.log))")
            }
        }
        return started.sorted { $0.rank < $1.rank }.map(\.log)
    }

    // MARK: - Processes

    private func logFile(_ path: String) throws -> FileHandle {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw LockstepError("bench cluster: cannot write \(path)")
        }
        return h
    }

    private func start(_ command: [String], log: FileHandle) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst())
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = log
        p.standardError = log
        try p.run()
        return p
    }

    /// Waits for `p` until `timeout`; past it, kills it and throws.
    private func wait(_ p: Process, timeout: Double, name: String, log: String? = nil) throws {
        let deadline = MonotonicClock.now() + timeout
        while p.isRunning, MonotonicClock.now() < deadline { usleep(20_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            throw LockstepError("bench cluster: \(name) ran past \(Int(timeout)) s" + (log.map { "; its log:\n" + tail($0) } ?? ""))
        }
    }

    private func tail(_ path: String) -> String {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").suffix(8).joined(separator: "\n")
    }
}
