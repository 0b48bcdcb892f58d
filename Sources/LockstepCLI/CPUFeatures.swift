import Foundation

/// The x86-64 features the kernel modules are compiled for (`-march=x86-64-v3`),
/// read in this module, which is compiled for baseline x86-64,
/// checked before any kernel runs so that an older CPU gets a message, not SIGILL.
enum CPUFeatures {
    /// The first required feature this CPU lacks (as /proc/cpuinfo names it), or nil.
    static func missingForKernels() -> String? {
        #if arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return nil }  // no /proc: nothing to check against
        let flags = Set(line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" }).map(String.init))
        return ["avx2", "fma", "f16c", "bmi1", "bmi2", "movbe"].first { !flags.contains($0) }
        #else
        return nil
        #endif
    }
}
