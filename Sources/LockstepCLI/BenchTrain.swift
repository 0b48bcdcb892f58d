import ArgumentParser
import LockstepBench
import Foundation
import LockstepRuntime

/// `lockstep bench train`: the real `lockstep train` at several worker counts,
/// strong scaling (fixed global batch) and weak scaling (fixed per-worker batch).
public struct TrainBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training throughput, step time and time-to-accuracy at 1..N workers: strong and weak scaling.",
        discussion: """
        Runs the real `lockstep train` (one process for 1 worker, --workers N otherwise) with --metrics \
        for each worker count. Strong scaling keeps the global batch B of the config (B/N per worker); \
        weak scaling keeps B per worker. Efficiency = samples/s(N) / (N · samples/s(1)).
        """)
    public init() {}

    @Option(help: "Config file.") public var config = "configs/synthetic-mlp.toml"
    @Option(help: "Comma-separated worker counts.") public var workers = "1,2,4"
    @Option(help: "Kernel threads per process.") public var threads = 1
    @Option(name: .customLong("max-steps"), parsing: .unconditional, help: "Stop each run after this many steps.") public var maxSteps: Int?
    @Option(parsing: .unconditional, help: "Epochs per run (default: the config's).") public var epochs: Int?
    @Option(name: .customLong("target-accuracy"), help: "Test accuracy for the time-to-accuracy column.")
    public var targetAccuracy = 0.8
    @Option(name: .customLong("timeout"), help: "Seconds allowed per run.") public var timeout = 900.0
    @Option(help: "Data plane of the multiprocess runs: tcp, ipc or shm.") public var transport: DataPlane = .tcp
    @Option(name: .customLong("step-mode"), help: "replicated or sharded (default: the config's).") public var stepMode: String?
    @Option(help: "plain, or curve: the multiprocess runs encrypt and authenticate every connection with CurveZMQ (a throwaway key pair).")
    public var security = "plain"
    @Flag(help: "Print JSON instead of a table.") public var json = false

    struct Report: Codable {
        var config: String
        var threads: Int
        var transport: String
        var security: String
        var targetAccuracy: Double
        var machine: String
        var rows: [Row]
    }

    public struct Row: Codable {
        var mode: String
        var workers: Int
        var batchPerWorker: Int
        var globalBatch: Int
        var steps: Int
        var stepMilliseconds: Double
        var samplesPerSecond: Double
        var speedup: Double
        var efficiency: Double
        var testAccuracy: Double
        var secondsToTarget: Double?
    }

    public func run() throws {
        try CommandLineErrors.report {
            let counts = try WorkerList.parse(workers)
            guard timeout > 0, timeout <= 86_400 else { throw LockstepError("--timeout \(timeout): must be between 0 and 86400 seconds") }
            guard threads >= 1, threads <= 256 else { throw LockstepError("--threads \(threads): must be between 1 and 256") }
            guard targetAccuracy > 0, targetAccuracy <= 1 else {
                throw LockstepError("--target-accuracy \(targetAccuracy): use a fraction in (0, 1], e.g. 0.85")
            }
            if let maxSteps, maxSteps < 1 { throw LockstepError("--max-steps \(maxSteps): must be at least 1") }
            if let epochs, epochs < 1 { throw LockstepError("--epochs \(epochs): must be at least 1") }
            if let stepMode, stepMode != "replicated" && stepMode != "sharded" {
                throw LockstepError("--step-mode \(stepMode): use replicated or sharded")
            }
            let base = try ConfigLoader.load(path: config)
            guard base.batchSize > 0 else { throw LockstepError("\(config): bench train needs a numeric batch_size, not \"full\"") }
            let exe = TrainRun.currentExecutable
            var common = ["--config", config, "--threads", String(threads)]
            if let maxSteps { common += ["--max-steps", String(maxSteps)] }
            if let epochs { common += ["--epochs", String(epochs)] }
            if let stepMode { common += ["--step-mode", stepMode] }
            guard security == "plain" || security == "curve" else { throw LockstepError("--security \(security): use plain or curve") }
            let keyDir = NSTemporaryDirectory() + "lockstep-bench-keys-\(getpid())"
            if security == "curve" {
                try KeyFiles.generate(in: keyDir, name: "bench")
                common += ["--key", keyDir + "/bench.key", "--allow", keyDir]
            }
            defer { if security == "curve" { try? FileManager.default.removeItem(atPath: keyDir) } }

            var cache: [String: TrainRun] = [:]
            func run(workers n: Int, batch: Int) throws -> TrainRun {
                let key = "\(n)x\(batch)"
                if let r = cache[key] { return r }
                FileHandle.standardError.write(Data("bench train: \(n) worker(s), batch \(batch) per worker…\n".utf8))
                let plane = n > 1 ? ["--transport", transport.rawValue] : []
                let r = try TrainRun.launch(executable: exe, arguments: common + plane + ["--batch-size", String(batch)], workers: n, timeoutSeconds: timeout)
                cache[key] = r
                return r
            }
            var rows: [Row] = []
            for mode in ["strong", "weak"] {
                var one: TrainRun?
                for n in counts {
                    let batch = mode == "strong" ? max(1, base.batchSize / n) : base.batchSize
                    let r = try run(workers: n, batch: batch)
                    if n == counts.first { one = r }
                    let n1 = Double(counts.first!)
                    let speedup = r.samplesPerSecond / max(one!.samplesPerSecond, 1e-9)
                    rows.append(Row(mode: mode, workers: n, batchPerWorker: batch, globalBatch: batch * n, steps: r.steps,
                                    stepMilliseconds: r.stepSeconds * 1e3, samplesPerSecond: r.samplesPerSecond,
                                    speedup: speedup, efficiency: speedup * n1 / Double(n),
                                    testAccuracy: r.testAccuracy, secondsToTarget: r.secondsToAccuracy(targetAccuracy)))
                }
            }
            if json {
                print(try BenchOutput.json(Report(config: config, threads: threads, transport: transport.rawValue, security: security, targetAccuracy: targetAccuracy, machine: BenchOutput.machine, rows: rows)))
            } else {
                print("machine: \(BenchOutput.machine); config \(config); \(threads) thread(s) per process; data plane \(transport.rawValue), security \(security)\n")
                print(table(rows))
            }
        }
    }

    func table(_ rows: [Row]) -> String {
        var s = "| scaling | workers | batch/worker | global batch | steps | step ms | samples/s | speedup | efficiency | test acc | time to \(String(format: "%.1f", targetAccuracy * 100))% |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in rows {
            let tta = r.secondsToTarget.map { String(format: "%.2f s", $0) } ?? "n/a"
            s += "| \(r.mode) | \(r.workers) | \(r.batchPerWorker) | \(r.globalBatch) | \(r.steps) | \(String(format: "%.2f", r.stepMilliseconds)) | "
                + "\(String(format: "%.0f", r.samplesPerSecond)) | \(String(format: "%.2f×", r.speedup)) | \(String(format: "%.0f%%", r.efficiency * 100)) | "
                + "\(String(format: "%.2f%%", r.testAccuracy * 100)) | \(tta) |\n"
        }
        return s
    }
}

enum BenchOutput {
    /// CPU model and core count, for the record next to every table.
    static var machine: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = info.split(separator: "\n").first { $0.hasPrefix("model name") }.map {
            $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces)
        } ?? "unknown CPU"
        return "\(model), \(ProcessInfo.processInfo.activeProcessorCount) cores"
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try enc.encode(value), as: UTF8.self)
    }
}

enum WorkerList {
    static func parse(_ text: String, flag: String = "--workers", example: String = "1,2,4") throws -> [Int] {
        let v = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw LockstepError("\(flag) \(text): use comma-separated positive numbers, e.g. \(example)")
        }
        return v.map { $0! }
    }
}
