import LockstepBase
import Foundation
import LockstepBench
import LockstepCollectives
import LockstepRuntime
import LockstepTransport

/// Starts the worker processes, brokers the endpoint table, collects rank 0's
/// results. Whatever happens, no child outlives `run`.
struct BenchLauncher {
    let plan: BenchPlan

    struct Outcome {
        var results: [AllReduceBenchmark.Result]
        var chunkBytes: Int
        var smallMessageThreshold: Int
        var smallGatherThreshold: Int
    }

    func run() throws -> Outcome {
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        let group = ChildProcesses()
        var children: [Process] = []
        var inputs: [Pipe] = []
        var readers: [LineReader] = []
        var childArguments = plan.childArguments
        let keyDir = plan.curve ? NSTemporaryDirectory() + "lockstep-bench-keys-\(getpid())" : nil
        if let keyDir {
            try KeyFiles.generate(in: keyDir, name: "bench")
            childArguments += ["--key-dir", keyDir]
        }
        defer {
            group.stop()
            if let keyDir { try? FileManager.default.removeItem(atPath: keyDir) }
            if plan.transport == .ipc {
                for r in 0..<plan.workers { unlink(BenchWorker.ipcPath(launcher: getpid(), rank: r)) }
            }
            if plan.transport == .shm {
                for r in 0..<plan.workers { unlink(BenchWorker.shmPath(launcher: getpid(), rank: r)) }
            }
        }
        for r in 0..<plan.workers {
            let input = Pipe(), output = Pipe()
            // stderr stays ours: errors show up as they happen.
            // In a namespace: nsenter joins it and execs the rank, which stays our child.
            let inNamespace = !plan.namespaces.isEmpty
            let p = try group.start("rank \(r)", executable: inNamespace ? URL(fileURLWithPath: "/usr/bin/nsenter") : exe,
                                    arguments: (inNamespace ? ["--net=/run/netns/\(plan.namespaces[r])", exe.path] : [])
                                        + childArguments + ["--rank", String(r)],
                                    streams: .pipes(stdin: input, stdout: output))
            children.append(p)
            inputs.append(input)
            readers.append(LineReader(fd: output.fileHandleForReading.fileDescriptor, name: "rank \(r)"))
        }
        func exitNote(_ r: Int) -> String {
            children[r].isRunning ? "" : " (it exited with status \(children[r].terminationStatus))"
        }

        // Rendezvous: every child's endpoint, then the table to everybody.
        let rendezvousDeadline = MonotonicClock.now() + plan.timeout
        var endpoints: [String] = []
        for r in 0..<plan.workers {
            guard let line = try readers[r].readLine(deadline: rendezvousDeadline), line.hasPrefix("endpoint ") else {
                throw LockstepError("bench: rank \(r) did not report its endpoint\(exitNote(r))")
            }
            endpoints.append(String(line.dropFirst("endpoint ".count)))
        }
        let table = Data(("peers " + endpoints.joined(separator: " ") + "\n").utf8)
        for input in inputs { input.fileHandleForWriting.write(table) }

        // Results, from rank 0. Large sizes take a while: the run's deadline is 10× the per-wait one.
        let runDeadline = MonotonicClock.now() + plan.timeout * 10
        var results: [AllReduceBenchmark.Result] = []
        var config: BenchWorker.Config?
        let decoder = JSONDecoder()
        while true {
            guard let line = try readers[0].readLine(deadline: runDeadline) else {
                throw LockstepError("bench: rank 0 stopped before finishing\(exitNote(0)); see the errors above")
            }
            if line == "done" { break }
            if line.hasPrefix("config ") {
                config = try decoder.decode(BenchWorker.Config.self, from: Data(line.dropFirst("config ".count).utf8))
            } else if line.hasPrefix("result ") {
                results.append(try decoder.decode(AllReduceBenchmark.Result.self, from: Data(line.dropFirst("result ".count).utf8)))
            }
        }
        // Everybody should now exit on its own, successfully.
        let exitDeadline = MonotonicClock.now() + plan.timeout
        while children.contains(where: \.isRunning), MonotonicClock.now() < exitDeadline { usleep(10_000) }
        for (r, child) in children.enumerated() {
            if child.isRunning { throw LockstepError("bench: rank \(r) did not exit within \(plan.timeout) s after the run") }
            if child.terminationStatus != 0 { throw LockstepError("bench: rank \(r) exited with status \(child.terminationStatus)") }
        }
        guard let config else { throw LockstepError("bench: rank 0 never reported its configuration") }
        return Outcome(results: results, chunkBytes: config.chunkBytes, smallMessageThreshold: config.smallMessageThreshold,
                       smallGatherThreshold: config.smallGatherThreshold)
    }
}

/// One rank of the benchmark, in its own process.
struct BenchWorker {
    let plan: BenchPlan
    let rank: Int

    struct Config: Codable {
        var chunkBytes: Int
        var smallMessageThreshold: Int
        var smallGatherThreshold: Int
    }

    static func ipcPath(launcher: pid_t, rank: Int) -> String { "/tmp/lockstep-bench-\(launcher)-\(rank).ipc" }
    static func shmPath(launcher: pid_t, rank: Int) -> String { "/dev/shm/lockstep-bench-\(launcher)-\(rank)" }

    func run() throws {
        guard rank >= 0, rank < plan.workers else { throw LockstepError("--rank \(rank) outside 0..<\(plan.workers)") }
        let launcher = getppid()
        // No orphans: when the launcher goes away, so do we (a rank blocked in a
        // collective would otherwise wait out its deadline first).
        let socketFile = plan.transport == .ipc ? Self.ipcPath(launcher: launcher, rank: rank)
            : plan.transport == .shm ? Self.shmPath(launcher: launcher, rank: rank) : nil
        Thread.detachNewThread {
            while getppid() == launcher { usleep(100_000) }
            FileHandle.standardError.write(Data("error: bench rank \(rank): the launching process exited; stopping\n".utf8))
            if let socketFile { unlink(socketFile) }
            _exit(3)
        }
        let context = try ZMQContext()
        // One throwaway key pair for every rank: each admits and pins that key.
        let security = try plan.keyDir.map { dir in
            let keys = try KeyFiles.readSecret(dir + "/bench.key", flag: "--key-dir")
            return CurveSecurity(keys: keys, allowed: [keys.publicKey])
        }
        let bind = socketFile.map { plan.transport.rawValue + "://" + $0 } ?? (plan.namespaces.isEmpty ? "tcp://127.0.0.1:0" : "tcp://0.0.0.0:0")
        let transport = try EndpointTransports.bind(bind, rank: rank, worldSize: plan.workers, jobID: UInt64(launcher),
                                                    context: context, timeoutSeconds: plan.timeout, security: security)
        defer { transport.close() }
        if let z = plan.zeroCopyMinimum { (transport as? ZMQPeerTransport)?.zeroCopyMinimumBytes = z }
        var endpoint = transport.boundEndpoint
        if !plan.namespaces.isEmpty {  // peers dial this namespace's own address
            guard let address = RouteAddress.firstInterfaceIPv4(), let port = endpoint.split(separator: ":").last else {
                throw LockstepError("bench rank \(rank): namespace \(plan.namespaces[rank]) has no IPv4 address")
            }
            endpoint = "tcp://\(address):\(port)"
        }
        emit("endpoint \(endpoint)")

        // Synchronization point: the launcher's endpoint table, bounded.
        let stdin = LineReader(fd: 0, name: "the launcher")
        guard let line = try stdin.readLine(deadline: MonotonicClock.now() + plan.timeout), line.hasPrefix("peers ") else {
            throw LockstepError("bench rank \(rank): no peer table from the launcher")
        }
        let peers = line.dropFirst("peers ".count).split(separator: " ").map(String.init)
        guard peers.count == plan.workers else {
            throw LockstepError("bench rank \(rank): peer table has \(peers.count) entries for \(plan.workers) workers")
        }
        try transport.connect(peers: peers, hosts: nil, keys: security.map { Array(repeating: $0.keys.publicKey, count: plan.workers) })
        let comm = plan.chunkBytes.map { Communicator(transport: transport, chunkBytes: $0) } ?? Communicator(transport: transport)
        if let t = plan.smallThreshold {
            comm.smallMessageThreshold = t
            comm.smallGatherThreshold = t
        }
        // Synchronization point: everybody connected.
        try comm.barrier()
        transport.peersConnected()

        let encoder = JSONEncoder()
        if rank == 0 {
            let config = Config(chunkBytes: comm.chunkBytes, smallMessageThreshold: comm.smallMessageThreshold,
                                smallGatherThreshold: comm.smallGatherThreshold)
            emit("config " + String(decoding: try encoder.encode(config), as: UTF8.self))
        }
        let benchmark = AllReduceBenchmark(sizesInBytes: plan.sizes, operations: plan.operations, algorithms: plan.algorithms,
                                           warmupIterations: plan.warmup, iterations: plan.iterations,
                                           adaptiveVolumeBytes: 200_000_000)
        let results = try benchmark.run(on: comm)
        if rank == 0 {
            for result in results { emit("result " + String(decoding: try encoder.encode(result), as: UTF8.self)) }
        }
        // Synchronization point: nobody closes while a peer still needs its frames.
        try comm.barrier()
        if rank == 0 { emit("done") }
    }

    private func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

/// Line-by-line reading of a pipe with a deadline (poll, then read).
final class LineReader {
    let fd: Int32
    let name: String
    private var buffer: [UInt8] = []
    private var ended = false

    init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    /// The next line without its newline; nil at end of file.
    func readLine(deadline: Double) throws -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            if ended {
                defer { buffer.removeAll() }
                return buffer.isEmpty ? nil : String(decoding: buffer, as: UTF8.self)
            }
            let remaining = deadline - MonotonicClock.now()
            guard remaining > 0 else { throw LockstepError("bench: timed out waiting for \(name)") }
            var item = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&item, 1, Int32(min(remaining, 1) * 1000) + 1)
            if ready < 0 {
                if errno == EINTR { continue }
                throw LockstepError("bench: poll on \(name)'s pipe failed: \(String(cString: strerror(errno)))")
            }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw LockstepError("bench: reading \(name)'s pipe failed: \(String(cString: strerror(errno)))")
            }
            if count == 0 { ended = true } else { buffer += chunk[..<count] }
        }
    }
}
