import Synchronization

// The packing routines and the 6×16 micro-kernel behind `Gemm.sgemm`.
//
// Packed A: per 6-row micro-panel, k-major: panel[p*6 + i] = op(A)[i, p].
// Packed B: per 16-column micro-panel, k-major: panel[p*16 + j] = op(B)[p, j].
// Short edge panels are zero-padded, so the micro-kernel always runs a full
// 6×16 tile and only its store is masked.

extension Gemm {
    /// 6×16 tile of `C = alpha * Apanel·Bpanel + beta * C` over depth `k`;
    /// `rows`/`cols` < 6/16 on edge tiles.
    @inline(__always)
    static func microKernel(
        k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, beta: Float, rows: Int, cols: Int
    ) {
        typealias V = SIMD8<Float>
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        var pa = a
        var pb = UnsafeRawPointer(b)
        for _ in 0..<k {
            let b0 = pb.load(as: V.self)
            let b1 = pb.load(fromByteOffset: 32, as: V.self)
            var av = V(repeating: pa[0])
            c00 = c00.addingProduct(av, b0); c01 = c01.addingProduct(av, b1)
            av = V(repeating: pa[1])
            c10 = c10.addingProduct(av, b0); c11 = c11.addingProduct(av, b1)
            av = V(repeating: pa[2])
            c20 = c20.addingProduct(av, b0); c21 = c21.addingProduct(av, b1)
            av = V(repeating: pa[3])
            c30 = c30.addingProduct(av, b0); c31 = c31.addingProduct(av, b1)
            av = V(repeating: pa[4])
            c40 = c40.addingProduct(av, b0); c41 = c41.addingProduct(av, b1)
            av = V(repeating: pa[5])
            c50 = c50.addingProduct(av, b0); c51 = c51.addingProduct(av, b1)
            pa += 6
            pb += 64
        }
        if rows == 6 && cols == 16 {
            storeRow(c, c00, c01, alpha: alpha, beta: beta)
            storeRow(c + ldc, c10, c11, alpha: alpha, beta: beta)
            storeRow(c + 2 &* ldc, c20, c21, alpha: alpha, beta: beta)
            storeRow(c + 3 &* ldc, c30, c31, alpha: alpha, beta: beta)
            storeRow(c + 4 &* ldc, c40, c41, alpha: alpha, beta: beta)
            storeRow(c + 5 &* ldc, c50, c51, alpha: alpha, beta: beta)
            return
        }
        // Edge tile: spill the accumulators and store the valid part with the
        // same arithmetic as `storeRow`, so edge and interior results agree bitwise.
        withUnsafeTemporaryAllocation(of: V.self, capacity: 12) { tile in
            tile[0] = c00; tile[1] = c01; tile[2] = c10; tile[3] = c11
            tile[4] = c20; tile[5] = c21; tile[6] = c30; tile[7] = c31
            tile[8] = c40; tile[9] = c41; tile[10] = c50; tile[11] = c51
            let t = UnsafeRawPointer(tile.baseAddress!).assumingMemoryBound(to: Float.self)
            for i in 0..<rows {
                let row = c + i &* ldc
                let src = t + i &* 16
                if beta == 0 {
                    for j in 0..<cols { row[j] = alpha * src[j] }
                } else {
                    for j in 0..<cols { row[j] = alpha * src[j] + beta * row[j] }
                }
            }
        }
    }

    @inline(__always)
    static func storeRow(_ p: UnsafeMutablePointer<Float>, _ lo: SIMD8<Float>, _ hi: SIMD8<Float>, alpha: Float, beta: Float) {
        let raw = UnsafeMutableRawPointer(p)
        if beta == 0 {
            raw.storeBytes(of: lo * alpha, as: SIMD8<Float>.self)
            raw.storeBytes(of: hi * alpha, toByteOffset: 32, as: SIMD8<Float>.self)
        } else {
            let old0 = UnsafeRawPointer(raw).loadUnaligned(as: SIMD8<Float>.self)
            let old1 = UnsafeRawPointer(raw).loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
            raw.storeBytes(of: lo * alpha + old0 * beta, as: SIMD8<Float>.self)
            raw.storeBytes(of: hi * alpha + old1 * beta, toByteOffset: 32, as: SIMD8<Float>.self)
        }
    }

    /// Packs op(A) = A (row-major, m×k block at `a`) into 6-row micro-panels.
    static func packA(_ a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = dst
        var i = 0
        while i + mr <= m {
            let r0 = a + i &* lda, r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda
            for p in 0..<k {
                out[0] = r0[p]; out[1] = r1[p]; out[2] = r2[p]
                out[3] = r3[p]; out[4] = r4[p]; out[5] = r5[p]
                out += 6
            }
            i += mr
        }
        if i < m {
            let rows = m - i
            for p in 0..<k {
                for r in 0..<mr { out[r] = r < rows ? a[(i + r) &* lda &+ p] : 0 }
                out += 6
            }
        }
    }

    /// Packs op(A) = Aᵀ, where A is stored k×m row-major at `a`, into 6-row micro-panels.
    static func packATransposed(_ a: UnsafePointer<Float>, lda: Int, m: Int, k: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = dst
        var i = 0
        while i < m {
            let rows = min(mr, m - i)
            var src = a + i
            if rows == mr {
                for _ in 0..<k {
                    out[0] = src[0]; out[1] = src[1]; out[2] = src[2]
                    out[3] = src[3]; out[4] = src[4]; out[5] = src[5]
                    out += 6
                    src += lda
                }
            } else {
                for _ in 0..<k {
                    for r in 0..<mr { out[r] = r < rows ? src[r] : 0 }
                    out += 6
                    src += lda
                }
            }
            i += mr
        }
    }

    /// Packs op(B) = B (row-major, k×n block at `b`) into 16-column micro-panels.
    static func packB(_ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = UnsafeMutableRawPointer(dst)
        var j = 0
        while j < n {
            let cols = min(nr, n - j)
            var src = b + j
            if cols == nr {
                for _ in 0..<k {
                    let raw = UnsafeRawPointer(src)
                    out.storeBytes(of: raw.loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
                    out.storeBytes(of: raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self), toByteOffset: 32, as: SIMD8<Float>.self)
                    out += 64
                    src += ldb
                }
            } else {
                for _ in 0..<k {
                    let o = out.assumingMemoryBound(to: Float.self)
                    for c in 0..<nr { o[c] = c < cols ? src[c] : 0 }
                    out += 64
                    src += ldb
                }
            }
            j += nr
        }
    }

    /// Packs op(B) = Bᵀ, where B is stored n×k row-major at `b`, into 16-column micro-panels.
    static func packBTransposed(_ b: UnsafePointer<Float>, ldb: Int, k: Int, n: Int, into dst: UnsafeMutablePointer<Float>) {
        var out = dst
        var j = 0
        while j < n {
            let cols = min(nr, n - j)
            // Column c of the panel is row (j + c) of B; walk four rows at a time.
            var c = 0
            while c < nr {
                if c + 4 <= cols {
                    let s0 = b + (j + c) &* ldb, s1 = s0 + ldb, s2 = s1 + ldb, s3 = s2 + ldb
                    var o = out + c
                    for p in 0..<k {
                        o[0] = s0[p]; o[1] = s1[p]; o[2] = s2[p]; o[3] = s3[p]
                        o += 16
                    }
                    c += 4
                } else {
                    var o = out + c
                    if c < cols {
                        let s = b + (j + c) &* ldb
                        for p in 0..<k { o[0] = s[p]; o += 16 }
                    } else {
                        for _ in 0..<k { o[0] = 0; o += 16 }
                    }
                    c += 1
                }
            }
            out += k &* nr
            j += nr
        }
    }
}

/// Packing buffers, 64-byte aligned, reused across calls through `Gemm.withScratch`.
// Sendable, unchecked: a scratch has one user at a time; it passes between threads only
// through `scratchCache`'s mutex (taken out, used by that thread alone, put back).
final class GemmScratch: @unchecked Sendable {
    private(set) var packedA: UnsafeMutablePointer<Float>
    private(set) var packedB: UnsafeMutablePointer<Float>
    private var capacityA = 0
    private var capacityB = 0

    init() {
        packedA = Self.allocate(16)
        packedB = Self.allocate(16)
        capacityA = 16
        capacityB = 16
    }

    deinit {
        packedA.deallocate()
        packedB.deallocate()
    }

    func reserve(packedA countA: Int, packedB countB: Int) {
        if countA > capacityA {
            packedA.deallocate()
            packedA = Self.allocate(countA)
            capacityA = countA
        }
        if countB > capacityB {
            packedB.deallocate()
            packedB = Self.allocate(countB)
            capacityB = countB
        }
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
            .bindMemory(to: Float.self, capacity: count)
    }
}

extension Gemm {
    /// Free packing buffers; a call takes one (or makes one) and returns it when done.
    private static let scratchCache = Mutex<[GemmScratch]>([])

    static func withScratch(_ body: (GemmScratch) -> Void) {
        let scratch = scratchCache.withLock { $0.popLast() } ?? GemmScratch()
        body(scratch)
        scratchCache.withLock { $0.append(scratch) }
    }
}
