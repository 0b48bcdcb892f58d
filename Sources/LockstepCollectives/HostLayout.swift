/// Which ranks share a host, from one key per rank (the host part of each rank's
/// data address): the shape a hierarchical all-reduce needs.
///
/// Hosts are numbered in order of their lowest rank; a host's ranks ascend, and a
/// rank's local rank is its place among them. Every rank derives the same layout
/// from the same peer table.
public struct HostLayout: Equatable, Sendable {
    /// hosts[h]: the ranks on host h, ascending.
    public let hosts: [[Int]]
    /// hostIndex[r]: the host of rank r.
    public let hostIndex: [Int]

    public init(hostKeys: [String]) {
        var index: [String: Int] = [:]
        var hosts: [[Int]] = []
        var hostIndex: [Int] = []
        for (rank, key) in hostKeys.enumerated() {
            let h = index[key] ?? hosts.count
            if h == hosts.count { index[key] = h; hosts.append([]) }
            hosts[h].append(rank)
            hostIndex.append(h)
        }
        self.hosts = hosts
        self.hostIndex = hostIndex
    }

    public var worldSize: Int { hostIndex.count }

    /// Workers per host when every host has the same number, else nil.
    public var workersPerHost: Int? {
        guard let first = hosts.first?.count, hosts.allSatisfy({ $0.count == first }) else { return nil }
        return first
    }

    /// Whether a hierarchical all-reduce applies: several hosts, the same number of
    /// workers on each, and more than one worker per host.
    public var isHierarchical: Bool { hosts.count > 1 && (workersPerHost ?? 0) > 1 }

    /// Rank r's place among the ranks of its host.
    public func localRank(of rank: Int) -> Int { hosts[hostIndex[rank]].firstIndex(of: rank)! }

    /// The ranks with the same local rank as `rank`, one per host, in host order.
    public func crossHostPeers(of rank: Int) -> [Int] {
        let l = localRank(of: rank)
        return hosts.map { $0[l] }
    }

    /// One line for logs: "2 hosts × 2 workers" or the ranks per host.
    public var summary: String {
        if let l = workersPerHost { return "\(hosts.count) host\(hosts.count == 1 ? "" : "s") × \(l) worker\(l == 1 ? "" : "s")" }
        return hosts.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: " ")
    }
}
