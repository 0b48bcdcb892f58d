import LockstepKernels
import LockstepRuntime
import LockstepTransport
import Foundation
import LockstepCollectives

/// The α-β (latency-bandwidth, "Hockney") cost of a ring all-reduce:
///
///     t(N, n) = 2(N−1)·α + 2(N−1)/N · n·β
///
/// N workers, n bytes: a reduce-scatter and an all-gather of N−1 steps each, every
/// step one message of n/N bytes per worker (Thakur, Rabenseifner & Gropp 2005;
/// Patarasuk & Yuan 2009). α is seconds per message, β seconds per byte.
///
/// The formula assumes every worker has its own link and its own CPU. When all
/// N workers run on one machine with C cores (`sharedCores`), their copies,
/// reductions and ZeroMQ threads share those cores, and each ring step is slowed
/// by the contention factor max(1, N/C); `fit` and the predictions then apply it.
public struct AlphaBetaModel: Codable, Equatable, Sendable {
    public var alpha: Double
    public var beta: Double

    public init(alpha: Double, beta: Double) {
        self.alpha = alpha
        self.beta = beta
    }

    /// A link of `bitsPerSecond` (β = 8 / bits per second) with per-message latency `alpha`.
    public init(alpha: Double, linkBitsPerSecond: Double) {
        self.init(alpha: alpha, beta: 8 / linkBitsPerSecond)
    }

    /// One timed all-reduce.
    public struct Sample: Codable, Equatable, Sendable {
        public var workers: Int
        public var bytes: Int
        public var seconds: Double
        public init(workers: Int, bytes: Int, seconds: Double) {
            self.workers = workers
            self.bytes = bytes
            self.seconds = seconds
        }
    }

    /// Coefficients of α and β in t(N, n).
    static func terms(workers: Int, bytes: Int) -> (messages: Double, bytes: Double) {
        let n = Double(workers)
        return (2 * (n - 1), 2 * (n - 1) / n * Double(bytes))
    }

    /// max(1, N/C): how much slower each worker's share of the work runs when N workers share C cores (1 without sharing).
    public static func contention(workers: Int, sharedCores: Int?) -> Double {
        guard let c = sharedCores, c > 0 else { return 1 }
        return max(1, Double(workers) / Double(c))
    }

    /// Predicted seconds of one ring all-reduce of `bytes` over `workers` (0 for one worker),
    /// with the workers on separate machines, or all on one machine of `sharedCores` cores.
    public func ringAllReduceSeconds(workers: Int, bytes: Int, sharedCores: Int? = nil) -> Double {
        guard workers > 1 else { return 0 }
        let t = Self.terms(workers: workers, bytes: bytes)
        return (t.messages * alpha + t.bytes * beta) * Self.contention(workers: workers, sharedCores: sharedCores)
    }

    /// Predicted seconds of one recursive-doubling all-reduce of `bytes`: ⌈log2 N⌉ whole-buffer
    /// exchanges, plus the fold-in and the result for ranks beyond the largest power of two.
    public func recursiveDoublingAllReduceSeconds(workers: Int, bytes: Int, sharedCores: Int? = nil) -> Double {
        guard workers > 1 else { return 0 }
        var p = 1, rounds = 0
        while p * 2 <= workers { p *= 2; rounds += 1 }
        let messages = Double(rounds + (workers > p ? 2 : 0))
        return messages * (alpha + Double(bytes) * beta) * Self.contention(workers: workers, sharedCores: sharedCores)
    }

    /// Predicted seconds of the all-reduce training runs for `bytes` (`Communicator.allReduceSum`):
    /// recursive doubling up to the small-message threshold, the ring above it.
    public func allReduceSeconds(workers: Int, bytes: Int, sharedCores: Int? = nil) -> Double {
        bytes <= Communicator.defaultSmallMessageThreshold(worldSize: workers)
            ? recursiveDoublingAllReduceSeconds(workers: workers, bytes: bytes, sharedCores: sharedCores)
            : ringAllReduceSeconds(workers: workers, bytes: bytes, sharedCores: sharedCores)
    }

    /// Least squares for (α, β) over the samples, no intercept.
    ///
    /// `relative` (the default) weights each sample by 1/t², i.e. minimizes the
    /// relative residuals, so 64 KiB and 16 MiB messages count alike; `absolute`
    /// is ordinary least squares, dominated by the largest messages.
    /// `sharedCores`: the samples were timed with all workers on one machine of that
    /// many cores; the fitted α, β are then those of a worker with a core to itself.
    public static func fit(_ samples: [Sample], relative: Bool = true, sharedCores: Int? = nil) throws -> AlphaBetaModel {
        var sxx = 0.0, sxy = 0.0, syy = 0.0, sxt = 0.0, syt = 0.0
        for s in samples where s.workers > 1 && s.seconds > 0 {
            let k = contention(workers: s.workers, sharedCores: sharedCores)
            let t = terms(workers: s.workers, bytes: s.bytes)
            let (x, y) = (t.messages * k, t.bytes * k)
            let w = relative ? 1 / (s.seconds * s.seconds) : 1
            sxx += w * x * x; sxy += w * x * y; syy += w * y * y
            sxt += w * x * s.seconds; syt += w * y * s.seconds
        }
        let det = sxx * syy - sxy * sxy
        guard det > 1e-12 * sxx * syy, det.isFinite else {
            throw LockstepError("α-β fit: need timings of at least two message sizes with more than one worker")
        }
        return AlphaBetaModel(alpha: (syy * sxt - sxy * syt) / det, beta: (sxx * syt - sxy * sxt) / det)
    }

    /// (predicted − measured) / measured for each sample.
    public func relativeErrors(_ samples: [Sample], sharedCores: Int? = nil) -> [Double] {
        samples.map { (ringAllReduceSeconds(workers: $0.workers, bytes: $0.bytes, sharedCores: sharedCores) - $0.seconds) / $0.seconds }
    }
}

/// Step time of data-parallel training from compute, per-step overhead and the
/// all-reduce of the gradient buckets under an `AlphaBetaModel`.
///
/// - `noOverlap`: compute + overhead + Σ buckets t(N, bucket) — an upper bound;
/// - `fullOverlap`: max(compute, Σ t) + overhead — the lower bound where every
///   all-reduce hides behind compute (in reality only behind backward, and the
///   last bucket never hides);
/// - `scheduled`: the trainer's actual overlap, given when each bucket becomes
///   ready (a fraction of the compute): one communication thread all-reduces the
///   buckets in order, bucket b starting at max(ready_b, end of bucket b−1);
///   step = max(compute, end of the last bucket) + overhead. Falls back to
///   `noOverlap` without ready times.
/// `overhead` is what a one-worker step costs beyond compute (optimizer, batch copy).
/// With `sharedCores` (all workers on one machine) the overhead and the
/// all-reduces are slowed by `AlphaBetaModel.contention`; the emulated compute,
/// a sleep, is not.
public struct StepTimeModel: Codable, Equatable, Sendable {
    public enum Overlap: String, Codable, Sendable, CaseIterable {
        case noOverlap = "none", fullOverlap = "full", scheduled
    }

    public var computeSeconds: Double
    public var overheadSeconds: Double
    public var bucketBytes: [Int]
    public var communication: AlphaBetaModel
    /// For `scheduled`: the fraction of the compute after which each bucket is ready.
    public var bucketReadyFractions: [Double]?
    /// All workers on one machine with this many cores; nil: one worker per machine.
    public var sharedCores: Int?

    public init(computeSeconds: Double, overheadSeconds: Double, bucketBytes: [Int], communication: AlphaBetaModel,
                bucketReadyFractions: [Double]? = nil, sharedCores: Int? = nil) {
        self.sharedCores = sharedCores
        self.computeSeconds = computeSeconds
        self.overheadSeconds = overheadSeconds
        self.bucketBytes = bucketBytes
        self.communication = communication
        self.bucketReadyFractions = bucketReadyFractions
    }

    /// Seconds of gradient all-reduce per step: one all-reduce per bucket, in sequence.
    public func communicationSeconds(workers: Int) -> Double {
        bucketBytes.reduce(0) { $0 + communication.allReduceSeconds(workers: workers, bytes: $1, sharedCores: sharedCores) }
    }

    public func stepSeconds(workers: Int, overlap: Overlap = .noOverlap) -> Double {
        let comm = communicationSeconds(workers: workers)
        let overheadSeconds = overheadSeconds * AlphaBetaModel.contention(workers: workers, sharedCores: sharedCores)
        switch overlap {
        case .noOverlap: return computeSeconds + overheadSeconds + comm
        case .fullOverlap: return max(computeSeconds, comm) + overheadSeconds
        case .scheduled:
            guard let ready = bucketReadyFractions, ready.count == bucketBytes.count else {
                return stepSeconds(workers: workers, overlap: .noOverlap)
            }
            var end = 0.0
            for (bytes, fraction) in zip(bucketBytes, ready) {
                end = max(end, fraction * computeSeconds)
                    + communication.allReduceSeconds(workers: workers, bytes: bytes, sharedCores: sharedCores)
            }
            return max(computeSeconds, end) + overheadSeconds
        }
    }

    /// Weak-scaling efficiency (fixed per-worker batch): step(1) / step(N).
    public func efficiency(workers: Int, overlap: Overlap = .noOverlap) -> Double {
        stepSeconds(workers: 1, overlap: overlap) / stepSeconds(workers: workers, overlap: overlap)
    }
}
