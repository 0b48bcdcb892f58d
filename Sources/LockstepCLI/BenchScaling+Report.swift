import Foundation
import LockstepBench
import LockstepRuntime

/// `lockstep bench scaling`'s output: Markdown tables and the SVG plot.
extension ScalingBench {
    func plot(_ r: Report, model: StepTimeModel, perHost: StepTimeModel, linkModels: [(String, AlphaBetaModel)]) -> String {
        let xs = Array(Set([1] + r.measured.map(\.workers) + r.predicted.map(\.workers))).sorted().map(Double.init)
        var series = [ScalingPlot.Series(name: "measured (this machine)", points: r.measured.map { (Double($0.workers), $0.stepMilliseconds) }, markers: true)]
        let local = r.measured.map { Double($0.workers) }
        series.append(.init(name: "model, this machine", points: local.map { ($0, model.stepSeconds(workers: Int($0), overlap: .scheduled) * 1e3) }))
        for (name, ab) in linkModels {
            var m = perHost
            m.communication = ab
            series.append(.init(name: "model, \(name)", points: xs.map { ($0, m.stepSeconds(workers: Int($0), overlap: .scheduled) * 1e3) }))
        }
        series.append(.init(name: "loopback α, β, no overlap", points: xs.map { ($0, perHost.stepSeconds(workers: Int($0)) * 1e3) }, dashed: true))
        series.append(.init(name: "loopback α, β, full overlap", points: xs.map { ($0, perHost.stepSeconds(workers: Int($0), overlap: .fullOverlap) * 1e3) }, dashed: true))
        return ScalingPlot(title: "Step time vs workers (\(r.emulateComputeMs.formatted()) ms emulated compute)", series: series).svg()
    }

    func markdown(_ r: Report) -> String {
        func f(_ v: Double, _ p: Int = 2) -> String { String(format: "%.\(p)f", v) }
        var s = "machine: \(r.machine); config \(r.config); emulated compute \(f(r.emulateComputeMs, 1)) ms per step "
        s += "(clock_nanosleep to absolute deadlines; overshoot median \(f(r.sleepOvershootMedianMicroseconds, 0)) µs, p95 \(f(r.sleepOvershootP95Microseconds, 0)) µs)\n"
        s += "gradient buckets: \(r.bucketBytes.count) (\(zip(r.bucketBytes, r.bucketReadyFractions).map { "\($0 / 1024) KiB ready at \(f($1 * 100, 0))%" }.joined(separator: ", "))); "
        s += "per-step overhead beyond compute at 1 worker: \(f(r.overheadMilliseconds, 3)) ms\n\n"
        s += "α-β fit (ring all-reduce, relative least squares over \(r.fitSamples.count) timings), "
        s += r.sharedCores.map { "with the contention factor max(1, N/\($0)) of workers sharing \($0) cores" } ?? "no contention factor"
        s += ": α = \(f(r.alphaMicroseconds, 1)) µs/message, β = \(f(r.betaNanosecondsPerByte, 3)) ns/byte (\(f(8 / r.betaNanosecondsPerByte, 2)) Gbit/s)\n"
        s += "plain ring fit (no contention factor): α = \(f(r.ringOnlyAlphaMicroseconds, 1)) µs, β = \(f(r.ringOnlyBetaNanosecondsPerByte, 3)) ns/byte\n\n"
        s += "| fit N | bytes | measured ms | model ms | error | plain ring error |\n|---:|---:|---:|---:|---:|---:|\n"
        let ab = AlphaBetaModel(alpha: r.alphaMicroseconds * 1e-6, beta: r.betaNanosecondsPerByte * 1e-9)
        for ((x, e), e0) in zip(zip(r.fitSamples, r.fitRelativeErrors), r.ringOnlyFitRelativeErrors) {
            s += "| \(x.workers) | \(x.bytes) | \(f(x.seconds * 1e3, 3)) | \(f(ab.ringAllReduceSeconds(workers: x.workers, bytes: x.bytes, sharedCores: r.sharedCores) * 1e3, 3)) | "
                + "\(f(e * 100, 1))% | \(f(e0 * 100, 1))% |\n"
        }
        func pct(_ e: Double) -> String { (e >= 0 ? "+" : "") + f(e * 100, 1) + "%" }
        s += "\nMeasured (all workers on this machine, sharing its cores) vs model (scheduled overlap; no-overlap upper and full-overlap lower bounds):\n\n"
        s += "| workers | steps | measured step ms | efficiency | model ms | error | no overlap ms | error | full overlap ms | plain ring error | ranks identical |\n"
        s += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
        for m in r.measured {
            s += "| \(m.workers) | \(m.steps) | \(f(m.stepMilliseconds)) | \(f(m.efficiency * 100, 0))% | \(f(m.predictedMilliseconds)) | "
                + "\(pct(m.predictionError)) | \(f(m.predictedNoOverlapMilliseconds)) | \(pct(m.predictionErrorNoOverlap)) | "
                + "\(f(m.predictedFullOverlapMilliseconds)) | \(pct(m.predictionErrorRingOnly)) | \(m.parametersIdentical.map { $0 ? "yes" : "NO" } ?? "-") |\n"
        }
        for n in [2, 4] {
            if let m = r.measured.first(where: { $0.workers == n }) {
                s += "\nprediction error at \(n) workers: \(pct(m.predictionError)) (\(abs(m.predictionError) <= 0.25 ? "within" : "OUTSIDE") 25%); "
                    + "no-overlap bound \(pct(m.predictionErrorNoOverlap)); plain ring fit \(pct(m.predictionErrorRingOnly))"
            }
        }
        s += "\n\nPredicted, one worker per machine (weak scaling: fixed per-worker batch and compute; efficiency = step(1)/step(N); "
        s += "links: β = 8/bit rate, α = \(latency.map { "\(f($0, 1)) µs (--latency)" } ?? "the fitted loopback α")):\n\n"
        s += "| link | α µs | workers | comm ms | step ms | efficiency | no overlap: step ms | efficiency | full overlap: step ms | efficiency |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for p in r.predicted {
            s += "| \(p.link) | \(f(p.alphaMicroseconds, 1)) | \(p.workers) | \(f(p.commMilliseconds)) | \(f(p.stepMilliseconds)) | \(f(p.efficiency * 100, 1))% | "
                + "\(f(p.stepNoOverlapMilliseconds)) | \(f(p.efficiencyNoOverlap * 100, 1))% | "
                + "\(f(p.stepFullOverlapMilliseconds)) | \(f(p.efficiencyFullOverlap * 100, 1))% |\n"
        }
        return s
    }
}
