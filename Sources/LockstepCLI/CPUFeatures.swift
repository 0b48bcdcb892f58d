import Foundation

/// The x86-64 features the kernel modules are compiled for (`-march=x86-64-v3`),
/// read in this module, which is compiled for baseline x86-64, and checked before
/// any kernel runs so that an older CPU gets a message, not SIGILL.
enum CPUFeatures {
    /// What x86-64-v3 adds that the kernels' code generation uses, as /proc/cpuinfo names it.
    static let required = ["avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"]

    /// The first required feature this CPU lacks, or nil (also where there is no /proc to read).
    static func missingForKernels() -> String? {
        #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        return missing(cpuinfo: info)
        #else
        return nil
        #endif
    }

    /// The first required feature absent from the `flags` line of `cpuinfo`, or nil.
    static func missing(cpuinfo: String) -> String? {
        guard let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
        return required.first { !flags.contains($0) }
    }
}
