import Foundation
import LockstepRuntime
import XCTest

/// Runs the real executables (built next to the test bundle) as child processes,
/// with a deadline on every wait, and collects their output.
final class ChildProcess {
    let process = Process()
    private let outPipe = Pipe()
    private let output = OutputBox()
    private var reader: PipeReader?
    let name: String

    static var binDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    convenience init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], name: String? = nil) throws {
        let exe = ChildProcess.binDirectory.appendingPathComponent(executable)
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw XCTSkip("\(exe.path) is not built; run `swift build -c release` before the tests")
        }
        try self.init(path: exe.path, arguments, environment: environment, name: name ?? executable)
    }

    /// Runs the executable at `path` (a script, a tool).
    init(path: String, _ arguments: [String], environment: [String: String] = [:], name: String) throws {
        self.name = name
        process.executableURL = URL(fileURLWithPath: path)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        process.arguments = arguments
        process.standardOutput = outPipe
        process.standardError = outPipe
        try process.run()
        let output = self.output
        reader = PipeReader(outPipe.fileHandleForReading, onData: { output.append($0) })
    }

    var text: String { output.text }

    /// Waits for exit; kills the process and fails if it outlives `seconds`.
    @discardableResult
    func wait(seconds: Double, file: StaticString = #filePath, line: UInt = #line) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTFail("\(name) still running after \(seconds) s; killed. Output:\n\(text)", file: file, line: line)
            return nil
        }
        reader?.waitForEnd(seconds: 2)  // the rest of the output
        return process.terminationStatus
    }

    /// Waits until the output contains `needle`, or `seconds` pass.
    func waitForOutput(_ needle: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if text.contains(needle) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }

    func terminate() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }
}

enum TestConfigs {
    /// A small synthetic job: a few seconds per run on two cores.
    static func write(layers: String = "\"linear 32\", \"batchnorm\", \"relu\", \"linear 4\"", trainSamples: Int = 2048,
                      epochs: Int = 2, extra: String = "") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("job.toml").path
        let text = """
        [model]
        layers = [\(layers)]
        [data]
        dataset = "synthetic"
        synthetic_train = \(trainSamples)
        synthetic_test = 256
        synthetic_features = 20
        synthetic_classes = 4
        [train]
        epochs = \(epochs)
        batch_size = 16
        threads = 1
        [optimizer]
        name = "momentum"
        lr = 0.05
        [distributed]
        timeout_seconds = 4
        heartbeat_seconds = 0.5
        \(extra)
        """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func metrics(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

/// Output collected from a child process, read from the reader's thread.
final class OutputBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}
