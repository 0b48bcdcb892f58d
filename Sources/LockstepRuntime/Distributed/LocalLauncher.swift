import Foundation
import Synchronization

/// `lockstep train --workers N`: a coordinator and N workers of the real
/// executables on this machine; the workers' data plane is loopback TCP, ipc
/// sockets, or shared memory (`--transport tcp|ipc|shm`). The job travels as a
/// typed `JobSpec`, written once to a file the children read.
///
/// Children's output is prefixed with their role and rank. Ctrl-C / SIGTERM are
/// forwarded to every child; when one child fails the others get the
/// coordinator's abort, and whatever still runs after a grace period is killed,
/// so no process outlives the launcher. Workers also watch the launcher's pid
/// (`--parent-pid`).
public enum LocalLauncher {
    /// Most worker processes one machine may be asked to run.
    public static let maxWorkers = 256

    /// Runs `job` as a coordinator and `workers` worker processes. The children read
    /// the job from a spec file (mode 0600, removed at the end), not from the command line.
    public static func run(job: JobSpec, workers: Int, transport: DataPlane) throws {
        guard workers >= 1, workers <= maxWorkers else {
            throw LockstepError("--workers \(workers): must be between 1 and \(maxWorkers) on one machine")
        }
        let dir = URL(fileURLWithPath: LocalLauncher.executablePath()).deletingLastPathComponent()
        let coordinatorExe = dir.appendingPathComponent("lockstep-coordinator")
        let workerExe = dir.appendingPathComponent("lockstep-worker")
        for exe in [coordinatorExe, workerExe] where !FileManager.default.isExecutableFile(atPath: exe.path) {
            throw LockstepError("\(exe.path) not found; build all products with `swift build -c release`")
        }
        let specPath = NSTemporaryDirectory() + "lockstep-\(getpid())-job.json"
        try job.write(to: specPath)
        defer { unlink(specPath) }
        let port = try freePort()
        let address = "tcp://127.0.0.1:\(port)"
        let parent = String(getpid())

        let children = ChildProcesses()
        defer { children.stop() }
        try children.start("coordinator", executable: coordinatorExe,
                           arguments: ["--job-spec", specPath, "--bind", address, "--workers", String(workers), "--parent-pid", parent])
        func workerArguments(_ r: Int) -> [String] {
            var args = ["--job-spec", specPath, "--coordinator", address, "--rank", String(r), "--parent-pid", parent]
            switch transport {
            case .tcp: break
            case .ipc: args += ["--bind", "ipc://" + ipcPath(rank: r)]
            case .shm: args += ["--bind", "shm://" + shmName(rank: r)]
            }
            return args
        }
        for r in 0..<workers { try children.start("rank \(r)", executable: workerExe, arguments: workerArguments(r)) }
        children.forwardSignals()

        // Elastic jobs: the coordinator decides what a lost worker means; like torchrun's
        // agent, the launcher starts a replacement unless --min-workers lets the job shrink.
        let restarts = job.config.restartsAllowed(workers: workers)
        let replaceLost = restarts > 0 && (job.config.minWorkers ?? workers) >= workers
        var replaced = 0
        var failed: String?
        var deadline: Date?
        var seen = Set<Int32>()
        while children.anyRunning {
            for c in children.children where !c.process.isRunning && seen.insert(c.process.processIdentifier).inserted {
                let killed = c.process.terminationReason == .uncaughtSignal
                guard killed || c.process.terminationStatus != 0 else { continue }
                if c.name == "coordinator" {
                    // It has aborted the workers, or (killed) they finish and keep their results themselves.
                    failed = killed ? ChildProcesses.describe(c) : "coordinator: " + (children.lastErrorLine(of: c.name) ?? ChildProcesses.describe(c))
                    if !killed { deadline = Date().addingTimeInterval(5) }
                    continue
                }
                if restarts > 0 {
                    let coordinatorRunning = children.children.first?.process.isRunning ?? false
                    if replaceLost, replaced < restarts, coordinatorRunning, let r = Int(c.name.dropFirst(5)) {
                        replaced += 1
                        logLine("lockstep: \(ChildProcesses.describe(c)); starting a replacement (\(replaced) of \(restarts))")
                        try children.start(c.name, executable: workerExe, arguments: workerArguments(r))
                    }
                    continue
                }
                if failed == nil { failed = ChildProcesses.describe(c) }
                // The coordinator stops the others at once; this is the backstop.
                deadline = deadline ?? Date().addingTimeInterval(killed ? 10 : 40)
            }
            if let d = deadline, Date() > d { children.signalAll(SIGKILL) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        children.stop()
        switch transport {
        case .tcp: break
        case .ipc: for r in 0..<workers { unlink(ipcPath(rank: r)) }
        // Workers remove their segments' names after the first barrier; these are left only by a failed start.
        case .shm: for r in 0..<workers { unlink("/dev/shm/" + shmName(rank: r)) }
        }
        if let coordinator = children.children.first, coordinator.process.terminationStatus != 0, !(failed?.hasPrefix("coordinator") ?? false) {
            failed = "coordinator: " + (children.lastErrorLine(of: coordinator.name) ?? ChildProcesses.describe(coordinator))
        }
        if children.interrupted { throw LockstepError("interrupted: the coordinator and all \(workers) workers were stopped") }
        if let failed { throw LockstepError("multiprocess run failed: \(failed)") }
    }

    /// The /dev/shm name of rank `rank`'s segment with `--transport shm`.
    static func shmName(rank: Int) -> String { "lockstep-\(getpid())-\(rank)" }

    /// The socket file of rank `rank`'s data endpoint with `--transport ipc`, removed at the end.
    static func ipcPath(rank: Int) -> String { "/tmp/lockstep-\(getpid())-\(rank).ipc" }

    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// A TCP port that was free a moment ago on 127.0.0.1.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LockstepError("cannot create a socket to find a free port") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw LockstepError("cannot find a free TCP port on 127.0.0.1") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
