import ArgumentParser
import Foundation
import LockstepBench
import LockstepCollectives
import LockstepRuntime

/// `lockstep bench cluster`: Lockstep on the namespace cluster
/// (`../shared/cluster/slurm-netns.sh`: hosts n2, n3, … as network namespaces on a
/// bridge) with every node link shaped to each rate in turn. Per rate and host count
/// it measures the all-reduce's bus bandwidth against the link, training samples/s
/// and step time per wire format beside the α-β model's prediction, and torch DDP
/// (gloo) on the same hosts and links; at two hosts also the hierarchical all-reduce
/// with two workers per host, and gradient accumulation. All in one run.
public struct ClusterBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "All-reduce busbw, training samples/s (fp32/fp16/bf16) with the α-β prediction, and torch DDP, on the namespace cluster with shaped links.")
    public init() {}

    @Option(help: "The namespace cluster's script (started with `up` when its nodes are missing; `shape` sets the link rate).")
    public var cluster: String = "../shared/cluster/slurm-netns.sh"
    @Option(help: "Comma-separated link rates, as tc writes them.") public var rates: String = "10gbit,1gbit,100mbit"
    @Option(help: "Comma-separated host counts.") public var hosts: String = "2,3"
    @Option(help: "Comma-separated wire formats for training.") public var wires: String = "fp32,fp16,bf16"
    @Option(help: "Training job.") public var config: String = "configs/fashion-mlp.toml"
    @Option(help: "Optimizer steps per training run.") public var steps: Int = 40
    @Option(help: "Threads per worker (and per torch rank).") public var threads: Int = 1
    @Option(name: .customLong("accumulate-steps"), help: "Micro-batches per step for the accumulation row (at two hosts, fp32).")
    public var accumulateSteps: Int = 4
    @Option(help: "Python with torch for the DDP anchor.") public var python: String = "python3"
    @Option(help: "The torch DDP anchor script.") public var anchor: String = "../shared/anchors/mlp_torch.py"
    @Option(name: .customLong("torch-epochs"), help: "Epochs per torch DDP run.") public var torchEpochs: Int = 1
    @Flag(name: .customLong("no-torch"), help: "Skip torch DDP.") public var noTorch = false
    @Option(help: "Also write the report to this file.") public var output: String?

    public func run() throws {
        try CommandLineErrors.report {
            guard getuid() == 0 else { throw LockstepError("bench cluster: run as root (it shapes links and enters network namespaces)") }
            guard FileManager.default.fileExists(atPath: cluster) else {
                throw LockstepError("--cluster \(cluster): not found; give the path of slurm-netns.sh")
            }
            let hostCounts = try WorkerList.parse(hosts, flag: "--hosts", example: "2,3")
            guard hostCounts.allSatisfy({ $0 >= 2 && $0 <= 8 }) else { throw LockstepError("--hosts \(hosts): use 2 to 8 hosts") }
            let given = rates.split(separator: ",").map(String.init)
            guard !given.isEmpty, given.allSatisfy({ ClusterBenchRuns.bitsPerSecond($0) != nil }) else {
                throw LockstepError("--rates \(rates): use rates such as 10gbit,1gbit,100mbit")
            }
            // Fastest first: its runs calibrate the model's per-step overhead for the slower links.
            let rateList = given.sorted { ClusterBenchRuns.bitsPerSecond($0)! > ClusterBenchRuns.bitsPerSecond($1)! }
            let wireList = try wires.split(separator: ",").map { w in
                guard let f = WireFormat(rawValue: String(w)) else { throw LockstepError("--wires \(wires): use fp32, fp16, bf16") }
                return f
            }
            guard steps >= 5, threads >= 1, accumulateSteps >= 1 else {
                throw LockstepError("--steps (at least 5), --threads and --accumulate-steps must be positive")
            }
            let base = try ConfigLoader.load(path: config)
            let runs = ClusterBenchRuns(executable: TrainRun.currentExecutable, config: config, steps: steps, threads: threads,
                                        python: python, anchor: anchor, torchEpochs: torchEpochs)
            let torch = noTorch ? "skipped (--no-torch)" : runs.torchMissing()
            try runs.ensureNodes(hostCounts.max()!, cluster: cluster)
            defer { _ = try? runs.shell(["/bin/bash", cluster, "shape", "off"]) }

            runs.note("one worker on this machine: \(steps) steps for the compute time…")
            let one = try TrainRun.launch(executable: runs.executable,
                                          arguments: ["--config", config, "--threads", String(threads), "--max-steps", String(steps), "--epochs", "1000"],
                                          workers: 1, timeoutSeconds: 600)
            let machine = MachineInfo.current()
            var report = ClusterBenchReport(machine: "\(machine.cpu), \(machine.cores) cores",
                                            steps: steps, threads: threads, oneWorkerStepSeconds: one.stepSeconds, torch: torch)
            let buckets = try base.emulatedGradientBuckets()
            var overhead: [String: Double] = [:]
            for rate in rateList {
                let bits = ClusterBenchRuns.bitsPerSecond(rate)!
                try runs.shell(["/bin/bash", cluster, "shape", rate])
                for n in hostCounts {
                    runs.note("\(rate), \(n) hosts: all-reduce 1 MiB and 16 MiB…")
                    let bus = try runs.allReduce(hosts: n)
                    let fit = try ClusterBenchRuns.alphaBeta(bus, workers: n)
                    report.allReduce.append(.init(rate: rate, hosts: n, linkBitsPerSecond: bits, results: bus, model: fit))
                    // Compute slows when the job's threads outnumber the machine's cores (they share one CPU).
                    let contention = max(1, Double(n * threads) / Double(machine.cores))
                    for wire in wireList {
                        runs.note("\(rate), \(n) hosts: training, wire \(wire.rawValue)…")
                        let r = try runs.train(hosts: n, perHost: 1, extra: ["--wire", wire.rawValue])
                        // fp16/bf16 carry half the bytes per element: β scales, while the buckets keep
                        // their fp32 sizes, which choose the algorithm as `Communicator` does.
                        let wireModel = AlphaBetaModel(alpha: fit.alpha, beta: fit.beta * Double(wire.bytesPerElement) / 4)
                        var model = StepTimeModel(computeSeconds: one.stepSeconds * contention, overheadSeconds: 0,
                                                  bucketBytes: buckets.map(\.bytes), communication: wireModel,
                                                  bucketReadyFractions: buckets.map(\.readyFraction), sharedCores: nil)
                        // What a step costs beyond compute and the buckets' all-reduces (small BatchNorm
                        // collectives, copies, the processes' communication threads on shared cores):
                        // measured once per host count and wire on the fastest link, kept for the others.
                        let key = "\(n) \(wire)"
                        let calibrating = overhead[key] == nil
                        if calibrating { overhead[key] = max(0, r.stepSeconds - model.stepSeconds(workers: n, overlap: .scheduled)) }
                        model.overheadSeconds = overhead[key]!
                        var torchRun: Double?
                        if wire == .fp32, torch == nil { torchRun = try runs.torchSamplesPerSecond(hosts: n) }
                        report.training.append(.init(rate: rate, hosts: n, wire: wire.rawValue, run: r,
                                                     predictedStepSeconds: model.stepSeconds(workers: n, overlap: .scheduled),
                                                     calibration: calibrating, overheadSeconds: model.overheadSeconds,
                                                     torchSamplesPerSecond: torchRun))
                    }
                }
                runs.note("\(rate): 2 hosts × 2 workers, flat and hierarchical; accumulation…")
                let flat = try runs.train(hosts: 2, perHost: 2, extra: ["--all-reduce", "flat"])
                let hierarchical = try runs.train(hosts: 2, perHost: 2, extra: ["--all-reduce", "hierarchical"])
                report.hierarchical.append(.init(rate: rate, flat: flat, hierarchical: hierarchical))
                let measured = report.training.first { $0.rate == rate && $0.hosts == 2 && $0.wire == "fp32" }?.run
                let plain = try measured ?? runs.train(hosts: 2, perHost: 1, extra: [])
                let accumulated = try runs.train(hosts: 2, perHost: 1, extra: ["--accumulate-steps", String(accumulateSteps)])
                report.accumulation.append(.init(rate: rate, steps: accumulateSteps, plain: plain, accumulated: accumulated))
            }
            let text = report.markdown(command: "lockstep bench cluster " + CommandLine.arguments.dropFirst(3).joined(separator: " "))
            print(text)
            if let output { try text.write(toFile: output, atomically: true, encoding: .utf8) }
        }
    }
}
