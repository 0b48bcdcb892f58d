/// Element format of gradient payloads on the wire. Reduction always happens
/// in fp32: a received fp16/bf16 chunk is widened, then added.
public enum WireFormat: String, CaseIterable, Codable, Sendable {
    case fp32
    case fp16
    case bf16

    public var bytesPerElement: Int { self == .fp32 ? 4 : 2 }

    /// Writes `count` floats in this format (fp16: IEEE half, round to nearest even,
    /// overflow to ±inf; bf16: the top 16 bits, round to nearest even).
    public func encode(_ src: UnsafePointer<Float>, count: Int, into dst: UnsafeMutableRawPointer) {
        switch self {
        case .fp32:
            dst.copyMemory(from: src, byteCount: count * 4)
        case .fp16:
            let out = dst.bindMemory(to: Float16.self, capacity: count)
            for i in 0..<count { out[i] = Float16(src[i]) }
        case .bf16:
            let out = dst.bindMemory(to: UInt16.self, capacity: count)
            for i in 0..<count { out[i] = WireFormat.bf16(src[i]) }
        }
    }

    /// Reads `count` elements of this format as floats.
    public func decode(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .fp32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .fp16:
            let p = src.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { dst[i] = Float(p[i]) }
        case .bf16:
            let p = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { dst[i] = Float(bitPattern: UInt32(p[i]) << 16) }
        }
    }

    /// Adds `count` elements of this format into `dst` (fp32 accumulation).
    public func decodeAdding(_ src: UnsafeRawPointer, count: Int, into dst: UnsafeMutablePointer<Float>) {
        switch self {
        case .fp32:
            addInPlace(dst, src, count: count)
        case .fp16:
            let p = src.assumingMemoryBound(to: Float16.self)
            for i in 0..<count { dst[i] += Float(p[i]) }
        case .bf16:
            let p = src.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count { dst[i] += Float(bitPattern: UInt32(p[i]) << 16) }
        }
    }

    /// Rounds values in place to what the wire can carry, so the sender keeps
    /// exactly the bits its receivers will decode.
    public func quantize(_ data: UnsafeMutablePointer<Float>, count: Int) {
        switch self {
        case .fp32: return
        case .fp16: for i in 0..<count { data[i] = Float(Float16(data[i])) }
        case .bf16: for i in 0..<count { data[i] = Float(bitPattern: UInt32(WireFormat.bf16(data[i])) << 16) }
        }
    }

    @inline(__always)
    static func bf16(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = 0x7FFF &+ ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}
