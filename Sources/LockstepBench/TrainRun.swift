import LockstepKernels
import LockstepRuntime
import LockstepTransport
import Foundation

/// One `lockstep train` run of the real executable, read back from its `--metrics` file.
public struct TrainRun: Codable, Sendable {
    public struct Epoch: Codable, Sendable {
        public var epoch: Int
        public var seconds: Double
        public var testAccuracy: Double
    }

    public var workers: Int
    public var steps: Int
    /// Training seconds (the step loops only, no evaluation or start-up).
    public var seconds: Double
    public var samplesPerSecond: Double
    public var testAccuracy: Double
    public var epochs: [Epoch]
    /// Multiprocess runs: whether every rank ended with the same parameter hash.
    public var parametersIdentical: Bool?

    public var stepSeconds: Double { seconds / Double(max(steps, 1)) }

    /// Cumulative training seconds until the first epoch whose test accuracy reaches `target`; nil if none does.
    public func secondsToAccuracy(_ target: Double) -> Double? {
        var total = 0.0
        for e in epochs {
            total += e.seconds
            if e.testAccuracy >= target { return total }
        }
        return nil
    }

    /// Runs `executable train ARGUMENTS [--workers N] --metrics TMP` (one process when
    /// `workers` is 1) and waits at most `timeoutSeconds`.
    public static func launch(executable: String, arguments: [String], workers: Int, timeoutSeconds: Double) throws -> TrainRun {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let metrics = dir.appendingPathComponent("metrics.jsonl").path
        let log = dir.appendingPathComponent("output.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let out = try FileHandle(forWritingTo: log)

        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = ["train"] + arguments + (workers > 1 ? ["--workers", String(workers)] : []) + ["--metrics", metrics]
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if p.isRunning {
            kill(p.processIdentifier, SIGTERM)  // the launcher forwards it to its children
            Thread.sleep(forTimeInterval: 2)
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        try? out.close()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        let tail = text.split(separator: "\n").suffix(8).joined(separator: "\n")
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw LockstepError("lockstep train with \(workers) worker(s) failed or ran past \(Int(timeoutSeconds)) s; last output:\n\(tail)")
        }
        return try parse(metricsFile: metrics, workers: workers)
    }

    /// Reads the `"event":"epoch"` and `"event":"final"` lines of a metrics file.
    public static func parse(metricsFile path: String, workers: Int) throws -> TrainRun {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var epochs: [Epoch] = []
        var final: [String: Any]?
        for line in text.split(separator: "\n") {
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
            switch o["event"] as? String {
            case "epoch":
                epochs.append(Epoch(epoch: (o["epoch"] as? NSNumber)?.intValue ?? epochs.count + 1,
                                    seconds: (o["seconds"] as? NSNumber)?.doubleValue ?? 0,
                                    testAccuracy: (o["test_accuracy"] as? NSNumber)?.doubleValue ?? 0))
            case "final": final = o
            default: break
            }
        }
        guard let f = final, let steps = (f["steps"] as? NSNumber)?.intValue, let seconds = (f["seconds"] as? NSNumber)?.doubleValue else {
            throw LockstepError("metrics \(path): no \"final\" line with steps and seconds")
        }
        return TrainRun(workers: workers, steps: steps, seconds: seconds,
                        samplesPerSecond: (f["samples_per_second"] as? NSNumber)?.doubleValue ?? 0,
                        testAccuracy: (f["test_accuracy"] as? NSNumber)?.doubleValue ?? 0, epochs: epochs,
                        parametersIdentical: f["parameters_identical"] as? Bool)
    }

    /// The `lockstep` executable of this process (benchmarks spawn their own binary).
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
