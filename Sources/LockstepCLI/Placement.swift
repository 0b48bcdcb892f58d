/// Where one task of a job stands: its rank, the world size, its rank on its host,
/// and the coordinator's address. `lockstep run` takes it from its flags, else from
/// the environment the launching engine set, in this order: torchrun's (`RANK`,
/// `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`), Slurm's
/// (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`, the first host of
/// `SLURM_JOB_NODELIST`), a Kubernetes Indexed Job's (`JOB_COMPLETION_INDEX` with
/// `WORLD_SIZE` and `MASTER_ADDR` from the manifest).
struct Placement: Equatable {
    var rank: Int
    var worldSize: Int
    var localRank: Int?
    var coordinatorHost: String
    var coordinatorPort: Int
    /// Which convention supplied it ("flags", "torchrun", "slurm", "kubernetes").
    var source: String

    /// The coordinator's port when nothing names one (torch.distributed's default).
    static let defaultPort = 29500

    /// `flags` win over `environment`; a missing or malformed value is a one-line error
    /// naming the variable or flag to set.
    static func resolve(rank: Int?, worldSize: Int?, localRank: Int?, coordinator: String?,
                        environment env: [String: String]) throws -> Placement {
        func int(_ name: String) throws -> Int? {
            guard let raw = env[name], !raw.isEmpty else { return nil }
            guard let v = Int(raw), v >= 0 else { throw PlacementError("\(name)=\(raw): expected a non-negative integer") }
            return v
        }
        var source = "flags"
        var r = rank, w = worldSize, l = localRank
        var host: String?, port: Int?
        if let coordinator { (host, port) = try parse(coordinator) }
        if let envRank = try int("RANK"), let envWorld = try int("WORLD_SIZE") {
            if r == nil || w == nil { source = "torchrun" }
            r = r ?? envRank; w = w ?? envWorld
            if l == nil { l = try int("LOCAL_RANK") }
            host = host ?? env["MASTER_ADDR"]
        } else if let procID = try int("SLURM_PROCID"), let tasks = try int("SLURM_NTASKS") {
            if r == nil || w == nil { source = "slurm" }
            r = r ?? procID; w = w ?? tasks
            if l == nil { l = try int("SLURM_LOCALID") }
            if host == nil, let list = env["SLURM_JOB_NODELIST"] ?? env["SLURM_NODELIST"] { host = try firstHost(of: list) }
            if port == nil, env["MASTER_PORT"] == nil, let job = try int("SLURM_JOB_ID") { port = 20_000 + job % 10_000 }
        } else if let index = try int("JOB_COMPLETION_INDEX") {
            if r == nil { source = "kubernetes" }
            r = r ?? index
            if w == nil { w = try int("WORLD_SIZE") }
            host = host ?? env["MASTER_ADDR"]
        }
        if port == nil { port = try int("MASTER_PORT") ?? defaultPort }
        guard let r else { throw PlacementError("no rank: pass --rank, or start under torchrun (RANK), Slurm (SLURM_PROCID) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)") }
        guard let w else { throw PlacementError("no world size: pass --world-size, or set WORLD_SIZE (SLURM_NTASKS under Slurm)") }
        guard let host, !host.isEmpty else { throw PlacementError("no coordinator: pass --coordinator HOST:PORT, or set MASTER_ADDR (under Slurm: SLURM_JOB_NODELIST)") }
        guard w >= 1, r < w else { throw PlacementError("rank \(r) is outside a world of \(w)") }
        guard let port, (1...65_535).contains(port) else { throw PlacementError("coordinator port \(port ?? 0): must be 1-65535") }
        return Placement(rank: r, worldSize: w, localRank: l, coordinatorHost: host, coordinatorPort: port, source: source)
    }

    /// "HOST:PORT", "tcp://HOST:PORT" or "HOST".
    static func parse(_ text: String) throws -> (String, Int?) {
        var t = text.hasPrefix("tcp://") ? String(text.dropFirst(6)) : text
        if t.hasPrefix("["), let close = t.firstIndex(of: "]") {  // [v6]:port
            let host = String(t[t.index(after: t.startIndex)..<close])
            t = String(t[t.index(after: close)...])
            return (host, t.hasPrefix(":") ? Int(t.dropFirst()) : nil)
        }
        guard let colon = t.lastIndex(of: ":") else { return (t, nil) }
        guard let port = Int(t[t.index(after: colon)...]) else {
            throw PlacementError("--coordinator \(text): use HOST:PORT, e.g. n2:29500")
        }
        return (String(t[..<colon]), port)
    }

    /// The first host of a Slurm node list: "n[2-4]" → "n2", "node[07,09-11],gpu1" →
    /// "node07", "a,b" → "a".
    static func firstHost(of list: String) throws -> String {
        var depth = 0
        var first = ""
        for ch in list {
            if ch == "[" { depth += 1 } else if ch == "]" { depth -= 1 }
            if ch == ",", depth == 0 { break }
            first.append(ch)
        }
        guard let open = first.firstIndex(of: "[") else {
            guard !first.isEmpty else { throw PlacementError("SLURM_JOB_NODELIST=\(list): no host in it") }
            return first
        }
        let prefix = first[..<open]
        let inside = first[first.index(after: open)...].prefix { $0 != "]" }
        let start = inside.split(separator: ",").first?.split(separator: "-").first.map(String.init) ?? ""
        guard !start.isEmpty, start.allSatisfy(\.isNumber) else { throw PlacementError("SLURM_JOB_NODELIST=\(list): cannot read its first host") }
        return prefix + start
    }
}

/// A placement that cannot be worked out: says which flag or variable to set.
struct PlacementError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
