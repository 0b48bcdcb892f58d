import LockstepBase

/// The order in which an epoch visits the training set: identical on every process.
public enum EpochPermutation {
    /// Fisher–Yates shuffle of `0..<count` driven by `SplitMix64(seed: derive(seed, epoch))`.
    public static func make(count: Int, seed: UInt64, epoch: Int) -> [Int32] {
        precondition(count >= 0 && count <= Int(Int32.max), "EpochPermutation: count \(count) out of range")
        var rng = SplitMix64(seed: SplitMix64.derive(seed, UInt64(bitPattern: Int64(epoch))))
        var order = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = Int32(i) }
            initialized = count
        }
        order.withUnsafeMutableBufferPointer { p in
            var i = count - 1
            while i > 0 {
                let j = rng.nextInt(below: i + 1)
                p.swapAt(i, j)
                i -= 1
            }
        }
        return order
    }
}
