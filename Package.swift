// swift-tools-version:6.0
import PackageDescription

// SIMD kernels need AVX2+FMA codegen on x86-64: without it every lane of
// `addingProduct` becomes a call to `fmaf` (see README, "Build flags").
#if arch(x86_64)
let simdFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])]
// The AVX-512 SGEMM kernel lives in its own module compiled for x86-64-v4
// (AVX-512 F/BW/CD/DQ/VL); Gemm calls it only after checking the CPU at run time.
let avx512Targets: [Target] = [
    .target(name: "LockstepKernelsAVX512", swiftSettings: [.unsafeFlags(["-Xcc", "-march=x86-64-v4"])]),
]
let kernelDependencies: [Target.Dependency] = ["LockstepKernelsAVX512"]
#else
let simdFlags: [SwiftSetting] = []
let avx512Targets: [Target] = []
let kernelDependencies: [Target.Dependency] = []
#endif

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

        // Kernels: flat buffers, thread pool, SGEMM, elementwise, reductions.
        .target(name: "LockstepKernels", dependencies: kernelDependencies, swiftSettings: simdFlags),
        // Layers with forward/backward over arena views.
        .target(name: "LockstepNN", dependencies: ["LockstepKernels"], swiftSettings: simdFlags),
        // Optimizers over contiguous slices of the flat arena; LR schedules.
        .target(name: "LockstepOptim", dependencies: ["LockstepKernels"], swiftSettings: simdFlags),
        // IDX reader, datasets, shuffling, safetensors.
        .target(name: "LockstepData", dependencies: ["CZlib"], swiftSettings: simdFlags),
        // Communicator protocol and collective algorithms (ring, small-message).
        .target(name: "LockstepCollectives", dependencies: ["LockstepKernels"], swiftSettings: simdFlags),
        // CRC-32C of wire frames: SSE4.2 `crc32` (chosen at run time, via a
        // per-function target attribute, so no unsafe flags) with a table fallback.
        .target(name: "CLockstepChecksum"),
        // Process-shared atomics and futexes for the shared-memory data plane.
        .target(name: "CLockstepShm"),
        // ZeroMQ wrapper, wire format, ZeroMQ and shared-memory peer transports.
        .target(name: "LockstepTransport", dependencies: ["CZeroMQ", "CLockstepChecksum", "CLockstepShm", "LockstepCollectives"], swiftSettings: simdFlags),
        // Config, training loop, checkpoints, metrics, coordinator and worker.
        .target(
            name: "LockstepRuntime",
            dependencies: [
                "LockstepKernels", "LockstepNN", "LockstepOptim", "LockstepData",
                "LockstepCollectives", "LockstepTransport",
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: simdFlags
        ),

        // Command-line options and commands shared by the three executables.
        .target(name: "LockstepCLI", dependencies: ["LockstepRuntime", "LockstepCollectives", "LockstepTransport", .product(name: "ArgumentParser", package: "swift-argument-parser")], swiftSettings: simdFlags),

        // Thin executables.
        .executableTarget(name: "lockstep", dependencies: ["LockstepCLI"], swiftSettings: simdFlags),
        .executableTarget(name: "lockstep-coordinator", dependencies: ["LockstepCLI"], swiftSettings: simdFlags),
        .executableTarget(name: "lockstep-worker", dependencies: ["LockstepCLI"], swiftSettings: simdFlags),

        // Tests.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["LockstepKernels", "TestSupport"] + kernelDependencies, swiftSettings: simdFlags),
        .testTarget(name: "NNTests", dependencies: ["LockstepNN", "TestSupport"], swiftSettings: simdFlags),
        .testTarget(name: "OptimTests", dependencies: ["LockstepOptim", "LockstepKernels", "TestSupport"], resources: [.copy("Fixtures")], swiftSettings: simdFlags),
        .testTarget(name: "DataTests", dependencies: ["LockstepData", "TestSupport"], swiftSettings: simdFlags),
        .testTarget(name: "CollectivesTests", dependencies: ["LockstepCollectives", "TestSupport"], swiftSettings: simdFlags),
        .testTarget(name: "TransportTests", dependencies: ["LockstepTransport", "TestSupport"], swiftSettings: simdFlags),
        .testTarget(name: "RuntimeTests", dependencies: ["LockstepRuntime", "TestSupport"], swiftSettings: simdFlags),
    ] + avx512Targets,
    swiftLanguageModes: [.v5]
)
