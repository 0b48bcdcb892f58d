import Foundation

/// Log lines about strangers (refused workers, dropped frames) at a bounded rate:
/// the first 10 in full, then one line per 10 s saying how many were left out, so
/// a flood of bad frames cannot flood the log.
struct RateLimitedLog {
    private var written = 0
    private var suppressed = 0
    private var lastSummary = Date.distantPast

    mutating func note(_ line: String, now: Date = Date()) {
        if written < 10 {
            written += 1
            logLine(line)
            return
        }
        suppressed += 1
        if now.timeIntervalSince(lastSummary) >= 10 {
            logLine("\(line) (and \(suppressed - 1) more like it not shown)")
            suppressed = 0
            lastSummary = now
        }
    }
}
