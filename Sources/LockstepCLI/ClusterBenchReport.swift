import Foundation
import LockstepBench

/// What `lockstep bench cluster` measured, and its Markdown tables.
struct ClusterBenchReport {
    struct AllReduce {
        var rate: String
        var hosts: Int
        var linkBitsPerSecond: Double
        var results: [AllReduceBenchmark.Result]
        var model: AlphaBetaModel
    }
    struct Training {
        var rate: String
        var hosts: Int
        var wire: String
        var run: TrainRun
        var predictedStepSeconds: Double
        /// This run set `overheadSeconds` (the fastest link): its prediction equals the measurement.
        var calibration: Bool
        var overheadSeconds: Double
        var torchSamplesPerSecond: Double?
    }
    struct Hierarchical {
        var rate: String
        var flat: TrainRun
        var hierarchical: TrainRun
    }
    struct Accumulation {
        var rate: String
        var steps: Int
        var plain: TrainRun
        var accumulated: TrainRun
    }

    var machine: String
    var steps: Int
    var threads: Int
    var oneWorkerStepSeconds: Double
    /// Why torch DDP did not run; nil when it did.
    var torch: String?
    var allReduce: [AllReduce] = []
    var training: [Training] = []
    var hierarchical: [Hierarchical] = []
    var accumulation: [Accumulation] = []

    init(machine: String, steps: Int, threads: Int, oneWorkerStepSeconds: Double, torch: String?) {
        (self.machine, self.steps, self.threads, self.oneWorkerStepSeconds, self.torch) = (machine, steps, threads, oneWorkerStepSeconds, torch)
    }

    func markdown(command: String) -> String {
        func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
        func k(_ sps: Double) -> String { String(format: "%.1fk", sps / 1000) }
        var out = ["Command: `\(command.trimmingCharacters(in: .whitespaces))`", "",
                   "Machine: \(machine); every node is a network namespace on one bridge, its link shaped both ways (tc tbf); all ranks share the machine's cores.",
                   "Training: \(steps) steps of `configs/fashion-mlp.toml`-style jobs, \(threads) thread(s) per worker; one worker alone: \(f(oneWorkerStepSeconds * 1e3)) ms per step.", ""]

        out += ["### All-reduce bus bandwidth against the link", "",
                "| link | hosts | 1 MiB busbw | of link | 16 MiB busbw | of link | α (µs) | β as Gbit/s |", "|---|---|---|---|---|---|---|---|"]
        for a in allReduce {
            func cell(_ bytes: Int) -> (String, String) {
                guard let r = a.results.first(where: { $0.bytes == bytes }) else { return ("–", "–") }
                let bits = r.busBandwidth * 8
                return (String(format: "%.3f Gbit/s", bits / 1e9), f(bits / a.linkBitsPerSecond))
            }
            let (b1, f1) = cell(1 << 20), (b16, f16) = cell(16 << 20)
            out.append("| \(a.rate) | \(a.hosts) | \(b1) | \(f1) | \(b16) | \(f16) | \(f(a.model.alpha * 1e6, 0)) | \(f(8 / a.model.beta / 1e9, 3)) |")
        }

        out += ["", "### Training: measured step time beside the α-β prediction, and torch DDP", "",
                "Prediction (`StepTimeModel`, scheduled overlap): the one-worker step (× threads/cores when the job's threads outnumber the cores) overlapped with the gradient buckets' all-reduces under the α, β fitted above, plus a per-step overhead (small BatchNorm collectives, copies, communication threads on the shared cores) measured once per host count and wire on the fastest link; those calibration rows are marked \"cal.\" and predict themselves.",
                "torch DDP: `\(URL(fileURLWithPath: "mlp_torch.py").lastPathComponent)` (gloo, exact CPU SyncBN), one rank per node, fp32, median epoch." + (torch.map { " \($0)." } ?? ""), "",
                "| link | hosts | wire | samples/s | step ms | predicted ms | measured/predicted | overhead ms | torch DDP samples/s | Lockstep/torch |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for t in training {
            let torchCells = t.torchSamplesPerSecond.map { (k($0), f(t.run.samplesPerSecond / $0)) } ?? ("–", "–")
            out.append("| \(t.rate) | \(t.hosts) | \(t.wire) | \(k(t.run.samplesPerSecond)) | \(f(t.run.stepSeconds * 1e3)) | \(f(t.predictedStepSeconds * 1e3)) | \(t.calibration ? "cal." : f(t.run.stepSeconds / t.predictedStepSeconds)) | \(f(t.overheadSeconds * 1e3)) | \(torchCells.0) | \(torchCells.1) |")
        }

        out += ["", "### Two hosts × two workers: hierarchical against the flat ring (fp32)", "",
                "| link | flat samples/s | hierarchical samples/s | hierarchical/flat |", "|---|---|---|---|"]
        for h in hierarchical {
            out.append("| \(h.rate) | \(k(h.flat.samplesPerSecond)) | \(k(h.hierarchical.samplesPerSecond)) | \(f(h.hierarchical.samplesPerSecond / h.flat.samplesPerSecond)) |")
        }

        out += ["", "### Gradient accumulation at two hosts (fp32): one all-reduce per K micro-batches", "",
                "| link | K | samples/s K=1 | samples/s K | speed-up |", "|---|---|---|---|---|"]
        for a in accumulation {
            out.append("| \(a.rate) | \(a.steps) | \(k(a.plain.samplesPerSecond)) | \(k(a.accumulated.samplesPerSecond)) | \(f(a.accumulated.samplesPerSecond / a.plain.samplesPerSecond)) |")
        }
        return out.joined(separator: "\n")
    }
}
