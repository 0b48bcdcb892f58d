import LockstepBase
import LockstepKernels
import LockstepRuntime
import LockstepTransport
import Foundation

/// One timed SGEMM shape.
public struct GemmBenchmarkResult: Codable, Sendable, Equatable {
    public var m: Int
    public var n: Int
    public var k: Int
    public var transA: Bool
    public var transB: Bool
    public var threads: Int
    /// Median over the timed runs.
    public var gflops: Double
    public var minGflops: Double
    public var maxGflops: Double
    /// Largest |fast - reference| over the checked entries of C.
    public var maxAbsError: Double
    /// `gflops` as a percentage of `threads × peakPerCoreGflops`.
    public var percentOfPeak: Double
    /// `gflops` as a percentage of `threads × 32 FLOP/cycle × clock`, the anchors'
    /// convention (one AVX2 FMA pair per cycle), with the clock implied by the peak
    /// (peak / FLOP per cycle of the kernel). Equal to `percentOfPeak` for the AVX2
    /// kernel; twice it for AVX-512, whose two zmm FMA ports do 64 FLOP/cycle.
    public var percentOf32FlopsPerCycle: Double
}

/// A shape: op(A) is m×k, op(B) is k×n (the order of the numpy anchor's (M, K, N)).
public struct GemmShape: Sendable, Equatable {
    public var m: Int
    public var k: Int
    public var n: Int
    public var transA: Bool
    public var transB: Bool
    public init(m: Int, k: Int, n: Int, transA: Bool = false, transB: Bool = false) {
        self.m = m; self.k = k; self.n = n; self.transA = transA; self.transB = transB
    }
}

public enum GemmBenchmarkError: Error, CustomStringConvertible {
    case mismatch(shape: GemmShape, maxAbsError: Double, tolerance: Double)
    public var description: String {
        switch self {
        case let .mismatch(s, err, tol):
            return "GemmBenchmark: sgemm disagrees with the reference for m=\(s.m) k=\(s.k) n=\(s.n) transA=\(s.transA) transB=\(s.transB): max abs error \(err) > tolerance \(tol); not timing a wrong kernel"
        }
    }
}

/// Checks `Gemm.sgemm` against a double-precision reference, then times it.
public enum GemmBenchmark {
    /// FMA peak of one core for `kernel`, measured at run time (`FMAThroughput`): on the
    /// development machine, a 2-vCPU AVX-512 Xeon (KVM), ~172 GFLOP/s with zmm, i.e.
    /// 64 FLOP/cycle × ~2.7 GHz, and ~86 with ymm (32 FLOP/cycle).
    public static func defaultPeakPerCoreGflops(for kernel: GemmKernel = Gemm.kernel) -> Double {
        FMAThroughput.peakPerCoreGflops(for: kernel)
    }

    /// The peak line printed above the table, e.g. "peak: 172.1 GFLOP/s per core
    /// (measured FMA throughput = 64 FLOP/cycle × 2.69 GHz)".
    public static func peakLine(_ peak: Double, measured: Bool, kernel: GemmKernel = Gemm.kernel) -> String {
        let value = String(format: "%.1f", peak)
        guard measured else { return "peak: \(value) GFLOP/s per core (--peak-per-core)" }
        let ghz = String(format: "%.2f", peak / kernel.flopsPerCycle)
        let anchorPeak = String(format: "%.1f", peak / kernel.flopsPerCycle * 32)
        return "peak: \(value) GFLOP/s per core (measured FMA throughput = \(Int(kernel.flopsPerCycle)) FLOP/cycle × \(ghz) GHz); "
            + "the anchors' 32 FLOP/cycle × \(ghz) GHz = \(anchorPeak) GFLOP/s per core"
    }

    /// One line naming the kernel family that runs, e.g. "kernel: avx512 (zmm FMA, 12×32 tile)".
    public static var kernelLine: String { "kernel: \(Gemm.kernel)" }

    /// The shapes of `shared/anchors/sgemm_bench.py`: squares, the MLP 784-512-256-10
    /// forward shapes at batch 128 and 256, and its backward shapes — here with the
    /// transposes training really uses (dW = Xᵀ·dY: transA; dX = dY·Wᵀ: transB).
    public static var defaultShapes: [GemmShape] {
        var shapes = [128, 256, 512, 1024, 2048].map { GemmShape(m: $0, k: $0, n: $0) }
        for m in [128, 256] { for k in [784, 512] { for n in [512, 256, 10] { shapes.append(GemmShape(m: m, k: k, n: n)) } } }
        for bt in [128, 256] {
            shapes += [
                GemmShape(m: 784, k: bt, n: 512, transA: true), GemmShape(m: 512, k: bt, n: 256, transA: true),
                GemmShape(m: 256, k: bt, n: 10, transA: true), GemmShape(m: bt, k: 512, n: 784, transB: true),
                GemmShape(m: bt, k: 256, n: 512, transB: true), GemmShape(m: bt, k: 10, n: 256, transB: true),
            ]
        }
        return shapes
    }

    /// Tuple form of `run(shapes:threads:peakPerCoreGflops:)`: `(m, k, n, transA, transB)`.
    public static func run(
        shapes: [(m: Int, k: Int, n: Int, transA: Bool, transB: Bool)]?, threads: Int,
        peakPerCoreGflops: Double? = nil
    ) throws -> [GemmBenchmarkResult] {
        let list = shapes?.map { GemmShape(m: $0.m, k: $0.k, n: $0.n, transA: $0.transA, transB: $0.transB) }
        return try run(gemmShapes: list, threads: threads, peakPerCoreGflops: peakPerCoreGflops)
    }

    /// For each shape (default: `defaultShapes`; peak default: `defaultPeakPerCoreGflops()`): verify against the reference (every
    /// entry of C when m·n·k ≤ 2^24, otherwise 200 sampled entries), then warm up,
    /// pick a repetition count so one run lasts ≥ `minSeconds`, and time `runs` runs.
    /// Throws `GemmBenchmarkError.mismatch` before timing a wrong result.
    public static func run(
        gemmShapes shapes: [GemmShape]?, threads: Int, peakPerCoreGflops: Double? = nil,
        minSeconds: Double = 0.15, runs: Int = 5, clock: Clock = .wall
    ) throws -> [GemmBenchmarkResult] {
        let pool = ThreadPool(threads: threads)
        let peak = peakPerCoreGflops ?? defaultPeakPerCoreGflops()
        var results: [GemmBenchmarkResult] = []
        for shape in shapes ?? defaultShapes {
            results.append(try measure(shape, pool: pool, peakPerCoreGflops: peak, minSeconds: minSeconds, runs: runs, clock: clock))
        }
        return results
    }

    static func measure(_ s: GemmShape, pool: ThreadPool, peakPerCoreGflops: Double, minSeconds: Double, runs: Int,
                        clock: Clock) throws -> GemmBenchmarkResult {
        let (m, n, k) = (s.m, s.n, s.k)
        let lda = s.transA ? m : k
        let ldb = s.transB ? k : n
        var rng = SplitMix64(seed: 0x5eed ^ UInt64(m &* 1_000_003 &+ k &* 1009 &+ n))
        let a = FloatBuffer(count: m * k), b = FloatBuffer(count: k * n), c = FloatBuffer(count: m * n)
        for i in 0..<a.count { a[i] = rng.nextFloat() * 2 - 1 }
        for i in 0..<b.count { b[i] = rng.nextFloat() * 2 - 1 }
        c.pointer.update(repeating: .nan, count: m * n)
        let call = {
            Gemm.sgemm(transA: s.transA, transB: s.transB, m: m, n: n, k: k, alpha: 1, a: a.pointer, lda: lda,
                       b: b.pointer, ldb: ldb, beta: 0, c: c.pointer, ldc: n, pool: pool)
        }
        call()

        // Correctness first. Entries are sums of k products of values in [-1, 1].
        func reference(_ i: Int, _ j: Int) -> Double {
            var sum = 0.0
            for p in 0..<k {
                let av = s.transA ? a[p * lda + i] : a[i * lda + p]
                let bv = s.transB ? b[j * ldb + p] : b[p * ldb + j]
                sum += Double(av) * Double(bv)
            }
            return sum
        }
        var maxErr = 0.0
        if m * n * k <= 1 << 24 {
            let expected = FloatBuffer(count: m * n)
            Gemm.sgemmNaive(transA: s.transA, transB: s.transB, m: m, n: n, k: k, alpha: 1, a: a.pointer, lda: lda,
                            b: b.pointer, ldb: ldb, beta: 0, c: expected.pointer, ldc: n)
            for i in 0..<(m * n) { maxErr = max(maxErr, abs(Double(c[i]) - Double(expected[i]))) }
        } else {
            for _ in 0..<200 {
                let i = Int(rng.next() % UInt64(m)), j = Int(rng.next() % UInt64(n))
                maxErr = max(maxErr, abs(Double(c[i * n + j]) - reference(i, j)))
            }
        }
        if !maxErr.isFinite { maxErr = .infinity }
        let tolerance = 1e-5 * Double(k) + 1e-5
        if !(maxErr <= tolerance) {
            throw GemmBenchmarkError.mismatch(shape: s, maxAbsError: maxErr, tolerance: tolerance)
        }

        var reps = 1
        while true {
            let t = time(reps, clock, call)
            if t >= minSeconds || reps >= 1 << 20 { break }
            reps *= 2
        }
        let flop = 2.0 * Double(m) * Double(n) * Double(k)
        var rates: [Double] = []
        for _ in 0..<max(1, runs) { rates.append(flop / (time(reps, clock, call) / Double(reps)) / 1e9) }
        rates.sort()
        let median = rates[rates.count / 2]
        return GemmBenchmarkResult(
            m: m, n: n, k: k, transA: s.transA, transB: s.transB, threads: pool.threadCount,
            gflops: median, minGflops: rates.first!, maxGflops: rates.last!, maxAbsError: maxErr,
            percentOfPeak: 100 * median / (peakPerCoreGflops * Double(pool.threadCount)),
            percentOf32FlopsPerCycle: 100 * median / (peakPerCoreGflops / Gemm.kernel.flopsPerCycle * 32 * Double(pool.threadCount)))
    }

    /// What the timings measure.
    public enum Clock: String, Sendable, CaseIterable {
        /// Elapsed time (the default; what the anchors measure).
        case wall
        /// CPU time of the calling thread: on a shared machine it leaves out the time
        /// other processes held the core, so one-thread variants compare more steadily.
        /// Meaningless for more than one thread.
        case thread
    }

    private static func time(_ reps: Int, _ clock: Clock, _ body: () -> Void) -> Double {
        let start = now(clock)
        for _ in 0..<reps { body() }
        return now(clock) - start
    }

    private static func now(_ clock: Clock) -> Double {
        switch clock {
        case .wall: return MonotonicClock.now()
        case .thread: return MonotonicClock.threadCPUTime()
        }
    }

    /// A Markdown table in the anchor script's column order (M K N).
    public static func markdownTable(_ results: [GemmBenchmarkResult]) -> String {
        var out = "| M | K | N | op | threads | GFLOP/s (median) | min | max | % peak | % of 32 FLOP/cycle | max abs err |\n"
        out += "|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in results {
            let op = (r.transA ? "Aᵀ" : "A") + "·" + (r.transB ? "Bᵀ" : "B")
            out += "| \(r.m) | \(r.k) | \(r.n) | \(op) | \(r.threads) | \(fmt(r.gflops, 1)) | \(fmt(r.minGflops, 1)) | \(fmt(r.maxGflops, 1)) | \(fmt(r.percentOfPeak, 1)) | \(fmt(r.percentOf32FlopsPerCycle, 1)) | \(String(format: "%.1e", r.maxAbsError)) |\n"
        }
        return out
    }

    /// Pretty-printed JSON array of the results.
    public static func json(_ results: [GemmBenchmarkResult]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(results), as: UTF8.self)
    }

    private static func fmt(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
}
