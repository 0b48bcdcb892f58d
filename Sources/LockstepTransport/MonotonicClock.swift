import Glibc

/// Seconds on the monotonic clock: deadlines and timings that wall-clock
/// adjustments cannot move.
public enum MonotonicClock {
    public static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
