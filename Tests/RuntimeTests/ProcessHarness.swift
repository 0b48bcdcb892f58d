import Foundation
import LockstepRuntime
import XCTest

/// Runs the real executables (built next to the test bundle) and tools as child
/// processes, with a deadline on every wait, and collects their output.
///
/// Spawned with `posix_spawn` and reaped with `waitpid`, not with Foundation's
/// `Process`: on Linux, `Process` sees a child's exit only when a socket it hands the
/// child is closed, so a daemon that the child starts (munged, slurmctld) and that keeps
/// that socket keeps `isRunning` true and `waitUntilExit` blocked forever. Here the
/// child gets standard input from /dev/null, its output on one pipe and no other
/// descriptor, and runs in a process group of its own, which a timeout kills whole.
final class ChildProcess {
    let pid: pid_t
    private let output = OutputBox()
    private let reader: PipeReader
    private var status: Int32?
    /// After exit: the peak resident memory of the child or of the largest process it
    /// waited for (Linux's `wait4`), in KiB.
    private(set) var peakKiB = 0
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

    /// Runs the executable at `path` (a script, a tool), in `directory` when given.
    init(path: String, _ arguments: [String], environment: [String: String] = [:], directory: String? = nil,
         name: String) throws {
        self.name = name
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        fds.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }  // the dup2 copies in the child stay open
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        if let directory { _ = Self.addChangeDirectory?(&actions, directory) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let env = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }.map { "\($0.key)=\($0.value)" }
        let argv = [path] + arguments
        var child: pid_t = 0
        let result = Self.withCStrings(argv) { cArgv in
            Self.withCStrings(env) { cEnv in posix_spawn(&child, path, &actions, &attributes, cArgv, cEnv) }
        }
        close(fds[1])
        guard result == 0 else {
            close(fds[0])
            throw POSIXError(.init(rawValue: result) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: "cannot start \(path)"])
        }
        pid = child
        let output = self.output
        reader = PipeReader(FileHandle(fileDescriptor: fds[0], closeOnDealloc: true), onData: { output.append($0) })
    }

    var text: String { output.text }

    /// Waits for exit; kills the process group and fails if it outlives `seconds`.
    @discardableResult
    func wait(seconds: Double, file: StaticString = #filePath, line: UInt = #line) -> Int32? {
        guard let status = waitForExit(seconds: seconds) else {
            terminate()
            XCTFail("\(name) still running after \(seconds) s; killed. Output:\n\(text)", file: file, line: line)
            return nil
        }
        return status
    }

    /// The exit status (128 + signal for a killed child), or nil while it runs after `seconds`.
    func waitForExit(seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while !reap() && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        guard let status else { return nil }
        reader.waitForEnd(seconds: 2)  // the rest of the output
        return status
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

    /// Kills the child's process group and reaps the child.
    func terminate() {
        guard status == nil else { return }
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        status = 128 + SIGKILL
    }

    deinit { terminate() }

    /// Whether the child has exited (reaping it, and keeping its status, the first time).
    private func reap() -> Bool {
        if status != nil { return true }
        var raw: Int32 = 0
        var usage = rusage()
        guard wait4(pid, &raw, WNOHANG, &usage) == pid else { return false }
        peakKiB = usage.ru_maxrss
        let signal = raw & 0x7f
        status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
        return true
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later) and
    /// `…_addchdir_np` (2.29), which the Glibc module does not import: the child keeps no
    /// descriptor of the test process, and starts in the directory asked for.
    private static let addCloseFrom = glibc("posix_spawn_file_actions_addclosefrom_np",
                                            as: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    private static let addChangeDirectory = glibc("posix_spawn_file_actions_addchdir_np",
                                                  as: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32).self)

    private static func glibc<F>(_ name: String, as type: F.Type) -> F? {
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), name).map { unsafeBitCast($0, to: type) }
    }

    private static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { pointers.forEach { free($0) } }
        return body(pointers)
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

    /// Key pairs from `lockstep keygen` (`DIR/NAME.key`, `DIR/NAME.pub`) in a fresh
    /// directory, which is also the allowlist (`--allow DIR` reads only the .pub files).
    static func keys(_ names: [String] = ["job"]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-keys-\(UUID().uuidString)").path
        for name in names {
            let keygen = try ChildProcess("lockstep", ["keygen", "--out", dir, "--name", name])
            guard keygen.wait(seconds: 30) == 0 else { throw LockstepTestError("lockstep keygen failed: \(keygen.text)") }
        }
        return dir
    }

    /// `.build/test-venv/bin/python` with `packages` installed from the package index
    /// (kept between runs); skips the test when they cannot be installed.
    static func python(with packages: [String: String]) throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let venv = root.appendingPathComponent(".build/test-venv").path
        let imports = "import " + packages.keys.sorted().joined(separator: ", ")
        let ready = FileManager.default.fileExists(atPath: venv + "/bin/python")
            && (try? ChildProcess(path: venv + "/bin/python", ["-c", imports], name: "python").wait(seconds: 60)) == 0
        if !ready {
            let install = try ChildProcess(path: "/bin/bash", ["-c", "python3 -m venv \(venv) && \(venv)/bin/pip install -q \(packages.values.sorted().joined(separator: " "))"],
                                           name: "pip install")
            guard install.wait(seconds: 300) == 0 else { throw XCTSkip("cannot install \(packages.values.sorted()) here: \(install.text)") }
        }
        return venv + "/bin/python"
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

struct LockstepTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
