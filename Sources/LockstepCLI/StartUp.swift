import Foundation
import LockstepKernels
import LockstepRuntime
import LockstepTransport

/// What every executable does first: check that this CPU runs the kernel core,
/// read the environment (the only place Lockstep reads it) into the kernel options,
/// and set the process's malloc for ZeroMQ's messages (`MessageMemory`).
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
    }
}
