// swift-tools-version:6.0
import PackageDescription

// Only the kernel modules are compiled for x86-64-v3 (AVX2, FMA, F16C): their SIMD
// code needs that codegen, or every lane of `addingProduct` becomes a call to
// `fmaf` (docs/ARCHITECTURE.md, "Build flags"). Everything else is baseline x86-64,
// so on an older CPU the executables start and say what is missing (StartUp).
#if arch(x86_64)
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])]
// The AVX-512 SGEMM kernel lives in its own module compiled for x86-64-v4
// (AVX-512 F/BW/CD/DQ/VL); Gemm calls it only after checking the CPU at run time.
let avx512Targets: [Target] = [
    .target(name: "LockstepKernelsAVX512", swiftSettings: [.unsafeFlags(["-Xcc", "-march=x86-64-v4"])]),
]
let kernelDependencies: [Target.Dependency] = ["LockstepKernelsAVX512"]
#else
let kernelFlags: [SwiftSetting] = []
let avx512Targets: [Target] = []
let kernelDependencies: [Target.Dependency] = []
#endif

let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "Lockstep",
    products: [
        .executable(name: "lockstep", targets: ["lockstep"]),
        .executable(name: "lockstep-coordinator", targets: ["lockstep-coordinator"]),
        .executable(name: "lockstep-worker", targets: ["lockstep-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // System libraries.
        .systemLibrary(name: "CZeroMQ", path: "Sources/CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),

        // The one clock, random generator and hash every module shares.
        .target(name: "LockstepBase"),
        // Kernels: flat buffers, thread pool, SGEMM, elementwise, reductions.
        .target(name: "LockstepKernels", dependencies: ["LockstepBase"] + kernelDependencies, swiftSettings: kernelFlags),
        // Layers with forward/backward over arena views; model replicas on threads.
        .target(name: "LockstepNN", dependencies: ["LockstepBase", "LockstepKernels"], swiftSettings: kernelFlags),
        // Optimizers over contiguous slices of the flat arena; LR schedules.
        .target(name: "LockstepOptim", dependencies: ["LockstepKernels"], swiftSettings: kernelFlags),
        // IDX reader, datasets, shuffling, safetensors.
        .target(name: "LockstepData", dependencies: ["LockstepBase", "CZlib"]),
        // Communicator protocol and collective algorithms (ring, small-message); SIMD sums.
        .target(name: "LockstepCollectives", swiftSettings: kernelFlags),
        // CRC-32C of wire frames: SSE4.2 `crc32` (chosen at run time, via a
        // per-function target attribute, so no unsafe flags) with a table fallback.
        .target(name: "CLockstepChecksum"),
        // Process-shared atomics and futexes for the shared-memory data plane.
        .target(name: "CLockstepShm"),
        // ZeroMQ wrapper, wire format, ZeroMQ and shared-memory peer transports.
        .target(name: "LockstepTransport", dependencies: ["LockstepBase", "CZeroMQ", "CLockstepChecksum", "CLockstepShm", "LockstepCollectives"]),
        // Job spec, config, training loop, checkpoints, metrics, coordinator and worker, launcher.
        .target(
            name: "LockstepRuntime",
            dependencies: [
                "LockstepBase", "LockstepKernels", "LockstepNN", "LockstepOptim", "LockstepData",
                "LockstepCollectives", "LockstepTransport",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        // Benchmarks and their reports (`lockstep bench …`): tables, JSON, plots.
        .target(name: "LockstepBench", dependencies: ["LockstepBase", "LockstepKernels", "LockstepCollectives", "LockstepTransport", "LockstepRuntime"]),

        // Command-line options and commands shared by the three executables.
        .target(name: "LockstepCLI", dependencies: [
            "LockstepBase", "LockstepKernels", "LockstepOptim", "LockstepCollectives", "LockstepTransport", "LockstepRuntime",
            "LockstepBench", argumentParser,
        ]),

        // Thin executables.
        .executableTarget(name: "lockstep", dependencies: ["LockstepCLI", argumentParser]),
        .executableTarget(name: "lockstep-coordinator", dependencies: ["LockstepCLI"]),
        .executableTarget(name: "lockstep-worker", dependencies: ["LockstepCLI"]),

        // Tests.
        .target(name: "TestSupport", dependencies: ["LockstepBase"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["LockstepKernels", "TestSupport"] + kernelDependencies, swiftSettings: kernelFlags),
        .testTarget(name: "NNTests", dependencies: ["LockstepNN", "LockstepKernels"]),
        .testTarget(name: "OptimTests", dependencies: ["LockstepOptim", "LockstepKernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DataTests", dependencies: ["LockstepBase", "LockstepData"]),
        .testTarget(name: "CollectivesTests", dependencies: ["LockstepCollectives", "TestSupport"]),
        .testTarget(name: "TransportTests", dependencies: ["CZeroMQ", "LockstepTransport", "LockstepCollectives", "TestSupport"]),
        .testTarget(name: "BenchTests", dependencies: ["LockstepBench", "LockstepKernels", "LockstepTransport", "LockstepCollectives", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["LockstepCLI"]),
        .testTarget(name: "RuntimeTests", dependencies: [
            "LockstepRuntime", "LockstepBench", "LockstepKernels", "LockstepNN", "LockstepOptim", "LockstepData",
            "LockstepCollectives", "LockstepTransport", "TestSupport",
        ]),
    ] + avx512Targets,
    swiftLanguageModes: [.v6]
)
