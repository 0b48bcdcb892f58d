@testable import LockstepRuntime
import XCTest

/// The coordinator's straggler rule on hand-made timing reports.
final class StragglerMonitorTests: XCTestCase {
    func timing(_ rank: Int, compute: Double, communication: Double) -> RankTiming {
        RankTiming(rank: rank, steps: 10, stepSeconds: compute + communication, computeSeconds: compute, waitSeconds: 0,
                   communicationSeconds: communication)
    }

    /// Rank 2 stalls in compute and stretches rank 1's transfers: only rank 2 is named,
    /// after `window` reports in a row, and only once.
    func testAComputeStallIsBlamedOnItsRankNotOnItsNeighbour() {
        var monitor = StragglerMonitor(factor: 1.5)
        var warnings: [String] = []
        for _ in 0..<(2 * StragglerMonitor.window) {
            for t in [timing(0, compute: 0.005, communication: 0.005), timing(1, compute: 0.005, communication: 0.012),
                      timing(2, compute: 0.020, communication: 0.005)] {
                if let w = monitor.record(t, label: "rank \(t.rank)") { warnings.append(w) }
            }
        }
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings.first?.hasPrefix("rank 2 is a straggler: compute") ?? false, "\(warnings)")
    }

    /// With every rank computing alike, a rank slow to communicate is named for it.
    func testSlowCommunicationAloneIsNamed() {
        var monitor = StragglerMonitor(factor: 1.5)
        var warnings: [String] = []
        for _ in 0..<StragglerMonitor.window {
            for t in [timing(0, compute: 0.005, communication: 0.005), timing(1, compute: 0.005, communication: 0.012),
                      timing(2, compute: 0.005, communication: 0.005)] {
                if let w = monitor.record(t, label: "rank \(t.rank)") { warnings.append(w) }
            }
        }
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings.first?.hasPrefix("rank 1 is a straggler: communication") ?? false, "\(warnings)")
    }
}
