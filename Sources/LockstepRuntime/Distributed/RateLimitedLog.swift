import Foundation
import Synchronization

/// Log lines about strangers (refused connections and workers, dropped frames) at
/// a bounded rate: the first 10 in full, then one line per 10 s saying how many
/// were left out, so a flood of bad frames cannot flood the log. Shared by the
/// thread that owns a socket and its ZAP handler's thread.
final class RateLimitedLog: Sendable {
    private struct State {
        var written = 0
        var suppressed = 0
        var lastSummary = Date.distantPast
    }

    private let state = Mutex(State())

    func note(_ line: String, now: Date = Date()) {
        let text: String? = state.withLock { s in
            if s.written < 10 {
                s.written += 1
                return line
            }
            s.suppressed += 1
            guard now.timeIntervalSince(s.lastSummary) >= 10 else { return nil }
            defer { (s.suppressed, s.lastSummary) = (0, now) }
            return "\(line) (and \(s.suppressed - 1) more like it not shown)"
        }
        if let text { logLine(text) }
    }
}
