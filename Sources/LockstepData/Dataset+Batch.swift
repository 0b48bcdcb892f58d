extension Dataset {
    /// Copies the samples `order[positions]` into consecutive rows of a batch,
    /// starting at row `firstRow` of `images` (`features` floats a row) and `labels`.
    /// Threads may fill disjoint rows of one batch at once.
    public func copySamples(_ order: [Int32], positions: Range<Int>, into images: UnsafeMutablePointer<Float>,
                            labels: UnsafeMutablePointer<Int32>, firstRow: Int = 0) {
        self.images.withUnsafeBufferPointer { source in
            for (i, position) in positions.enumerated() {
                let sample = Int(order[position]), row = firstRow + i
                (images + row * features).update(from: source.baseAddress! + sample * features, count: features)
                labels[row] = self.labels[sample]
            }
        }
    }
}
