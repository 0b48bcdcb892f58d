import Foundation
import LockstepCollectives
import LockstepTransport

/// Sets up the hierarchical all-reduce of a worker (`--all-reduce`): which ranks
/// share a host (from the host part of each rank's data address in the peer
/// table), a shared-memory transport among them, and the cross-host group of the
/// ranks with this rank's local rank over the job's ZeroMQ transport.
///
/// Every rank decides from the same peer table and job, so all of them choose the
/// same algorithm.
final class HostHierarchy {
    let layout: HostLayout
    let hierarchy: CommunicatorHierarchy
    /// The host's shared-memory transport; closed with the worker.
    let local: ShmPeerTransport

    /// The layout of a peer table: ranks whose addresses name the same host share one.
    static func layout(addresses: [String]) -> HostLayout {
        HostLayout(hostKeys: addresses.map { address in
            RouteAddress.hostAndPort(of: address)?.host ?? "this machine"  // ipc://, shm://: one machine
        })
    }

    /// nil when the flat ring runs: `flat` asked for, one host, uneven hosts, a
    /// single worker per host, or the sharded step (`auto` only; `hierarchical`
    /// with the sharded step is refused when the config is validated).
    /// `log` receives one line saying what was chosen and why.
    static func make(config: TrainingConfig, table: ControlMessage.PeerTable, rank: Int, jobID: UInt64,
                     base: Communicator, transport: PeerTransport, log: (String) -> Void) throws -> HostHierarchy? {
        let layout = layout(addresses: table.addresses)
        switch config.allReduce {
        case .flat:
            return nil
        case .auto where !layout.isHierarchical || config.stepMode != .replicated:
            return nil
        case .hierarchical where !layout.isHierarchical:
            log("all-reduce hierarchical: \(layout.summary) has no host with several workers shared evenly; the flat ring runs")
            return nil
        default:
            break
        }
        let h = layout.hostIndex[rank], l = layout.localRank(of: rank)
        let members = layout.hosts[h]
        let name = { (local: Int) in "shm://lockstep-\(String(jobID, radix: 16))-h\(h)-l\(local)" }
        let shm: ShmPeerTransport
        do {
            shm = try ShmPeerTransport(rank: l, worldSize: members.count, jobID: jobID, bindEndpoint: name(l),
                                       timeoutSeconds: config.timeoutSeconds)
        } catch {
            throw LockstepError("hierarchical all-reduce: cannot create the host's shared-memory segment \(name(l)) (\(error)); run with --all-reduce flat")
        }
        // Every rank has created its segment before any host peer maps it.
        try base.barrier()
        try shm.connect(peers: members.indices.map(name), hosts: members.map { table.hosts[$0] })
        let local = Communicator(transport: shm, chunkBytes: base.chunkBytes)
        let cross = Communicator(transport: GroupTransport(base: transport, members: layout.crossHostPeers(of: rank), space: 1),
                                 chunkBytes: base.chunkBytes)
        log("all-reduce hierarchical: \(layout.summary); local rank \(l) of host \(h) over shared memory, ranks \(layout.crossHostPeers(of: rank)) across hosts")
        return HostHierarchy(layout: layout, hierarchy: CommunicatorHierarchy(local: local, cross: cross), local: shm)
    }

    private init(layout: HostLayout, hierarchy: CommunicatorHierarchy, local: ShmPeerTransport) {
        self.layout = layout
        self.hierarchy = hierarchy
        self.local = local
    }
}
