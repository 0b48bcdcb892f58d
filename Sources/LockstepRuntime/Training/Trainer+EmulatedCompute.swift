import LockstepBase
import Glibc
import LockstepNN

/// `--emulate-compute-ms X`: a step whose forward and backward are replaced by a
/// wait of X ms, so the communication system can be driven by more workers than
/// the machine has cores (a sleeping worker leaves the cores to the others).
///
/// Everything after backward is real: the gradient buckets are all-reduced on the
/// communication thread while the emulated backward continues, then the optimizer
/// runs. The wait is split like a dense network's work: one third forward, two
/// thirds backward, spread over the layers in proportion to their parameters, so
/// buckets become ready at the times they would in a real step.
///
/// The wait is `clock_nanosleep` to absolute deadlines measured from the step's
/// start, so per-layer overshoots do not add up; only the last deadline's
/// overshoot (`sleepOvershoot`, ~50-100 µs here) lengthens the step. A spin would
/// be more exact but would take a core from the other workers' communication.
///
/// Gradients are a fixed function of (step, index), identical on every rank, so
/// the all-reduced result and therefore the parameters stay bitwise identical.
struct EmulatedCompute {
    static let forwardShare = 1.0 / 3.0

    let seconds: Double
    let start: Double

    init(milliseconds: Double) {
        seconds = milliseconds / 1000
        start = Self.now()
    }

    /// Emulated forward: wait until a third of the step's compute has passed.
    func forward() {
        Self.sleep(until: start + seconds * Self.forwardShare)
    }

    /// Emulated backward, last layer first: writes each layer's synthetic
    /// gradients, waits for its share of the compute, then reports it done.
    func backward(model: Sequential, step: Int, layerDone: ((Int) -> Void)?) {
        let ranges = model.parameterRanges
        let total = max(1, ranges.reduce(0) { $0 + $1.count })
        let grads = model.gradients.pointer
        var done = 0
        for layer in stride(from: ranges.count - 1, through: 0, by: -1) {
            let r = ranges[layer]
            for i in r { grads[i] = Self.gradient(step: step, index: i) }
            done += r.count
            let fraction = Self.forwardShare + (1 - Self.forwardShare) * Double(done) / Double(total)
            Self.sleep(until: start + seconds * fraction)
            layerDone?(layer)
        }
        Self.sleep(until: start + seconds)
    }

    /// A multiple of 2⁻²⁰ in [-1000, 1000]·2⁻²⁰: a hash of (step, index), so sums over
    /// up to 2¹³ ranks are exact and every rank computes the same value.
    static func gradient(step: Int, index: Int) -> Float {
        let h = (UInt32(truncatingIfNeeded: index &+ 1) &* 2_654_435_761) ^ (UInt32(truncatingIfNeeded: step &+ 1) &* 40_503)
        return Float(Int((h >> 7) % 2001) - 1000) * 0x1p-20
    }

    static func now() -> Double { MonotonicClock.now() }

    /// Sleeps until the absolute monotonic time `deadline` (returns at once if it has passed).
    static func sleep(until deadline: Double) {
        guard deadline > now() else { return }
        var t = timespec(tv_sec: Int(deadline), tv_nsec: Int((deadline - deadline.rounded(.down)) * 1e9))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nil) == EINTR {}
    }

    /// Median and 95th percentile of how late a `sleep(until:)` of `milliseconds` returns, in seconds.
    static func sleepOvershoot(milliseconds: Double, samples: Int = 50) -> (median: Double, p95: Double) {
        var late: [Double] = []
        for _ in 0..<max(1, samples) {
            let deadline = now() + milliseconds / 1000
            sleep(until: deadline)
            late.append(now() - deadline)
        }
        late.sort()
        return (late[late.count / 2], late[min(late.count - 1, late.count * 95 / 100)])
    }
}

extension Trainer {
    /// Starts the emulated compute of one step, or nil when the model runs for real.
    func beginEmulatedCompute() -> EmulatedCompute? {
        guard let ms = config.emulateComputeMs, ms > 0 else { return nil }
        return EmulatedCompute(milliseconds: ms)
    }

    /// The model's backward, or the emulated one: same `layerDone` calls, same gradient arena.
    func backward(batch: Int, context: StepContext, emulation: EmulatedCompute?, layerDone: ((Int) -> Void)? = nil) throws {
        guard let emulation else { return try model.backward(batch: batch, context: context, layerDone: layerDone) }
        emulation.backward(model: model, step: globalStep, layerDone: layerDone)
    }
}

/// Public face of the sleep calibration, for `lockstep bench scaling`.
public enum EmulatedComputeCalibration {
    /// How late a sleep of `milliseconds` wakes up: median and p95, in seconds.
    public static func sleepOvershoot(milliseconds: Double, samples: Int = 50) -> (median: Double, p95: Double) {
        EmulatedCompute.sleepOvershoot(milliseconds: milliseconds, samples: samples)
    }
}
