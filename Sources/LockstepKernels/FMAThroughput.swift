import LockstepBase
import Foundation
import Synchronization
#if arch(x86_64)
import LockstepKernelsAVX512
#endif

/// The FMA peak of one core, measured: the `%peak` column of `lockstep bench gemm`
/// divides by it. Like the anchors' fma_peak.c, it times many independent FMA chains
/// (no loads, no dependences between chains) on the calling thread's CPU time, with the
/// vector width of the SGEMM kernel that runs (zmm for AVX-512, 8 lanes otherwise), and
/// keeps the best of several short runs (a run the host interrupts only reads lower).
/// The clock follows as peak / FLOP per cycle (64 for AVX-512: two 16-lane FMA pipes;
/// 32 for AVX2).
public enum FMAThroughput {
    /// GFLOP/s of one core for `kernel`'s vector width, measured once per process.
    public static func peakPerCoreGflops(for kernel: GemmKernel = Gemm.kernel) -> Double {
        cache.withLock { cached in
            if let value = cached[kernel] { return value }
            let value = measure(kernel)
            cached[kernel] = value
            return value
        }
    }

    private static let cache = Mutex<[GemmKernel: Double]>([:])

    static func measure(_ kernel: GemmKernel, runs: Int = 8, secondsPerRun: Double = 0.01) -> Double {
        // Size the runs from a short calibration (~1 ms of work).
        var iterations = 1 << 14
        var best = 0.0
        var sink: Float = 0
        for run in 0...runs {
            let start = threadSeconds()
            let (result, flopsPerIteration) = chains(kernel, iterations: iterations)
            let elapsed = max(threadSeconds() - start, 1e-9)
            sink += result
            if run == 0 {
                iterations = max(1, Int(Double(iterations) * secondsPerRun / elapsed))
                continue
            }
            best = max(best, Double(iterations * flopsPerIteration) / elapsed / 1e9)
        }
        // Keep the chains' results observable so the work is not removed.
        if sink.isNaN { FileHandle.standardError.write("FMAThroughput: NaN\n".data(using: .utf8)!) }
        return best
    }

    private static func chains(_ kernel: GemmKernel, iterations: Int) -> (Float, Int) {
        #if arch(x86_64)
        if kernel == .avx512 {
            return (GemmAVX512.fmaChains(iterations: iterations), GemmAVX512.fmaChainsFlopsPerIteration)
        }
        #endif
        return (fmaChains8(iterations: iterations), 12 * 8 * 2)
    }

    /// 12 independent 8-lane chains x ← x·a + b (14 of AVX2's 16 vector registers).
    @inline(never)
    static func fmaChains8(iterations: Int) -> Float {
        typealias V = SIMD8<Float>
        let a = V(repeating: 0.999_999), b = V(repeating: 1e-7)
        var x0 = V(repeating: 1.00), x1 = V(repeating: 1.01), x2 = V(repeating: 1.02), x3 = V(repeating: 1.03)
        var x4 = V(repeating: 1.04), x5 = V(repeating: 1.05), x6 = V(repeating: 1.06), x7 = V(repeating: 1.07)
        var x8 = V(repeating: 1.08), x9 = V(repeating: 1.09), xa = V(repeating: 1.10), xb = V(repeating: 1.11)
        for _ in 0..<iterations {
            x0 = b.addingProduct(x0, a); x1 = b.addingProduct(x1, a); x2 = b.addingProduct(x2, a); x3 = b.addingProduct(x3, a)
            x4 = b.addingProduct(x4, a); x5 = b.addingProduct(x5, a); x6 = b.addingProduct(x6, a); x7 = b.addingProduct(x7, a)
            x8 = b.addingProduct(x8, a); x9 = b.addingProduct(x9, a); xa = b.addingProduct(xa, a); xb = b.addingProduct(xb, a)
        }
        let s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)) + ((x8 + x9) + (xa + xb))
        return s.sum()
    }

    private static func threadSeconds() -> Double { MonotonicClock.threadCPUTime() }
}
