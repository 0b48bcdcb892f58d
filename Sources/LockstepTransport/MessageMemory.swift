import CZeroMQ

/// Keeps freed message memory in the process instead of returning it to the
/// kernel.
///
/// libzmq `malloc`s every message above 33 bytes: ours when a frame is
/// encoded, its own when a frame is received. glibc serves blocks above
/// 128 KiB (its default mmap threshold, raised dynamically only up to the
/// last freed size) with fresh `mmap`s and trims the heap top beyond 128 KiB
/// of free space, so every chunk of a ring collective page-faulted its pages
/// in again: a 16 MiB all-reduce between two processes took ~106k minor
/// faults, ~40% of its time. With a 32 MiB mmap threshold (glibc's maximum),
/// a 512 MiB trim threshold and 16 MiB of top padding, the same run took
/// ~21k faults and its median time fell from ~27-41 ms to ~13-21 ms (shared
/// 2-vCPU machine). Memory a worker once used for messages stays mapped,
/// bounded by the largest collective's in-flight volume.
///
/// The settings are the process's malloc's, so they are applied at one visible
/// place: the executables' start-up (`StartUp.prepare` in the CLI), not by a transport.
public enum MessageMemory {
    /// Applies the settings once per process; later calls do nothing.
    public static func retainFreedBlocks() { _ = applied }

    private static let applied: Bool = {
        mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
            && mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1
            && mallopt(M_TOP_PAD, 16 << 20) == 1
    }()
}
