import XCTest
import Foundation
import TestSupport
@testable import LockstepKernels
#if arch(x86_64)
import LockstepKernelsAVX512
#endif

/// `Gemm.sgemm` against `Gemm.sgemmNaive` (double accumulation) over shapes that
/// exercise the edge tiles and block edges of each kernel family this CPU runs:
/// AVX2 6×16 with MC=144 / KC=256 / NC=4080, AVX-512 12×32 (16-wide last panels)
/// with MC=192 / KC=256 / NC=4096.
final class GemmTests: XCTestCase {
    static let pool2 = ThreadPool(threads: 2)
    static let pool1 = ThreadPool(threads: 1)

    override func tearDown() { Gemm.options.strategy = nil; Gemm.options.kernel = nil; Gemm.options.packA = nil; Gemm.options.thin = nil }

    /// Kernel families this CPU can run (AVX-512 only where detected).
    static var kernels: [GemmKernel] { Gemm.cpuSupportsAVX512 ? [.avx2, .avx512] : [.avx2] }

    struct Case {
        var m, n, k: Int
        var transA = false, transB = false
        var alpha: Float = 1, beta: Float = 0
        var padA = 0, padB = 0, padC = 0
    }

    /// Runs one case on each of `pools` (and, for multi-thread pools, each parallel
    /// strategy), compares with the reference, and returns C from the last run.
    @discardableResult
    func check(_ t: Case, pool: ThreadPool, file: StaticString = #filePath, line: UInt = #line) -> [Float] {
        check(t, pools: [pool], file: file, line: line)
    }

    @discardableResult
    func check(_ t: Case, pools: [ThreadPool], file: StaticString = #filePath, line: UInt = #line) -> [Float] {
        var rng = TestRandom(seed: UInt64(t.m * 7919 + t.n * 104_729 + t.k * 31 + (t.transA ? 1 : 0) + (t.transB ? 2 : 0)))
        let lda = max(1, t.transA ? t.m : t.k) + t.padA
        let ldb = max(1, t.transB ? t.k : t.n) + t.padB
        let ldc = t.n + t.padC
        let a = rng.floats(max(1, (t.transA ? t.k : t.m) * lda))
        let b = rng.floats(max(1, (t.transB ? t.n : t.k) * ldb))
        // beta == 0 must not read C: fill it with NaN. Otherwise random old contents.
        let c0: [Float] = t.beta == 0 ? Array(repeating: .nan, count: t.m * ldc) : rng.floats(t.m * ldc)
        var slow = c0
        Gemm.sgemmNaive(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a, lda: lda,
                        b: b, ldb: ldb, beta: t.beta, c: &slow, ldc: ldc)
        var want: [Float] = []
        for i in 0..<t.m { for j in 0..<t.n { want.append(slow[i * ldc + j]) } }
        let atol = 8e-6 * Double(max(t.k, 1)).squareRoot() + 1e-6
        var fast = c0
        for kernel in Self.kernels { for pool in pools {
            let strategies: [Gemm.Strategy?] = pool.threadCount == 1 ? [nil] : [nil] + Gemm.Strategy.allCases.map(Optional.some)
            for strategy in strategies {
                Gemm.options.strategy = strategy
                Gemm.options.kernel = kernel
                defer { Gemm.options.strategy = nil; Gemm.options.kernel = nil }
                fast = c0
                Gemm.sgemm(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha, a: a, lda: lda,
                           b: b, ldb: ldb, beta: t.beta, c: &fast, ldc: ldc, pool: pool)
                var got: [Float] = []
                for i in 0..<t.m { for j in 0..<t.n { got.append(fast[i * ldc + j]) } }
                assertClose(got, want, rtol: 1e-5, atol: atol, "m=\(t.m) n=\(t.n) k=\(t.k) tA=\(t.transA) tB=\(t.transB) alpha=\(t.alpha) beta=\(t.beta) threads=\(pool.threadCount) strategy=\(String(describing: strategy)) kernel=\(kernel.rawValue)", file: file, line: line)
                // Only the m×n window is written; padding columns keep their old contents.
                for i in 0..<t.m { for j in t.n..<ldc where fast[i * ldc + j].bitPattern != c0[i * ldc + j].bitPattern {
                    XCTFail("padding of C written at row \(i) col \(j) kernel=\(kernel.rawValue)", file: file, line: line); return fast
                } }
            }
        } }
        return fast
    }

    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 13, 5), (33, 17, 65), (130, 257, 19), (6, 16, 256), (5, 15, 257),
        (145, 31, 300), (12, 4081, 3), (150, 20, 513), (290, 4100, 7), (1, 300, 40), (300, 1, 40), (64, 64, 0),
        // AVX-512: 12×32 tiles, a last panel of ≤ 16 columns (run 16 wide), MC=192, KC=256,
        // NC=4096, 16×16 blocks of the Bᵀ packing with depth and column remainders.
        (12, 32, 16), (25, 48, 33), (193, 10, 40), (37, 65, 271), (24, 4113, 17),
    ]

    func testAllTransposeCasesOddShapes() {
        for (m, n, k) in Self.shapes {
            for tA in [false, true] { for tB in [false, true] {
                check(Case(m: m, n: n, k: k, transA: tA, transB: tB), pools: [Self.pool1, Self.pool2])
            } }
        }
    }

    func testAlphaBetaAndLeadingDimensions() {
        let variants: [(Float, Float)] = [(1, 0), (0.5, 0), (1, 1), (-2, 0.25), (0, 0.5), (0, 0)]
        for (alpha, beta) in variants {
            for tA in [false, true] { for tB in [false, true] {
                check(Case(m: 37, n: 41, k: 270, transA: tA, transB: tB, alpha: alpha, beta: beta, padA: 3, padB: 5, padC: 7), pools: [Self.pool1, Self.pool2])
                check(Case(m: 150, n: 70, k: 29, transA: tA, transB: tB, alpha: alpha, beta: beta, padA: 1, padB: 16, padC: 2), pools: [Self.pool1, Self.pool2])
            } }
        }
    }

    /// The MLP 784-512-256-10 shapes at batch 128: forward, dW = Xᵀ·dY, dX = dY·Wᵀ, the thin layer.
    func testTrainingShapes() {
        let cases = [
            Case(m: 128, n: 512, k: 784), Case(m: 784, n: 512, k: 128, transA: true),
            Case(m: 128, n: 784, k: 512, transB: true), Case(m: 128, n: 10, k: 256),
            Case(m: 256, n: 10, k: 128, transA: true), Case(m: 128, n: 256, k: 10, transB: true),
        ]
        for t in cases { check(t, pool: Self.pool2) }
    }

    /// Each C element sees the same operations whatever the split, so any thread count
    /// and either strategy gives the same bits.
    func testThreadCountDoesNotChangeBits() {
        for t in [Case(m: 200, n: 90, k: 300), Case(m: 70, n: 333, k: 260, transA: true, transB: true, beta: 0.5),
                  Case(m: 256, n: 200, k: 96, transB: true), Case(m: 256, n: 96, k: 200, transA: true, beta: 0),
                  Case(m: 300, n: 10, k: 784), Case(m: 1000, n: 12, k: 300, transA: true, beta: 0.5)] {
            var rng = TestRandom(seed: 11)
            let a = rng.floats(t.m * t.k), b = rng.floats(t.k * t.n), c0 = rng.floats(t.m * t.n)
            func run(_ pool: ThreadPool) -> [Float] {
                var c = c0
                Gemm.sgemm(transA: t.transA, transB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                           a: a, lda: t.transA ? t.m : t.k, b: b, ldb: t.transB ? t.k : t.n, beta: t.beta, c: &c, ldc: t.n, pool: pool)
                return c
            }
            for kernel in Self.kernels {
                Gemm.options.kernel = kernel
                let one = run(Self.pool1)
                for pool in [Self.pool2, ThreadPool(threads: 3)] {
                    for strategy in Gemm.Strategy.allCases {
                        Gemm.options.strategy = strategy
                        assertBitwiseEqual(run(pool), one, "threads=\(pool.threadCount) strategy=\(strategy) kernel=\(kernel.rawValue)")
                    }
                    Gemm.options.strategy = nil
                }
            }
            Gemm.options.kernel = nil
        }
    }

    /// The AVX-512 path reads op(A) in place or packs it depending on the shape; both must agree
    /// with the reference (odd leading dimensions, 4 KiB-multiple rows, edge micro-panels).
    func testAVX512PackedAndInPlaceA() throws {
        try XCTSkipUnless(Gemm.cpuSupportsAVX512, "no AVX-512 on this CPU")
        for packA in [false, true] {
            Gemm.options.packA = packA
            defer { Gemm.options.packA = nil }
            for tA in [false, true] { for tB in [false, true] {
                check(Case(m: 29, n: 70, k: 300, transA: tA, transB: tB, beta: 0.5, padA: 3, padB: 1, padC: 5), pools: [Self.pool1, Self.pool2])
                check(Case(m: 40, n: 17, k: 33, transA: tA, transB: tB, padA: 1024 - (tA ? 40 : 33)), pool: Self.pool1)
            } }
        }
    }

    /// Aᵀ·op(B) with at most 12 columns runs the thin kernel (vectorized along the rows of
    /// C): against the reference, and bitwise against the 12×32 kernel it replaces, over
    /// every column count, both op(B), partial 32-row tiles, several depth blocks, beta 0
    /// (C never read) and not.
    func testAVX512ThinKernelMatchesReferenceAndGeneralKernelBitwise() throws {
        try XCTSkipUnless(Gemm.cpuSupportsAVX512, "no AVX-512 on this CPU")
        XCTAssertEqual(Gemm.thinKernel(.avx512, transA: true, n: 10, k: 128), .transposedA)
        XCTAssertEqual(Gemm.thinKernel(.avx512, transA: true, n: 12, k: 1), .transposedA)
        XCTAssertNil(Gemm.thinKernel(.avx512, transA: true, n: 13, k: 128))
        XCTAssertNil(Gemm.thinKernel(.avx2, transA: true, n: 10, k: 128))
        for n in 1...12 { for transB in [false, true] {
            for (m, k) in [(1, 1), (31, 5), (64, 128), (70, 300), (33, 513)] {
                let beta: Float = n % 2 == 0 ? 0 : 0.5
                let t = Case(m: m, n: n, k: k, transA: true, transB: transB, alpha: 1.5, beta: beta,
                             padA: n % 2, padB: n % 3, padC: 2)
                Gemm.options.thin = true
                check(t, pool: Self.pool2)
                let thin = check(t, pool: Self.pool1)  // C from the last run: AVX-512, one thread
                Gemm.options.thin = false
                let general = check(t, pools: [Self.pool1])
                Gemm.options.thin = nil
                let differing = zip(thin, general).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "thin and 12×32 kernels differ in \(differing) elements: m=\(m) n=\(n) k=\(k) transB=\(transB) beta=\(beta)")
            }
        } }
    }

    /// A·op(B) with at most 10 columns and a deep enough k runs dot products along k: against
    /// the reference over every column count, both op(B), odd m, depths with and without a
    /// partial last 16-float step; and each row of C depends on its row of A alone (same
    /// bits computed in a call of 1 row as in a call of 37, on 1 or 3 threads).
    func testAVX512ThinRowsKernel() throws {
        try XCTSkipUnless(Gemm.cpuSupportsAVX512, "no AVX-512 on this CPU")
        XCTAssertEqual(Gemm.thinKernel(.avx512, transA: false, n: 10, k: 784), .rows)
        XCTAssertNil(Gemm.thinKernel(.avx512, transA: false, n: 10, k: 256))
        XCTAssertNil(Gemm.thinKernel(.avx512, transA: false, n: 11, k: 784))
        Gemm.options.thin = true
        defer { Gemm.options.thin = nil }
        for n in 1...10 { for transB in [false, true] {
            for (m, k) in [(1, 1), (3, 15), (33, 16), (8, 17), (37, 400), (20, 787)] {
                let beta: Float = n % 2 == 0 ? 0 : 0.5
                check(Case(m: m, n: n, k: k, transB: transB, alpha: 1.5, beta: beta, padA: n % 3, padB: n % 2, padC: 2),
                      pools: [Self.pool1, Self.pool2])
            }
        } }
        Gemm.options.kernel = .avx512
        defer { Gemm.options.kernel = nil }
        let (m, n, k) = (37, 10, 784)
        var rng = TestRandom(seed: 5)
        let a = rng.floats(m * k), b = rng.floats(k * n)
        var all = [Float](repeating: 0, count: m * n)
        Gemm.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n,
                   beta: 0, c: &all, ldc: n, pool: ThreadPool(threads: 3))
        for row in [0, 17, 36] {
            var one = [Float](repeating: 0, count: n)
            a.withUnsafeBufferPointer { a in
                Gemm.sgemm(transA: false, transB: false, m: 1, n: n, k: k, alpha: 1, a: a.baseAddress! + row * k, lda: k,
                           b: b, ldb: n, beta: 0, c: &one, ldc: n, pool: Self.pool1)
            }
            assertBitwiseEqual(one, Array(all[(row * n)..<((row + 1) * n)]), "row \(row)")
        }
    }

    /// The 16×16 register transpose behind the AVX-512 packing of Bᵀ, element by element.
    func testAVX512PackBTransposedMatchesDefinition() throws {
        #if arch(x86_64)
        try XCTSkipUnless(Gemm.cpuSupportsAVX512, "no AVX-512 on this CPU")
        for (n, k) in [(32, 16), (45, 37), (16, 48), (9, 20), (64, 15)] {
            let ldb = k + 3
            let b = (0..<(n * ldb)).map { Float($0) }
            let panels = (n + 31) / 32
            var out = [Float](repeating: .nan, count: panels * 32 * k)
            GemmAVX512.packBTransposed(b, ldb: ldb, k: k, n: n, into: &out)
            for q in 0..<panels {
                let cols = min(32, n - q * 32), width = cols <= 16 ? 16 : 32
                for p in 0..<k { for c in 0..<width {
                    let want: Float = c < cols ? b[(q * 32 + c) * ldb + p] : 0
                    let got = out[q * 32 * k + p * width + c]
                    if got != want { XCTFail("n=\(n) k=\(k) panel \(q) p=\(p) c=\(c): \(got) != \(want)"); return }
                } }
            }
        }
        #endif
    }

    /// The %peak column divides by a measured FMA throughput: it must imply a plausible
    /// clock for the kernel's FLOP per cycle, and is measured once per process.
    func testMeasuredFMAPeakImpliesAPlausibleClock() {
        for kernel in Self.kernels {
            let peak = FMAThroughput.peakPerCoreGflops(for: kernel)
            let ghz = peak / kernel.flopsPerCycle
            XCTAssertTrue(ghz > 0.5 && ghz < 6, "\(kernel): \(peak) GFLOP/s = \(ghz) GHz at \(kernel.flopsPerCycle) FLOP/cycle")
            XCTAssertEqual(FMAThroughput.peakPerCoreGflops(for: kernel), peak)
        }
    }

    func testKernelSelection() {
        XCTAssertEqual(Gemm.withKernel(.avx2) { Gemm.kernel }, .avx2)
        if Gemm.cpuSupportsAVX512 {
            XCTAssertEqual(Gemm.withKernel(.avx512) { Gemm.kernel }, .avx512)
        }
        if ProcessInfo.processInfo.environment["LOCKSTEP_GEMM"] == nil {
            XCTAssertEqual(Gemm.selectedKernel, Gemm.cpuSupportsAVX512 ? .avx512 : .avx2)
        }
        XCTAssertEqual(GemmKernel.avx512.flopsPerCycle, 64)
        XCTAssertEqual(GemmKernel.avx2.flopsPerCycle, 32)
    }

    func testEmptyDimensionsLeaveOrScaleC() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [0], b: [Float] = [0]
        Gemm.sgemm(transA: false, transB: false, m: 0, n: 2, k: 3, alpha: 1, a: a, lda: 3, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
        XCTAssertEqual(c, [1, 2, 3, 4])
        Gemm.sgemm(transA: false, transB: false, m: 2, n: 2, k: 0, alpha: 1, a: a, lda: 1, b: b, ldb: 2, beta: 2, c: &c, ldc: 2)
        XCTAssertEqual(c, [2, 4, 6, 8])
    }
}
