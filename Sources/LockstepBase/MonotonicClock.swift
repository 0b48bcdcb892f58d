#if canImport(Glibc)
import Glibc
#endif

/// Lockstep's clocks, in seconds: the monotonic clock for deadlines and timings
/// that wall-clock adjustments cannot move, and the calling thread's CPU time for
/// one-thread measurements on a shared machine.
public enum MonotonicClock {
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// CPU time of the calling thread (leaves out the time other processes held the core).
    public static func threadCPUTime() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
