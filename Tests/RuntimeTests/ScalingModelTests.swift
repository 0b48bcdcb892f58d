import Foundation
import XCTest
@testable import LockstepRuntime
import LockstepBench

/// The α-β model behind `lockstep bench scaling`: fit, formulas, metrics parsing, plot.
final class ScalingModelTests: XCTestCase {
    let sizes = [65_536, 262_144, 1 << 20, 4 << 20, 16 << 20]

    func testRingAllReduceFormula() {
        let m = AlphaBetaModel(alpha: 1e-5, beta: 1e-9)
        XCTAssertEqual(m.ringAllReduceSeconds(workers: 1, bytes: 1 << 20), 0)
        XCTAssertEqual(m.ringAllReduceSeconds(workers: 2, bytes: 1000), 2 * 1e-5 + 1000 * 1e-9, accuracy: 1e-15)
        XCTAssertEqual(m.ringAllReduceSeconds(workers: 4, bytes: 1000), 6 * 1e-5 + 1.5 * 1000 * 1e-9, accuracy: 1e-15)
        // Bandwidth term tends to 2·n·β, latency term grows linearly.
        XCTAssertEqual(m.ringAllReduceSeconds(workers: 1024, bytes: 1 << 30) / (2 * Double(1 << 30) * 1e-9), 1, accuracy: 0.01)
        XCTAssertEqual(AlphaBetaModel(alpha: 0, linkBitsPerSecond: 10e9).beta, 0.8e-9, accuracy: 1e-18)
    }

    /// Small buckets take recursive doubling: ⌈log2 N⌉ whole-buffer messages, two more
    /// when N is not a power of two; above the threshold the ring.
    func testRecursiveDoublingFormulaAndChoice() {
        let m = AlphaBetaModel(alpha: 1e-5, beta: 1e-9)
        let one = 1e-5 + 1000 * 1e-9
        XCTAssertEqual(m.recursiveDoublingAllReduceSeconds(workers: 1, bytes: 1000), 0)
        XCTAssertEqual(m.recursiveDoublingAllReduceSeconds(workers: 2, bytes: 1000), one, accuracy: 1e-15)
        XCTAssertEqual(m.recursiveDoublingAllReduceSeconds(workers: 4, bytes: 1000), 2 * one, accuracy: 1e-15)
        XCTAssertEqual(m.recursiveDoublingAllReduceSeconds(workers: 6, bytes: 1000), 4 * one, accuracy: 1e-15)
        XCTAssertEqual(m.recursiveDoublingAllReduceSeconds(workers: 1024, bytes: 1000), 10 * one, accuracy: 1e-15)
        XCTAssertEqual(m.allReduceSeconds(workers: 8, bytes: 4096), m.recursiveDoublingAllReduceSeconds(workers: 8, bytes: 4096))
        XCTAssertEqual(m.allReduceSeconds(workers: 8, bytes: 4 << 20), m.ringAllReduceSeconds(workers: 8, bytes: 4 << 20))
    }

    func testFitRecoversKnownAlphaAndBetaFromExactTimings() throws {
        let truth = AlphaBetaModel(alpha: 45e-6, beta: 0.6e-9)
        let samples = [2, 4].flatMap { n in sizes.map { AlphaBetaModel.Sample(workers: n, bytes: $0, seconds: truth.ringAllReduceSeconds(workers: n, bytes: $0)) } }
        for relative in [true, false] {
            let fit = try AlphaBetaModel.fit(samples, relative: relative)
            XCTAssertEqual(fit.alpha / truth.alpha, 1, accuracy: 1e-9, "relative \(relative)")
            XCTAssertEqual(fit.beta / truth.beta, 1, accuracy: 1e-9, "relative \(relative)")
            XCTAssertLessThan(fit.relativeErrors(samples).map(abs).max()!, 1e-9)
        }
    }

    func testFitWithNoiseStaysClose() throws {
        let truth = AlphaBetaModel(alpha: 80e-6, beta: 1.2e-9)
        var noise = [0.03, -0.02, 0.01, -0.03, 0.02].makeIterator()
        var samples: [AlphaBetaModel.Sample] = []
        for n in [2, 4] {
            for b in sizes {
                let e = noise.next() ?? 0.01
                samples.append(.init(workers: n, bytes: b, seconds: truth.ringAllReduceSeconds(workers: n, bytes: b) * (1 + e)))
            }
            noise = [0.02, -0.01, 0.03, -0.02, -0.03].makeIterator()
        }
        let fit = try AlphaBetaModel.fit(samples)
        XCTAssertEqual(fit.alpha / truth.alpha, 1, accuracy: 0.1)
        XCTAssertEqual(fit.beta / truth.beta, 1, accuracy: 0.05)
    }

    func testFitNeedsTwoSizes() {
        let one = [AlphaBetaModel.Sample(workers: 2, bytes: 1 << 20, seconds: 1e-3), .init(workers: 2, bytes: 1 << 20, seconds: 1.1e-3)]
        XCTAssertThrowsError(try AlphaBetaModel.fit(one))
        XCTAssertThrowsError(try AlphaBetaModel.fit([.init(workers: 1, bytes: 1, seconds: 1), .init(workers: 1, bytes: 2, seconds: 2)]))
    }

    func testStepTimeModelOverlapBoundsAndEfficiency() {
        let ab = AlphaBetaModel(alpha: 1e-4, beta: 1e-9)
        let m = StepTimeModel(computeSeconds: 0.010, overheadSeconds: 0.002, bucketBytes: [1 << 20, 1 << 19], communication: ab)
        XCTAssertEqual(m.communicationSeconds(workers: 1), 0)
        XCTAssertEqual(m.stepSeconds(workers: 1), 0.012, accuracy: 1e-12)
        XCTAssertEqual(m.stepSeconds(workers: 1, overlap: .fullOverlap), 0.012, accuracy: 1e-12)
        // 1 MiB takes the ring, 512 KiB (the threshold) recursive doubling.
        let comm4 = ab.ringAllReduceSeconds(workers: 4, bytes: 1 << 20) + ab.recursiveDoublingAllReduceSeconds(workers: 4, bytes: 1 << 19)
        XCTAssertEqual(m.communicationSeconds(workers: 4), comm4, accuracy: 1e-15)
        XCTAssertEqual(m.stepSeconds(workers: 4), 0.012 + comm4, accuracy: 1e-12)
        XCTAssertEqual(m.stepSeconds(workers: 4, overlap: .fullOverlap), max(0.010, comm4) + 0.002, accuracy: 1e-12)
        XCTAssertEqual(m.efficiency(workers: 1), 1)
        var last = 1.0
        for n in [2, 8, 64, 1024] {
            let e = m.efficiency(workers: n)
            XCTAssertLessThan(e, last)
            XCTAssertLessThanOrEqual(e, m.efficiency(workers: n, overlap: .fullOverlap))
            last = e
        }
    }

    func testTrainRunParsesMetricsAndTimeToAccuracy() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).jsonl").path
        let text = """
        {"event":"epoch","epoch":1,"seconds":2.0,"test_accuracy":0.70,"samples_per_second":1000,"steps":10}
        {"event":"epoch","epoch":2,"seconds":1.5,"test_accuracy":0.85,"samples_per_second":1300,"steps":10}
        {"event":"epoch","epoch":3,"seconds":1.5,"test_accuracy":0.90,"samples_per_second":1300,"steps":10}
        {"event":"final","seconds":5.0,"steps":30,"samples_per_second":1200,"test_accuracy":0.90,"parameters_identical":true}
        """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try TrainRun.parse(metricsFile: path, workers: 2)
        XCTAssertEqual(run.steps, 30)
        XCTAssertEqual(run.stepSeconds, 5.0 / 30, accuracy: 1e-12)
        XCTAssertEqual(run.parametersIdentical, true)
        XCTAssertEqual(run.secondsToAccuracy(0.8) ?? -1, 3.5, accuracy: 1e-12)
        XCTAssertEqual(run.secondsToAccuracy(0.7) ?? -1, 2.0, accuracy: 1e-12)
        XCTAssertNil(run.secondsToAccuracy(0.95))
    }

    func testEmulatedGradientsAreDeterministicExactDyadics() {
        var distinct = Set<Float>()
        for i in 0..<10_000 {
            let g = EmulatedCompute.gradient(step: 7, index: i)
            XCTAssertEqual(g, EmulatedCompute.gradient(step: 7, index: i))
            XCTAssertLessThanOrEqual(abs(g), 1000 * 0x1p-20)
            XCTAssertEqual(g * 0x1p20, (g * 0x1p20).rounded(), "not a multiple of 2^-20")
            distinct.insert(g)
        }
        XCTAssertGreaterThan(distinct.count, 1500)
        XCTAssertNotEqual(EmulatedCompute.gradient(step: 1, index: 5), EmulatedCompute.gradient(step: 2, index: 5))
    }

    func testEmulatedWaitLastsAtLeastTheRequestedTime() {
        let start = EmulatedCompute.now()
        let e = EmulatedCompute(milliseconds: 5)
        e.forward()
        XCTAssertGreaterThanOrEqual(EmulatedCompute.now() - start, 5e-3 / 3)
        let over = EmulatedCompute.sleepOvershoot(milliseconds: 1, samples: 10)
        XCTAssertGreaterThanOrEqual(over.median, 0)
        XCTAssertLessThan(over.median, 0.05, "sleep overshoots by more than 50 ms")
    }

    func testConfigKeyAndValidation() throws {
        let c = try ConfigLoader.parse("[train]\nemulate_compute_ms = 2.5\n", name: "t")
        XCTAssertEqual(c.emulateComputeMs, 2.5)
        var bad = c
        bad.emulateComputeMs = -1
        XCTAssertThrowsError(try bad.validate())
        let spec = try JobSpec(config: c)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("spec-\(UUID().uuidString).json").path
        try spec.write(to: path)
        XCTAssertEqual(try JobSpec.read(from: path).config.emulateComputeMs, 2.5)
    }

    func testBucketBytesCoverTheModel() throws {
        var c = TrainingConfig()
        c.layers = ["linear 32", "batchnorm", "relu", "linear 4"]
        c.dataset = "synthetic"
        c.syntheticFeatures = 20
        c.bucketBytes = 256
        let buckets = try c.gradientBucketBytes()
        XCTAssertEqual(buckets.reduce(0, +), (20 * 32 + 32 + 64 + 32 * 4 + 4) * 4)
    }

    func testPlotIsSVGWithEverySeries() {
        let plot = ScalingPlot(title: "t <&>", series: [
            .init(name: "measured", points: [(1, 20), (2, 25), (4, 30)], markers: true),
            .init(name: "model", points: [(1, 21), (1024, 900)]),
            .init(name: "bound", points: [(1, 20), (1024, 400)], dashed: true),
        ])
        let svg = plot.svg()
        XCTAssertTrue(svg.hasPrefix("<svg"))
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 3 + 1)
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertTrue(svg.contains("t &lt;&amp;&gt;"))
        XCTAssertTrue(svg.contains(">1024<"))
    }
}

extension ScalingModelTests {
    /// Scheduled overlap: buckets run in order on one thread, each from when it is ready.
    func testScheduledOverlapLiesBetweenTheBounds() {
        let ab = AlphaBetaModel(alpha: 0, beta: 1e-9)  // 1 ms per 10⁶ bytes · 2(N−1)/N
        // N = 2: t = bytes · 1e-9. Bucket 0 (4 ms) ready at 50% of 10 ms, bucket 1 (3 ms) at 100%.
        let m = StepTimeModel(computeSeconds: 0.010, overheadSeconds: 0.001, bucketBytes: [4_000_000, 3_000_000], communication: ab,
                              bucketReadyFractions: [0.5, 1.0])
        // Bucket 0: 5 → 9 ms; bucket 1: max(10, 9) → 13 ms; + 1 ms overhead.
        XCTAssertEqual(m.stepSeconds(workers: 2, overlap: .scheduled), 0.014, accuracy: 1e-12)
        XCTAssertEqual(m.stepSeconds(workers: 2, overlap: .noOverlap), 0.018, accuracy: 1e-12)
        XCTAssertEqual(m.stepSeconds(workers: 2, overlap: .fullOverlap), 0.011, accuracy: 1e-12)
        XCTAssertEqual(m.stepSeconds(workers: 1, overlap: .scheduled), 0.011, accuracy: 1e-12)
        var unknown = m
        unknown.bucketReadyFractions = nil
        XCTAssertEqual(unknown.stepSeconds(workers: 2, overlap: .scheduled), 0.018, accuracy: 1e-12)
    }

    func testEmulatedBucketsBecomeReadyInOrderAndTheLastAtTheEnd() throws {
        let c = try ConfigLoader.parse("""
            [model]
            layers = ["linear 512", "batchnorm", "relu", "linear 256", "batchnorm", "relu", "linear 10"]
            [data]
            dataset = "synthetic"
            """, name: "t")
        let buckets = try c.emulatedGradientBuckets()
        XCTAssertGreaterThan(buckets.count, 1)
        XCTAssertEqual(buckets.map(\.readyFraction), buckets.map(\.readyFraction).sorted())
        XCTAssertGreaterThan(buckets.first!.readyFraction, 1.0 / 3)
        XCTAssertEqual(buckets.last!.readyFraction, 1, accuracy: 1e-12)
    }
}

extension ScalingModelTests {
    /// Workers sharing C cores: each ring step slowed by max(1, N/C); the fit undoes it.
    func testContentionFactorAndItsFit() throws {
        XCTAssertEqual(AlphaBetaModel.contention(workers: 2, sharedCores: 2), 1)
        XCTAssertEqual(AlphaBetaModel.contention(workers: 8, sharedCores: 2), 4)
        XCTAssertEqual(AlphaBetaModel.contention(workers: 8, sharedCores: nil), 1)
        let truth = AlphaBetaModel(alpha: 30e-6, beta: 2e-9)
        XCTAssertEqual(truth.ringAllReduceSeconds(workers: 4, bytes: 1000, sharedCores: 2),
                       2 * truth.ringAllReduceSeconds(workers: 4, bytes: 1000), accuracy: 1e-15)
        let samples = [2, 4, 8].flatMap { n in
            sizes.map { AlphaBetaModel.Sample(workers: n, bytes: $0, seconds: truth.ringAllReduceSeconds(workers: n, bytes: $0, sharedCores: 2)) }
        }
        let fit = try AlphaBetaModel.fit(samples, sharedCores: 2)
        XCTAssertEqual(fit.alpha / truth.alpha, 1, accuracy: 1e-9)
        XCTAssertEqual(fit.beta / truth.beta, 1, accuracy: 1e-9)
        let m = StepTimeModel(computeSeconds: 0.01, overheadSeconds: 0.001, bucketBytes: [1 << 20], communication: truth, sharedCores: 2)
        XCTAssertEqual(m.stepSeconds(workers: 8), 0.01 + 0.004 + truth.ringAllReduceSeconds(workers: 8, bytes: 1 << 20) * 4, accuracy: 1e-12)
    }
}
