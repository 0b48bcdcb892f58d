/// 64-bit FNV-1a: the hash of a model description and of parameter bytes, the same
/// on every process and platform (an identity check, not cryptography).
public struct FNV1a: Sendable {
    public var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    @inlinable
    public mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    /// The four bytes of `bits`, least significant first.
    @inlinable
    public mutating func add(_ bits: UInt32) {
        var b = bits
        for _ in 0..<4 { add(byte: UInt8(b & 0xFF)); b >>= 8 }
    }

    public mutating func add(_ text: String) {
        for b in text.utf8 { add(byte: b) }
    }

    /// Sixteen hex digits.
    public var hex: String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
