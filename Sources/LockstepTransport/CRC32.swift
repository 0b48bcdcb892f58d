/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's `crc32`),
/// table-driven with slicing-by-8: eight 256-entry tables let one step fold
/// 8 input bytes with 8 independent lookups.
public enum CRC32 {
    /// tables[k * 256 + b]: CRC of byte b followed by k zero bytes.
    nonisolated(unsafe) private static let tables: UnsafeMutablePointer<UInt32> = {
        let tables = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
            tables[byte] = crc
        }
        for k in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(k - 1) * 256 + byte]
                tables[k * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// CRC of `bytes`, continuing from `crc` (the CRC of the bytes before).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard var p = bytes.baseAddress else { return crc }
        let t = tables
        var remaining = bytes.count
        var c = ~crc
        while remaining >= 8 {
            let one = p.loadUnaligned(as: UInt32.self).littleEndian ^ c
            let two = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self).littleEndian
            c = t[7 &* 256 &+ Int(one & 0xFF)] ^ t[6 &* 256 &+ Int((one >> 8) & 0xFF)]
                ^ t[5 &* 256 &+ Int((one >> 16) & 0xFF)] ^ t[4 &* 256 &+ Int(one >> 24)]
                ^ t[3 &* 256 &+ Int(two & 0xFF)] ^ t[2 &* 256 &+ Int((two >> 8) & 0xFF)]
                ^ t[1 &* 256 &+ Int((two >> 16) & 0xFF)] ^ t[Int(two >> 24)]
            p += 8
            remaining &-= 8
        }
        while remaining > 0 {
            c = (c >> 8) ^ t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
            p += 1
            remaining &-= 1
        }
        return ~c
    }

    /// Bit-at-a-time reference, for tests.
    public static func checksumNaive(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}
