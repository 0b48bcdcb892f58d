import Synchronization
import LockstepKernels
import LockstepRuntime
import LockstepTransport
import Foundation
import LockstepCollectives
import LockstepNN
import LockstepTransport

/// All-reduce timings over real processes and ZeroMQ, for fitting `AlphaBetaModel`.
///
/// `measure` starts N copies of `lockstep bench allreduce-rank` on loopback TCP
/// (the data plane of `lockstep train --workers N`, without the coordinator); each
/// runs `AllReduceBenchmark` (checked, then timed: median of barrier-aligned calls)
/// and rank 0 prints one JSON sample per size.
public enum AllReduceProbe {
    /// Body of one rank: bind, connect, benchmark; rank 0's samples are returned.
    public static func runRank(rank: Int, endpoints: [String], sizes: [Int], chunkBytes: Int, iterations: Int) throws -> [AlphaBetaModel.Sample] {
        let context = try ZMQContext()
        let transport = try ZMQPeerTransport(rank: rank, worldSize: endpoints.count, jobID: 0x5CA1E, bindEndpoint: endpoints[rank],
                                             context: context, timeoutSeconds: 30)
        defer { transport.close() }
        try transport.connect(peers: endpoints)
        let comm = Communicator(transport: transport, chunkBytes: chunkBytes)
        try comm.barrier()
        // The ring, whatever the size: the model's α and β are the ring's (`AlphaBetaModel.terms`).
        let bench = AllReduceBenchmark(sizesInBytes: sizes, operations: [.allReduce], algorithms: [.ring],
                                       warmupIterations: 3, iterations: iterations)
        let results = try bench.run(on: comm)
        try comm.barrier()  // nobody closes while a peer still receives
        return results.map { AlphaBetaModel.Sample(workers: endpoints.count, bytes: $0.bytes, seconds: $0.seconds) }
    }

    /// Spawns `workers` rank processes of `executable` and collects rank 0's samples.
    public static func measure(executable: String, workers: Int, sizes: [Int], chunkBytes: Int, iterations: Int,
                               timeoutSeconds: Double = 120) throws -> [AlphaBetaModel.Sample] {
        let endpoints = try (0..<workers).map { _ in "tcp://127.0.0.1:\(try LocalLauncher.freePort())" }
        var processes: [Process] = []
        let out = Pipe()
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        for r in 0..<workers {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = ["bench", "allreduce-rank", "--rank", String(r), "--endpoints", endpoints.joined(separator: ","),
                           "--sizes", sizes.map(String.init).joined(separator: ","), "--chunk-bytes", String(chunkBytes),
                           "--iterations", String(iterations)]
            p.standardOutput = r == 0 ? out : FileHandle.nullDevice
            try p.run()
            processes.append(p)
        }
        let collected = DataBox()
        let reader = PipeReader(out.fileHandleForReading, onData: { collected.append($0) })
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while processes.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if !processes.contains(where: \.isRunning) { reader.waitForEnd(seconds: 5) }
        if let bad = processes.enumerated().first(where: { $0.element.isRunning || $0.element.terminationStatus != 0 }) {
            throw LockstepError("all-reduce probe with \(workers) workers: rank \(bad.offset) failed or timed out")
        }
        let decoder = JSONDecoder()
        return String(decoding: collected.data, as: UTF8.self).split(separator: "\n").compactMap {
            try? decoder.decode(AlphaBetaModel.Sample.self, from: Data($0.utf8))
        }
    }

    final class DataBox: Sendable {
        private let storage = Mutex(Data())
        func append(_ d: Data) { storage.withLock { $0.append(d) } }
        var data: Data { storage.withLock { $0 } }
    }
}
