import ArgumentParser
import LockstepBench
import Foundation
import LockstepRuntime

/// `lockstep bench scaling`: measured step times with emulated compute at 1..16
/// workers on this machine, beside an α-β model fitted to all-reduce timings and
/// extrapolated to 1024 workers on 1, 10 and 100 Gbit/s links.
public struct ScalingBench: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "scaling",
        abstract: "Step time and efficiency vs workers: measured (emulated compute) and predicted by a fitted α-β model.",
        discussion: """
        Measured: `lockstep train --emulate-compute-ms X --max-steps S` per worker count, --repeats runs each; \
        step time = training seconds / steps of the median run. Model: α, β fitted (relative least squares) to ring all-reduce timings of several sizes \
        at --fit-workers over ZeroMQ processes; per bucket t = 2(N−1)α + 2(N−1)/N·n·β (ring), or \
        ⌈log2 N⌉(α + n·β) for buckets of at most 512 KiB (recursive doubling). Step time: \
        "scheduled" (the prediction): buckets all-reduced in order on one thread from the moment the emulated \
        backward makes each ready, step = max(X, last bucket's end) + overhead; "no overlap": X + overhead + Σt \
        (upper bound); "full overlap": max(X, Σt) + overhead (lower bound). overhead = measured step(1) − X. \
        The measured workers share this machine's --cores: the fit and the predictions for the measured points \
        slow each worker's all-reduce work and overhead by max(1, N/cores); the link predictions assume one \
        worker per machine (no sharing). The plain ring fit without that factor is reported beside it.
        """)
    public init() {}

    @Option(help: "Config file (its model sets the gradient bucket sizes).") public var config = "configs/synthetic-mlp.toml"
    @Option(help: "Comma-separated worker counts to measure.") public var workers = "1,2,4,8,16"
    @Option(name: .customLong("emulate-compute-ms"), parsing: .unconditional, help: "Emulated forward+backward per step, ms.") public var emulateComputeMs = 20.0
    @Option(help: "Optimizer steps per measured run.") public var steps = 40
    @Option(help: "Runs per worker count; the run with the median step time is reported (a transient stall of the shared host moves one run, not the median).")
    public var repeats = 3
    @Option(help: "Kernel threads per process.") public var threads = 1
    @Option(name: .customLong("fit-workers"), help: "Worker counts whose all-reduce timings fit α and β.") public var fitWorkers = "2,4"
    @Option(help: "All-reduce sizes in bytes for the fit (ring path: above 32 KiB).")
    public var sizes = "65536,131072,262144,524288,1048576,2097152,4194304"
    @Option(name: .customLong("probe-iterations"), help: "Timed all-reduce calls per size (median).") public var probeIterations = 15
    @Option(name: .customLong("predict-workers"), help: "Worker counts to predict.") public var predictWorkers = "8,16,32,64,128,256,512,1024"
    @Option(help: "Link speeds in Gbit/s for the prediction table.") public var links = "1,10,100"
    @Option(parsing: .unconditional, help: "Per-message latency in µs for the link predictions (default: the fitted α).") public var latency: Double?
    @Option(help: "Cores the measured workers share, for the contention factor max(1, N/cores); 0 disables it (default: this machine's).")
    public var cores: Int?
    @Flag(help: "Print JSON instead of tables.") public var json = false
    @Option(help: "Write an SVG plot of measured and predicted step time here.") public var svg: String?

    struct Measured: Codable {
        var workers: Int
        var steps: Int
        var stepMilliseconds: Double
        var samplesPerSecond: Double
        var efficiency: Double
        var predictedMilliseconds: Double
        var predictedNoOverlapMilliseconds: Double
        var predictedFullOverlapMilliseconds: Double
        var predictionError: Double
        var predictionErrorNoOverlap: Double
        /// The scheduled prediction from the plain ring fit, without the contention factor.
        var predictionErrorRingOnly: Double
        var parametersIdentical: Bool?
    }

    struct Predicted: Codable {
        var link: String
        var alphaMicroseconds: Double
        var betaNanosecondsPerByte: Double
        var workers: Int
        var commMilliseconds: Double
        var stepMilliseconds: Double
        var stepNoOverlapMilliseconds: Double
        var stepFullOverlapMilliseconds: Double
        var efficiency: Double
        var efficiencyNoOverlap: Double
        var efficiencyFullOverlap: Double
    }

    struct Report: Codable {
        var machine: String
        var config: String
        var emulateComputeMs: Double
        var sleepOvershootMedianMicroseconds: Double
        var sleepOvershootP95Microseconds: Double
        var bucketBytes: [Int]
        var bucketReadyFractions: [Double]
        var overheadMilliseconds: Double
        var alphaMicroseconds: Double
        var betaNanosecondsPerByte: Double
        var sharedCores: Int?
        var ringOnlyAlphaMicroseconds: Double
        var ringOnlyBetaNanosecondsPerByte: Double
        var fitSamples: [AlphaBetaModel.Sample]
        var fitRelativeErrors: [Double]
        var ringOnlyFitRelativeErrors: [Double]
        var measured: [Measured]
        var predicted: [Predicted]
    }

    public func run() throws {
        try CommandLineErrors.report {
            let counts = try WorkerList.parse(workers)
            guard probeIterations >= 1 else { throw LockstepError("--probe-iterations \(probeIterations): must be at least 1") }
            guard threads >= 1, threads <= 256 else { throw LockstepError("--threads \(threads): must be between 1 and 256") }
            let fitCounts = try WorkerList.parse(fitWorkers, flag: "--fit-workers", example: "2,4").filter { $0 > 1 }
            let predictCounts = try WorkerList.parse(predictWorkers, flag: "--predict-workers", example: "8,16,32")
            let sizeList = try WorkerList.parse(sizes, flag: "--sizes", example: "65536,1048576")
            let parsedLinks = links.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsedLinks.isEmpty, parsedLinks.allSatisfy({ ($0 ?? 0) > 0 && $0!.isFinite }) else {
                throw LockstepError("--links \(links): use comma-separated positive link speeds in Gbit/s, e.g. 1,10,100")
            }
            let linkList = parsedLinks.map { $0! }
            if let latency, !(latency >= 0 && latency.isFinite) {
                throw LockstepError("--latency \(latency): use a per-message latency in µs >= 0")
            }
            guard steps >= 1 else { throw LockstepError("--steps \(steps): must be at least 1") }
            guard repeats >= 1, repeats <= 100 else { throw LockstepError("--repeats \(repeats): use 1 to 100 runs per worker count") }
            guard emulateComputeMs > 0, emulateComputeMs <= 60_000 else {
                throw LockstepError("--emulate-compute-ms \(emulateComputeMs): must be between 0 and 60000")
            }
            if let svg { try RunFiles.checkWritable(svg, flag: "--svg") }
            let base = try ConfigLoader.load(path: config)
            let buckets = try base.emulatedGradientBuckets()
            let exe = TrainRun.currentExecutable
            func note(_ s: String) { FileHandle.standardError.write(Data("bench scaling: \(s)\n".utf8)) }

            let overshoot = EmulatedComputeCalibration.sleepOvershoot(milliseconds: emulateComputeMs / 3, samples: 30)
            note(String(format: "sleep overshoot at %.1f ms: median %.0f µs, p95 %.0f µs", emulateComputeMs / 3, overshoot.median * 1e6, overshoot.p95 * 1e6))

            // 1. Measured step times (1 worker first: it gives the per-step overhead), the
            //    median of `repeats` runs per worker count.
            var runs: [Int: TrainRun] = [:]
            for n in ([1] + counts.filter { $0 != 1 }) {
                note("measuring \(n) worker(s), \(repeats) × \(steps) steps of \(emulateComputeMs) ms emulated compute…")
                var tries: [TrainRun] = []
                for _ in 0..<repeats {
                    tries.append(try TrainRun.launch(
                        executable: exe,
                        arguments: ["--config", config, "--threads", String(threads), "--emulate-compute-ms", String(emulateComputeMs),
                                    "--max-steps", String(steps), "--epochs", "1000"],
                        workers: n, timeoutSeconds: 600))
                }
                let sorted = tries.sorted { $0.stepSeconds < $1.stepSeconds }
                runs[n] = sorted[sorted.count / 2]
                if repeats > 1 {
                    note("  step ms by run: " + tries.map { String(format: "%.2f", $0.stepSeconds * 1e3) }.joined(separator: ", "))
                }
            }

            // 2. α-β fit from all-reduce timings over real processes.
            var samples: [AlphaBetaModel.Sample] = []
            for n in fitCounts {
                note("timing all-reduce at \(n) workers, \(sizeList.count) sizes…")
                samples += try AllReduceProbe.measure(executable: exe, workers: n, sizes: sizeList, chunkBytes: base.chunkBytes,
                                                      iterations: probeIterations)
            }
            let coreCount = cores ?? ProcessInfo.processInfo.activeProcessorCount
            let shared = coreCount > 0 ? coreCount : nil
            let fit = try AlphaBetaModel.fit(samples, sharedCores: shared)
            let ringOnly = try AlphaBetaModel.fit(samples)
            let compute = emulateComputeMs / 1000
            let overhead = max(0, runs[1]!.stepSeconds - compute)
            let model = StepTimeModel(computeSeconds: compute, overheadSeconds: overhead, bucketBytes: buckets.map(\.bytes),
                                      communication: fit, bucketReadyFractions: buckets.map(\.readyFraction), sharedCores: shared)
            var ringOnlyModel = model
            ringOnlyModel.communication = ringOnly
            ringOnlyModel.sharedCores = nil
            // Beyond this machine: one worker per host, each with its own cores and link.
            var perHost = model
            perHost.sharedCores = nil

            let one = runs[1]!
            let measured = counts.map { n -> Measured in
                let r = runs[n]!
                let predicted = model.stepSeconds(workers: n, overlap: .scheduled)
                let upper = model.stepSeconds(workers: n, overlap: .noOverlap)
                return Measured(workers: n, steps: r.steps, stepMilliseconds: r.stepSeconds * 1e3, samplesPerSecond: r.samplesPerSecond,
                                efficiency: one.stepSeconds / r.stepSeconds, predictedMilliseconds: predicted * 1e3,
                                predictedNoOverlapMilliseconds: upper * 1e3,
                                predictedFullOverlapMilliseconds: model.stepSeconds(workers: n, overlap: .fullOverlap) * 1e3,
                                predictionError: (predicted - r.stepSeconds) / r.stepSeconds,
                                predictionErrorNoOverlap: (upper - r.stepSeconds) / r.stepSeconds,
                                predictionErrorRingOnly: (ringOnlyModel.stepSeconds(workers: n, overlap: .scheduled) - r.stepSeconds) / r.stepSeconds,
                                parametersIdentical: r.parametersIdentical)
            }
            var predicted: [Predicted] = []
            let linkModels = [("loopback α, β", fit)] + linkList.map { g in
                ("\(g.formatted()) Gbit/s", AlphaBetaModel(alpha: latency.map { $0 * 1e-6 } ?? fit.alpha, linkBitsPerSecond: g * 1e9))
            }
            for (name, ab) in linkModels {
                var m = perHost
                m.communication = ab
                for n in predictCounts {
                    predicted.append(Predicted(
                        link: name, alphaMicroseconds: ab.alpha * 1e6, betaNanosecondsPerByte: ab.beta * 1e9, workers: n,
                        commMilliseconds: m.communicationSeconds(workers: n) * 1e3,
                        stepMilliseconds: m.stepSeconds(workers: n, overlap: .scheduled) * 1e3,
                        stepNoOverlapMilliseconds: m.stepSeconds(workers: n, overlap: .noOverlap) * 1e3,
                        stepFullOverlapMilliseconds: m.stepSeconds(workers: n, overlap: .fullOverlap) * 1e3,
                        efficiency: m.efficiency(workers: n, overlap: .scheduled), efficiencyNoOverlap: m.efficiency(workers: n),
                        efficiencyFullOverlap: m.efficiency(workers: n, overlap: .fullOverlap)))
                }
            }
            let report = Report(
                machine: BenchOutput.machine, config: config, emulateComputeMs: emulateComputeMs,
                sleepOvershootMedianMicroseconds: overshoot.median * 1e6, sleepOvershootP95Microseconds: overshoot.p95 * 1e6,
                bucketBytes: buckets.map(\.bytes), bucketReadyFractions: buckets.map(\.readyFraction), overheadMilliseconds: overhead * 1e3, alphaMicroseconds: fit.alpha * 1e6,
                betaNanosecondsPerByte: fit.beta * 1e9, sharedCores: shared, ringOnlyAlphaMicroseconds: ringOnly.alpha * 1e6,
                ringOnlyBetaNanosecondsPerByte: ringOnly.beta * 1e9, fitSamples: samples,
                fitRelativeErrors: fit.relativeErrors(samples, sharedCores: shared), ringOnlyFitRelativeErrors: ringOnly.relativeErrors(samples),
                measured: measured, predicted: predicted)
            if let svg { try plot(report, model: model, perHost: perHost, linkModels: linkModels).write(toFile: svg, atomically: true, encoding: .utf8) }
            print(json ? try BenchOutput.json(report) : markdown(report))
        }
    }
}
