import Foundation
import LockstepRuntime
import XCTest

/// `PipeReader`: a child's whole output, end of file when it exits, and many children
/// torn down at once (the pattern that crashed libdispatch with `readabilityHandler`).
final class PipeReaderTests: XCTestCase {
    private func spawn(_ script: String) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        return (p, pipe)
    }

    func testReadsEverythingAndEndsWhenTheChildExits() throws {
        // 200 KB in several writes: more than one pipe buffer and one read chunk.
        let (p, pipe) = try spawn("i=0; while [ $i -lt 2000 ]; do printf '%099d\\n' $i; i=$((i+1)); done")
        let output = OutputBox()
        let reader = PipeReader(pipe.fileHandleForReading, onData: { output.append($0) })
        XCTAssertTrue(reader.waitForEnd(seconds: 30), "no end of file after the child exited")
        XCTAssertTrue(reader.waitForEnd(seconds: 0), "a second wait after the end must see it too")
        p.waitUntilExit()
        let lines = output.text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2000)
        XCTAssertEqual(lines.first.map(String.init), String(repeating: "0", count: 99))
        XCTAssertEqual(lines.last.map(String.init), String(repeating: "0", count: 95) + "1999")
    }

    func testWaitForEndTimesOutWhileTheChildRuns() throws {
        let (p, pipe) = try spawn("printf start; exec sleep 5")
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        let reader = PipeReader(pipe.fileHandleForReading, onData: { _ in })
        XCTAssertFalse(reader.waitForEnd(seconds: 0.2))
    }

    func testManyChildrenAtOnce() throws {
        let ended = DispatchSemaphore(value: 0)
        let total = OutputBox()
        var children: [Process] = []
        for i in 0..<40 {
            let (p, pipe) = try spawn("echo child \(i)")
            children.append(p)
            _ = PipeReader(pipe.fileHandleForReading, onData: { total.append($0) }, onEnd: { ended.signal() })
        }
        for _ in children { XCTAssertEqual(ended.wait(timeout: .now() + 30), .success) }
        for p in children { p.waitUntilExit() }
        XCTAssertEqual(total.text.split(separator: "\n").count, 40)
    }
}
