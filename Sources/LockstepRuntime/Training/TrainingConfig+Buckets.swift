import LockstepNN

extension TrainingConfig {
    /// Bytes of each gradient bucket the trainer all-reduces per step, in submission order.
    public func gradientBucketBytes() throws -> [Int] {
        try emulatedGradientBuckets().map(\.bytes)
    }

    /// Each gradient bucket's bytes and the fraction of an emulated step's compute
    /// after which it is ready (`EmulatedCompute`: a third forward, then backward
    /// in proportion to the parameters of the layers done).
    public func emulatedGradientBuckets() throws -> [(bytes: Int, readyFraction: Double)] {
        guard let shape = inputShape else {
            throw LockstepError("emulated compute needs a dataset whose shape the config tells (fashion-mnist or synthetic)")
        }
        let model = try Sequential(input: shape, specs: try layerSpecs(), synchronizedBatchNorm: syncBatchNorm)
        let ranges = model.parameterRanges
        let total = Double(max(1, ranges.reduce(0) { $0 + $1.count }))
        return GradientBucket.plan(layerRanges: ranges, bucketBytes: bucketBytes).map { b in
            let done = Double(ranges[b.firstLayer...].reduce(0) { $0 + $1.count })
            return (b.range.count * 4, EmulatedCompute.forwardShare + (1 - EmulatedCompute.forwardShare) * done / total)
        }
    }
}
