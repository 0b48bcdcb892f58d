#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the learning rate changes with the step index, after warm-up.
public enum LRSchedule: Sendable, Equatable, Codable {
    /// The base rate throughout.
    case constant
    /// torch `StepLR`: `base * gamma^floor(t / stepSize)`, `t` the 0-based global step.
    case step(stepSize: Int, gamma: Float)
    /// torch `CosineAnnealingLR` closed form, `minLR + (base - minLR)(1 + cos(π s/S))/2`, where
    /// `s = t - warmupSteps` and `S = totalSteps - warmupSteps` (so with no warm-up this is
    /// `T_max = totalSteps`); held at `minLR` once `s >= S`.
    case cosine(totalSteps: Int, minLR: Float)
}

/// A schedule composed with linear warm-up (Goyal et al. 2017).
///
/// During warm-up (`t < warmupSteps`) the rate is `scheduled(t) * (t+1)/warmupSteps`,
/// reaching the full rate on the last warm-up step; the step schedule counts
/// from the start of training, the cosine one from the end of warm-up.
public struct LearningRatePolicy: Sendable, Codable, Equatable {
    public var schedule: LRSchedule
    public var warmupSteps: Int

    public init(schedule: LRSchedule = .constant, warmupSteps: Int = 0) {
        self.schedule = schedule
        self.warmupSteps = warmupSteps
    }

    /// The rate for the 0-based step index `step` that is about to run.
    public func learningRate(base: Float, step: Int) -> Float {
        let t = max(step, 0)
        let b = Double(base)
        var lr: Double
        switch schedule {
        case .constant:
            lr = b
        case .step(let stepSize, let gamma):
            let decays = stepSize > 0 ? t / stepSize : 0
            lr = b * pow(Double(gamma.description) ?? Double(gamma), Double(decays))
        case .cosine(let totalSteps, let minLR):
            let span = totalSteps - max(warmupSteps, 0)
            let s = t - max(warmupSteps, 0)
            let floor = Double(minLR)
            if span <= 0 || s >= span {
                lr = floor
            } else {
                lr = floor + (b - floor) * (1 + cos(Double.pi * Double(max(s, 0)) / Double(span))) / 2
            }
        }
        if t < warmupSteps {
            lr *= Double(t + 1) / Double(warmupSteps)
        }
        return Float(lr)
    }
}
