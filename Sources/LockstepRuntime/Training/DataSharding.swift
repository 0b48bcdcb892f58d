/// How a global batch is laid out over the epoch and split between workers.
///
/// The epoch's permutation is the same on every worker (seeded by seed and epoch).
/// Step s covers positions [s·G, min((s+1)·G, N)) of it, G = workers × batch size.
/// Worker r takes the r-th of `workers` near-equal contiguous parts of that range.
/// The last, partial batch is kept (not dropped, not padded): its parts are as even
/// as possible and the loss is a mean over the samples actually present, so the
/// gradient is still the exact global mean (docs/MATH.md, "Gradient-descent modes").
public struct DataSharding: Sendable, Equatable {
    public let sampleCount: Int
    public let globalBatch: Int
    public let workers: Int

    /// `batchSize` 0 means the whole training set per step (BGD).
    public init(sampleCount: Int, batchSize: Int, workers: Int) {
        self.sampleCount = sampleCount
        self.workers = workers
        globalBatch = batchSize == 0 ? sampleCount : min(batchSize * workers, sampleCount)
    }

    public var stepsPerEpoch: Int { (sampleCount + globalBatch - 1) / globalBatch }

    /// Positions in the epoch permutation of step `step` (0-based).
    public func globalRange(step: Int) -> Range<Int> {
        let lo = step * globalBatch
        return lo..<min(lo + globalBatch, sampleCount)
    }

    /// This worker's part of step `step`.
    public func localRange(step: Int, rank: Int) -> Range<Int> {
        let g = globalRange(step: step)
        let n = g.count
        return (g.lowerBound + n * rank / workers)..<(g.lowerBound + n * (rank + 1) / workers)
    }
}
