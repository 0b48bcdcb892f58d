import Synchronization
import Foundation

/// The SGEMM micro-kernel family `Gemm.sgemm` runs.
public enum GemmKernel: String, Sendable, CaseIterable, CustomStringConvertible {
    /// 6×16 tile on SIMD8 (ymm FMA with AVX2); on other architectures the same code
    /// compiled for the target's vectors.
    case avx2
    /// 12×32 tile on SIMD16 (zmm FMA), x86-64 CPUs with AVX-512 F/BW/CD/DQ/VL only.
    case avx512

    public var description: String {
        switch self {
        case .avx2:
            #if arch(x86_64)
            return "avx2 (ymm FMA, 6×16 tile)"
            #else
            return "avx2 (portable SIMD8 6×16 tile)"
            #endif
        case .avx512: return "avx512 (zmm FMA, 12×32 tile)"
        }
    }

    /// Peak FMA throughput of one core in FLOP per cycle: two FMA pipes × lanes × 2.
    public var flopsPerCycle: Double { self == .avx512 ? 64 : 32 }
}

extension Gemm {
    /// Whether this CPU (and kernel) can run the AVX-512 kernel: x86-64 with the
    /// x86-64-v4 extensions (AVX-512 F, BW, CD, DQ, VL) listed in /proc/cpuinfo, which
    /// Linux only reports when it saves the zmm state.
    public static let cpuSupportsAVX512: Bool = {
        #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let flags = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
        return ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()

    /// The family the CPU runs best: AVX-512 where it has it, else AVX2.
    public static let selectedKernel: GemmKernel = cpuSupportsAVX512 ? .avx512 : .avx2

    /// The process's kernel choices (`KernelOptions`), set once at start-up by the
    /// command-line front end; tests set them around the calls they check. Held in one
    /// atomic word, so every GEMM reads them without a lock.
    public static var options: KernelOptions {
        get { KernelOptions(encoded: encodedOptions.load(ordering: .relaxed)) }
        set {
            precondition(newValue.kernel != .avx512 || cpuSupportsAVX512, "Gemm.options: this CPU lacks AVX-512")
            encodedOptions.store(newValue.encoded, ordering: .relaxed)
        }
    }

    private static let encodedOptions = Atomic<UInt32>(0)

    /// The family `sgemm` runs now.
    public static var kernel: GemmKernel { options.kernel ?? selectedKernel }

    /// Runs `body` with `kernel` forced (nil: the selected one). Not for concurrent use with other GEMMs.
    public static func withKernel<R>(_ k: GemmKernel?, _ body: () throws -> R) rethrows -> R {
        let saved = options
        options.kernel = k
        defer { options = saved }
        return try body()
    }
}
