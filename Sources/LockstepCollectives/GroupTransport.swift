/// A subset of a transport's ranks as a transport of its own: sub-rank i is the
/// base transport's rank `members[i]`, and every tag is moved into tag space
/// `space` (its top four bits), so the group's collectives never meet the base
/// communicator's messages (whose tags stay below 2^28) or another group's.
///
/// Groups whose member sets share at most one rank (a host's ranks, the ranks of
/// one local rank across hosts) may use the same space: a message names its
/// sender, and two such groups never have the same sender and receiver.
public final class GroupTransport: PeerTransport {
    public let base: PeerTransport
    public let members: [Int]
    public let rank: Int
    private let tagBits: UInt32

    public init(base: PeerTransport, members: [Int], space: UInt32) {
        precondition(space >= 1 && space < 16, "tag space 1...15")
        guard let me = members.firstIndex(of: base.rank) else { preconditionFailure("rank \(base.rank) is not in the group \(members)") }
        self.base = base
        self.members = members
        self.rank = me
        self.tagBits = space << 28
    }

    public var worldSize: Int { members.count }

    private func tag(_ t: UInt32) -> UInt32 { (t & 0x0FFF_FFFF) | tagBits }

    public func send(to peer: Int, tag t: UInt32, _ bytes: UnsafeRawBufferPointer) throws {
        try base.send(to: members[peer], tag: tag(t), bytes)
    }

    public func receive(from peer: Int, tag t: UInt32, into buffer: UnsafeMutableRawBufferPointer) throws {
        try base.receive(from: members[peer], tag: tag(t), into: buffer)
    }

    public func receive(from peer: Int, tag t: UInt32, byteCount: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try base.receive(from: members[peer], tag: tag(t), byteCount: byteCount, body)
    }

    public func host(ofRank r: Int) -> String? { base.host(ofRank: members[r]) }

    public func flushSends() throws { try base.flushSends() }
}
