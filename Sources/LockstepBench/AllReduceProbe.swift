import Synchronization
import Foundation
import LockstepRuntime

/// All-reduce timings over real processes and ZeroMQ, for fitting `AlphaBetaModel`.
///
/// `measure` runs `lockstep bench allreduce` (its launcher starts the rank
/// processes and brokers their endpoints: the one launcher of the all-reduce
/// benchmarks) with the ring over loopback TCP, the data plane of `lockstep train
/// --workers N`, and reads its JSON: one sample per size (median of barrier-aligned calls).
public enum AllReduceProbe {
    /// The samples of `workers` rank processes of `executable`, at `sizes` bytes.
    public static func measure(executable: String, workers: Int, sizes: [Int], chunkBytes: Int, iterations: Int,
                               timeoutSeconds: Double = 120) throws -> [AlphaBetaModel.Sample] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["bench", "allreduce", "--workers", String(workers), "--sizes", sizes.map(String.init).joined(separator: ","),
                       "--transport", "tcp", "--ops", "allreduce", "--algorithm", "ring", "--chunk-bytes", String(chunkBytes),
                       "--iterations", String(iterations), "--warmup", "3", "--timeout", String(max(10, timeoutSeconds / 10)), "--json"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let collected = DataBox()
        let reader = PipeReader(out.fileHandleForReading, onData: { collected.append($0) })
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning {
            kill(p.processIdentifier, SIGTERM)  // its ranks watch it and exit too
            p.waitUntilExit()
        }
        reader.waitForEnd(seconds: 5)
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw LockstepError("all-reduce probe with \(workers) workers failed or ran past \(Int(timeoutSeconds)) s")
        }
        struct Report: Decodable {
            struct Row: Decodable { var bytes: Int; var timeMicroseconds: Double }
            var results: [Row]
        }
        let report = try JSONDecoder().decode(Report.self, from: collected.data)
        return report.results.map { AlphaBetaModel.Sample(workers: workers, bytes: $0.bytes, seconds: $0.timeMicroseconds * 1e-6) }
    }
    final class DataBox: Sendable {
        private let storage = Mutex(Data())
        func append(_ d: Data) { storage.withLock { $0.append(d) } }
        var data: Data { storage.withLock { $0 } }
    }
}
