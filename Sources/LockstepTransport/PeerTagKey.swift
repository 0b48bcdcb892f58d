/// Where a transport files a received message until it is asked for: its
/// sender and tag (FIFO per key).
struct PeerTagKey: Hashable {
    var sender: Int
    var tag: UInt32
}
