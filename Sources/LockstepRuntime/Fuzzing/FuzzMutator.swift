import LockstepBase

/// A seeded, dependency-free mutation fuzzer's mutator: takes a corpus input and
/// changes it a few times (bit flips, random and "interesting" bytes and integers
/// that are sizes and counts, inserted, deleted and duplicated runs, splices with
/// another input, truncation). The same seed gives the same inputs on every run.
public struct FuzzMutator {
    private var random: SplitMix64
    /// Inputs grow to at most this many bytes.
    public var maximumLength = 1 << 16

    public init(seed: UInt64) { random = SplitMix64(seed: seed) }

    /// A mutation of `input` (1 to 4 changes); `other` is spliced in sometimes.
    public mutating func mutate(_ input: [UInt8], splicing other: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &random) { change(&bytes, other) }
        if bytes.count > maximumLength { bytes.removeLast(bytes.count - maximumLength) }
        return bytes
    }

    private static let interesting8: [UInt8] = [0, 1, 0x7f, 0x80, 0xff, UInt8(ascii: "-"), UInt8(ascii: "9"), UInt8(ascii: "\""), UInt8(ascii: "["), UInt8(ascii: "{")]
    private static let interesting64: [UInt64] = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fff_ffff, 0xffff_ffff,
                                                  0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff, .max, 1 << 20, 1 << 32, 1 << 40]

    private mutating func position(_ bytes: [UInt8], end: Bool = false) -> Int {
        let n = bytes.count + (end ? 1 : 0)
        return n == 0 ? 0 : Int.random(in: 0..<n, using: &random)
    }

    private mutating func change(_ bytes: inout [UInt8], _ other: [UInt8]) {
        switch Int.random(in: 0..<9, using: &random) {
        case 0 where !bytes.isEmpty:  // flip a bit
            bytes[position(bytes)] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &random)
        case 1 where !bytes.isEmpty:  // a random byte
            bytes[position(bytes)] = UInt8.random(in: 0...255, using: &random)
        case 2 where !bytes.isEmpty:  // an interesting byte
            bytes[position(bytes)] = Self.interesting8.randomElement(using: &random)!
        case 3:  // an interesting integer, 1-8 bytes, either byte order
            var value = Self.interesting64.randomElement(using: &random)!
            if Bool.random(using: &random) { value = value.byteSwapped }
            let width = [1, 2, 4, 8].randomElement(using: &random)!
            let at = position(bytes, end: true)
            let field = withUnsafeBytes(of: value.littleEndian) { Array($0.prefix(width)) }
            let end = min(bytes.count, at + width)
            bytes.replaceSubrange(at..<end, with: field)
        case 4:  // insert random bytes
            let run = (0..<Int.random(in: 1...16, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            bytes.insert(contentsOf: run, at: position(bytes, end: true))
        case 5 where !bytes.isEmpty:  // delete a run
            let at = position(bytes)
            bytes.removeSubrange(at..<min(bytes.count, at + Int.random(in: 1...32, using: &random)))
        case 6 where !bytes.isEmpty:  // duplicate a run
            let at = position(bytes)
            let run = Array(bytes[at..<min(bytes.count, at + Int.random(in: 1...64, using: &random))])
            bytes.insert(contentsOf: run, at: position(bytes, end: true))
        case 7 where !other.isEmpty:  // splice: our head, the other's tail
            let cut = position(bytes, end: true), from = position(other)
            bytes = Array(bytes[..<cut]) + other[from...]
        default:  // truncate
            if !bytes.isEmpty { bytes.removeLast(Int.random(in: 0...bytes.count, using: &random)) }
        }
    }
}
