/// The kernel choices of a process, set once at start-up (`Gemm.options`). Every
/// field nil means: decide per call from the CPU and the shape, as measured.
public struct KernelOptions: Sendable, Equatable {
    /// The SGEMM micro-kernel family (`LOCKSTEP_GEMM=avx2|avx512`).
    public var kernel: GemmKernel?
    /// How a parallel SGEMM divides its work (`LOCKSTEP_GEMM_STRATEGY=split|shared`).
    public var strategy: Gemm.Strategy?
    /// Whether the AVX-512 path packs op(A) (`LOCKSTEP_GEMM_PACKA=1|0`).
    public var packA: Bool?
    /// Whether the AVX-512 thin kernels run for products of at most 12 columns (`LOCKSTEP_GEMM_THIN=1|0`).
    public var thin: Bool?

    public init(kernel: GemmKernel? = nil, strategy: Gemm.Strategy? = nil, packA: Bool? = nil, thin: Bool? = nil) {
        self.kernel = kernel
        self.strategy = strategy
        self.packA = packA
        self.thin = thin
    }

    /// Reads the `LOCKSTEP_GEMM*` variables of `environment`; a value not understood is
    /// an error naming the variable and its accepted values.
    public init(environment: [String: String]) throws {
        func choice<T>(_ name: String, _ values: [String: T]) throws -> T? {
            guard let raw = environment[name], !raw.isEmpty else { return nil }
            guard let v = values[raw.lowercased()] else {
                throw KernelOptionsError(description: "\(name)=\(raw): use \(values.keys.sorted().joined(separator: " or ")), or unset it")
            }
            return v
        }
        self.init(kernel: try choice("LOCKSTEP_GEMM", ["avx2": .avx2, "avx512": .avx512]),
                  strategy: try choice("LOCKSTEP_GEMM_STRATEGY", ["split": .splitC, "shared": .sharedPanels]),
                  packA: try choice("LOCKSTEP_GEMM_PACKA", ["1": true, "0": false]),
                  thin: try choice("LOCKSTEP_GEMM_THIN", ["1": true, "0": false]))
        if kernel == .avx512 && !Gemm.cpuSupportsAVX512 {
            throw KernelOptionsError(description: "LOCKSTEP_GEMM=avx512: this CPU lacks AVX-512; use avx2 or unset it")
        }
    }

    /// Two bits per field: 0 unset, then the choice + 1.
    var encoded: UInt32 {
        func bits(_ b: Bool?) -> UInt32 { b.map { $0 ? 2 : 1 } ?? 0 }
        let k: UInt32 = kernel.map { $0 == .avx2 ? 1 : 2 } ?? 0
        let s: UInt32 = strategy.map { $0 == .splitC ? 1 : 2 } ?? 0
        return k | s << 2 | bits(packA) << 4 | bits(thin) << 6
    }

    init(encoded e: UInt32) {
        func bool(_ v: UInt32) -> Bool? { v == 0 ? nil : v == 2 }
        kernel = [nil, .avx2, .avx512][Int(e & 3)]
        strategy = [nil, .splitC, .sharedPanels][Int(e >> 2 & 3)]
        packA = bool(e >> 4 & 3)
        thin = bool(e >> 6 & 3)
    }
}

/// An environment variable of the kernel core that is not understood.
public struct KernelOptionsError: Error, CustomStringConvertible {
    public let description: String
}
