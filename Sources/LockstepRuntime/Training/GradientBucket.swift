/// A contiguous range of the gradient arena all-reduced as one message.
///
/// Buckets are cut from the end of the arena (backward finishes the last
/// layer first) and hold whole layers, at least `bucketBytes` each except
/// possibly the last; a bucket is ready once backward has done its lowest layer.
struct GradientBucket: Equatable {
    var range: Range<Int>
    /// Lowest layer index with parameters in the bucket: the last one backward completes.
    var firstLayer: Int

    static func plan(layerRanges: [Range<Int>], bucketBytes: Int) -> [GradientBucket] {
        var buckets: [GradientBucket] = []
        var open: GradientBucket?
        for i in stride(from: layerRanges.count - 1, through: 0, by: -1) where !layerRanges[i].isEmpty {
            let r = layerRanges[i]
            var b = open ?? GradientBucket(range: r, firstLayer: i)
            b.range = r.lowerBound..<b.range.upperBound
            b.firstLayer = i
            if b.range.count * 4 >= bucketBytes {
                buckets.append(b)
                open = nil
            } else {
                open = b
            }
        }
        if let b = open { buckets.append(b) }
        return buckets
    }
}
