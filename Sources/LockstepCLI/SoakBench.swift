import ArgumentParser
import Foundation
import LockstepRuntime

/// `lockstep bench soak`: a long `train --workers N` (a small model on synthetic
/// data, compute emulated if asked) while the resident memory, open descriptors
/// and threads of the launcher, the coordinator and every worker are sampled from
/// /proc. A leak shows as growth between the first sample after warm-up and the last.
public struct SoakBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "soak", abstract: "Run many steps and sample every process's memory, descriptors and threads: they must stay flat.")
    public init() {}

    @Option(parsing: .unconditional, help: "Optimizer steps.") public var steps = 20_000
    @Option(parsing: .unconditional, help: "Worker processes.") public var workers = 2
    @Option(name: .customLong("emulate-compute-ms"), parsing: .unconditional, help: "Emulated forward+backward per step (0: the real model).")
    public var emulateComputeMs = 0.0
    @Option(parsing: .unconditional, help: "Seconds between samples.") public var interval = 1.0
    @Option(name: .customLong("checkpoint-every"), parsing: .unconditional, help: "Also write a checkpoint every N steps (0: none).")
    public var checkpointEvery = 1000
    @Flag(help: "Print JSON instead of a table.") public var json = false

    struct Sample: Codable {
        var seconds: Double
        /// Sums over the job's processes.
        var rssMiB: Double
        var descriptors: Int
        var threads: Int
        var processes: Int
    }

    public func run() throws {
        try CommandLineErrors.report {
            guard steps >= 100, workers >= 1, workers <= 64, interval > 0 else {
                throw LockstepError("--steps must be at least 100, --workers between 1 and 64, --interval positive")
            }
            let dir = NSTemporaryDirectory() + "lockstep-soak-\(getpid())"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let config = dir + "/soak.toml"
            try """
            [model]
            layers = ["linear 64", "batchnorm", "relu", "linear 10"]
            [data]
            dataset = "synthetic"
            synthetic_train = 4096
            synthetic_test = 512
            synthetic_features = 64
            synthetic_classes = 10
            [train]
            epochs = 1000000
            batch_size = 32
            threads = 1
            """.write(toFile: config, atomically: true, encoding: .utf8)
            var args = ["train", "--config", config, "--workers", String(workers), "--max-steps", String(steps),
                        "--metrics", dir + "/metrics.jsonl"]
            if emulateComputeMs > 0 { args += ["--emulate-compute-ms", String(emulateComputeMs)] }
            if checkpointEvery > 0 { args += ["--checkpoint-dir", dir + "/checkpoints", "--checkpoint-every", String(checkpointEvery)] }
            let child = Process()
            child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            child.arguments = args
            child.standardError = FileHandle(forWritingAtPath: "/dev/null")
            child.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            try child.run()
            let start = Date()
            var samples: [Sample] = []
            while child.isRunning {
                Thread.sleep(forTimeInterval: interval)
                if let s = Self.sample(root: child.processIdentifier, since: start) { samples.append(s) }
            }
            guard child.terminationStatus == 0 else {
                throw LockstepError("the soak run (lockstep \(args.joined(separator: " "))) failed with status \(child.terminationStatus)")
            }
            let finals = (try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8))?.split(separator: "\n")
                .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .filter { $0["event"] as? String == "final" } ?? []
            guard let done = finals.last?["steps"] as? Int, done == steps else {
                throw LockstepError("the soak run did not report \(steps) finished steps in its metrics")
            }
            try report(samples, seconds: Date().timeIntervalSince(start))
        }
    }

    /// The process tree under `root` (launcher, coordinator, workers), summed.
    static func sample(root: Int32, since start: Date) -> Sample? {
        var tree: Set<Int32> = [root]
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
        var parents: [Int32: Int32] = [:]
        for pid in pids {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = Int32(fields[1]) { parents[pid] = ppid }
        }
        var grew = true
        while grew {
            grew = false
            for (pid, ppid) in parents where tree.contains(ppid) && !tree.contains(pid) { tree.insert(pid); grew = true }
        }
        var s = Sample(seconds: Date().timeIntervalSince(start), rssMiB: 0, descriptors: 0, threads: 0, processes: 0)
        for pid in tree {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { continue }
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if parts.first == "VmRSS:", parts.count > 1, let kb = Double(parts[1]) { s.rssMiB += kb / 1024 }
                if parts.first == "Threads:", parts.count > 1, let n = Int(parts[1]) { s.threads += n }
            }
            s.descriptors += ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
            s.processes += 1
        }
        return s.processes == 0 ? nil : s
    }

    func report(_ samples: [Sample], seconds: Double) throws {
        // Warm-up: the first quarter (start-up, first allocations) is not judged.
        let judged = Array(samples.dropFirst(samples.count / 4))
        guard let first = judged.first, let last = judged.last, judged.count >= 3 else {
            throw LockstepError("the soak run ended after \(samples.count) sample(s); use more --steps or a shorter --interval")
        }
        let rssGrowth = (last.rssMiB - first.rssMiB) / first.rssMiB
        // A checkpoint being written holds a descriptor or two for a moment; a leak keeps growing.
        let flat = rssGrowth < 0.05 && last.descriptors <= first.descriptors + 2 && last.threads <= first.threads
        if json {
            struct Out: Codable { var steps: Int; var workers: Int; var seconds: Double; var samples: [Sample]; var rssGrowth: Double; var flat: Bool }
            let e = JSONEncoder()
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(Out(steps: steps, workers: workers, seconds: seconds, samples: samples,
                                                    rssGrowth: rssGrowth, flat: flat)), as: UTF8.self))
            return
        }
        print("soak: \(steps) steps, \(workers) workers + coordinator + launcher, \(String(format: "%.0f", seconds)) s, a sample every \(interval) s")
        print("|     t (s) | processes | RSS (MiB) | descriptors | threads |")
        print("|----------:|----------:|----------:|------------:|--------:|")
        let shown = stride(from: 0, to: samples.count, by: max(1, samples.count / 10)).map { samples[$0] } + [samples.last!]
        for s in shown {
            print(String(format: "| %9.1f | %9d | %9.1f | %11d | %7d |", s.seconds, s.processes, s.rssMiB, s.descriptors, s.threads))
        }
        print(String(format: "after warm-up (from t = %.0f s): RSS %+.1f%%, descriptors %+d, threads %+d: %@",
                     first.seconds, 100 * rssGrowth, last.descriptors - first.descriptors, last.threads - first.threads,
                     flat ? "flat" : "GROWING"))
        if !flat { throw ExitCode(1) }
    }
}
