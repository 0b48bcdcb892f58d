import LockstepCollectives
import LockstepTransport

/// The worker's data plane: ZeroMQ sockets (tcp:// or ipc:// endpoints), or
/// shared memory (shm:// endpoints, every worker on one machine).
enum DataPlane {
    case zeroMQ(ZMQPeerTransport)
    case sharedMemory(ShmPeerTransport)

    var transport: PeerTransport {
        switch self {
        case .zeroMQ(let t): return t
        case .sharedMemory(let t): return t
        }
    }

    var boundEndpoint: String {
        switch self {
        case .zeroMQ(let t): return t.boundEndpoint
        case .sharedMemory(let t): return t.boundEndpoint
        }
    }

    func connect(peers: [String], hosts: [String]?) throws {
        switch self {
        case .zeroMQ(let t): try t.connect(peers: peers, hosts: hosts)
        case .sharedMemory(let t): try t.connect(peers: peers, hosts: hosts)
        }
    }

    func close() {
        switch self {
        case .zeroMQ(let t): t.close()
        case .sharedMemory(let t): t.close()
        }
    }
}
