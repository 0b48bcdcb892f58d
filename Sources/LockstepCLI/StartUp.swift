import Foundation
import LockstepKernels
import LockstepRuntime
import LockstepTransport

/// What every executable does first: check that this CPU runs the kernel core,
/// read the environment (the only place Lockstep reads it) into the kernel options,
/// set the process's malloc for ZeroMQ's messages (`MessageMemory`) and raise its
/// descriptor limit to the hard one.
public enum StartUp {
    public static func prepare(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        if let missing = CPUFeatures.missingForKernels() {
            throw LockstepError("this CPU lacks \(missing), which Lockstep's kernels need (x86-64-v3: AVX2, FMA, F16C); run on a newer x86-64 CPU")
        }
        do {
            Gemm.options = try KernelOptions(environment: environment)
        } catch let e as KernelOptionsError {
            throw LockstepError(e.description)
        }
        MessageMemory.retainFreedBlocks()
        // Connections strangers open hold descriptors until dropped: allow as many as the system lets us.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}
