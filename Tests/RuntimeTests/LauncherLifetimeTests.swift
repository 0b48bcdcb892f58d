import Foundation
import XCTest

/// `lockstep train --workers N` killed with SIGKILL (no chance to clean up): its
/// coordinator and workers notice that their launcher is gone and stop within
/// seconds, long before the job's deadline (here 600 s).
final class LauncherLifetimeTests: XCTestCase {
    func testKilledLauncherLeavesNoProcessBehind() throws {
        let config = try TestConfigs.write(trainSamples: 200_000, epochs: 5)
        let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--timeout", "600"])
        defer { run.terminate() }
        XCTAssertTrue(run.waitForOutput("epoch 1 step", seconds: 60), run.text)
        let children = childProcesses(of: run.pid)
        XCTAssertEqual(children.count, 3, "a coordinator and two workers: \(children)")
        kill(run.pid, SIGKILL)
        let killedAt = Date()
        while Date().timeIntervalSince(killedAt) < 10, children.contains(where: isRunning) { Thread.sleep(forTimeInterval: 0.1) }
        let left = children.filter(isRunning)
        XCTAssertEqual(left, [], "still running \(Date().timeIntervalSince(killedAt)) s after the launcher was killed")
        for pid in left { kill(pid, SIGKILL) }
    }

    /// Pids whose parent is `parent` (from /proc/PID/stat).
    private func childProcesses(of parent: pid_t) -> [pid_t] {
        let all = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return all.compactMap { Int32($0) }.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == parent
        }
    }

    /// Alive and not a zombie.
    private func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }
}
