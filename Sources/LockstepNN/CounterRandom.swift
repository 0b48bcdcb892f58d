import LockstepBase

/// A counter-based random stream: value `i` of stream `key` is a pure function of both,
/// so a dropout mask depends only on (seed, rank, step, layer) and not on call order.
public struct CounterRandom: Sendable {
    public let key: UInt64
    public var counter: UInt64 = 0

    public init(seed: UInt64, _ streams: UInt64...) {
        var k = CounterRandom.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        for s in streams { k = CounterRandom.mix(k ^ (s &* 0xBF58_476D_1CE4_E5B9)) }
        key = k
    }

    /// SplitMix64's finalizer: a bijective 64-bit mixer with good avalanche.
    @inline(__always)
    public static func mix(_ z: UInt64) -> UInt64 { SplitMix64.mix(z) }

    @inline(__always)
    public static func value(key: UInt64, index: UInt64) -> UInt64 {
        mix(key &+ index &* 0x9E37_79B9_7F4A_7C15)
    }

    public mutating func next() -> UInt64 {
        counter &+= 1
        return CounterRandom.value(key: key, index: counter)
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextUniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// Uniform in [-bound, bound).
    public mutating func nextSymmetric(_ bound: Float) -> Float {
        (nextUniform() * 2 - 1) * bound
    }
}
