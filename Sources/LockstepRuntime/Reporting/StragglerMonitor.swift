import Foundation

/// The coordinator's view of where each rank's step time goes (`RankTiming`
/// reports, about two a second from every rank), and the rank that holds the
/// others back: one whose compute, or communication, time per step exceeds the
/// median of the other ranks' by `factor` in `window` reports in a row is named
/// once (again only after it has recovered).
struct StragglerMonitor {
    let factor: Double
    static let window = 4
    private(set) var latest: [Int: RankTiming] = [:]
    private var streak: [Int: Int] = [:]
    private var named: Set<Int> = []

    init(factor: Double) { self.factor = factor }

    /// Records `t` from the rank described by `label`; returns the warning when it is named.
    mutating func record(_ t: RankTiming, label: String) -> String? {
        guard t.steps > 0 else { return nil }
        latest[t.rank] = t
        let others = latest.values.filter { $0.rank != t.rank }
        guard !others.isEmpty else { return nil }
        var slow: (phase: String, mine: Double, median: Double)?
        if let excess = excess(t, \.computeSeconds) {
            slow = ("compute", t.computeSeconds, excess)
        } else if !latest.values.contains(where: { excess($0, \.computeSeconds) != nil }),
                  let excess = excess(t, \.communicationSeconds) {
            // A rank stalled in compute stretches its ring neighbours' transfers,
            // so communication is judged only while no rank is slow to compute.
            slow = ("communication", t.communicationSeconds, excess)
        }
        guard let slow else {
            streak[t.rank] = 0
            named.remove(t.rank)
            return nil
        }
        streak[t.rank, default: 0] += 1
        guard streak[t.rank]! >= Self.window, !named.contains(t.rank) else { return nil }
        named.insert(t.rank)
        return String(format: "%@ is a straggler: %@ %.1f ms per step, %.1f× the median %.1f ms of the other %d rank(s), for %d reports in a row; the others wait %.1f ms per step for it",
                      label, slow.phase, 1000 * slow.mine, slow.mine / slow.median, 1000 * slow.median, others.count, Self.window,
                      1000 * Self.median(others.map(\.waitSeconds)))
    }

    /// The median of the other ranks' `value` when `t`'s exceeds it by `factor`.
    private func excess(_ t: RankTiming, _ value: (RankTiming) -> Double) -> Double? {
        let median = Self.median(latest.values.filter { $0.rank != t.rank }.map(value))
        return median > 0 && value(t) > factor * median ? median : nil
    }

    /// "step ms by rank 0: 12.1 (compute 8.0, wait 3.9, comm 4.0) · 1: …" for the console.
    var summary: String {
        latest.keys.sorted().map { r in
            let t = latest[r]!
            return String(format: "r%d %.1f/%.1f/%.1f", r, 1000 * t.computeSeconds, 1000 * t.waitSeconds, 1000 * t.communicationSeconds)
        }.joined(separator: " ")
    }

    /// Prometheus figures, one labelled sample per rank.
    var figures: [String: Double] {
        var out: [String: Double] = [:]
        for (r, t) in latest {
            out["rank_step_seconds{rank=\"\(r)\"}"] = t.stepSeconds
            out["rank_compute_seconds{rank=\"\(r)\"}"] = t.computeSeconds
            out["rank_wait_seconds{rank=\"\(r)\"}"] = t.waitSeconds
            out["rank_communication_seconds{rank=\"\(r)\"}"] = t.communicationSeconds
        }
        return out
    }

    /// Fields of a metrics line: each a list by rank, in milliseconds per step.
    var metricsFields: [String: Any] {
        guard !latest.isEmpty else { return [:] }
        let ranks = latest.keys.sorted()
        let ms = { (value: (RankTiming) -> Double) in ranks.map { 1000 * value(latest[$0]!) } }
        return ["rank_step_ms": ms(\.stepSeconds), "rank_compute_ms": ms(\.computeSeconds), "rank_wait_ms": ms(\.waitSeconds),
                "rank_communication_ms": ms(\.communicationSeconds), "stragglers": named.sorted()]
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
