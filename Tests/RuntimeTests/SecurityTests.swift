import Foundation
import XCTest
import LockstepRuntime
import LockstepTransport

/// CurveZMQ security end to end, with real processes: keys from `lockstep keygen`,
/// a secured job in network namespaces (loopback when not root) that trains to the
/// plain job's hash while strangers try to join, inject and flood, and a capture of
/// the data plane that must not show the gradients in clear.
final class SecurityTests: XCTestCase {
    func testKeygenWritesAPrivateSecretKeyAndLooseKeysAreRefused() throws {
        let dir = try TestConfigs.keys(["coordinator"])
        var st = stat()
        XCTAssertEqual(stat(dir + "/coordinator.key", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600, "the secret key must be mode 0600")
        let pub = try String(contentsOfFile: dir + "/coordinator.pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(CurveKeyPair.isKey(pub), "not a Z85 key: \(pub)")
        let again = try ChildProcess("lockstep", ["keygen", "--out", dir, "--name", "coordinator"])
        XCTAssertEqual(again.wait(seconds: 30), 1, again.text)
        XCTAssertTrue(again.text.contains("already exists"), again.text)

        let config = try TestConfigs.write()
        chmod(dir + "/coordinator.key", 0o644)
        let loose = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://0.0.0.0:0", "--workers", "1",
                                                              "--key", dir + "/coordinator.key", "--allow", dir])
        XCTAssertEqual(loose.wait(seconds: 30), 1, loose.text)
        XCTAssertTrue(loose.text.contains("readable by group or others") && loose.text.contains("chmod 600"), loose.text)
    }

    func testSecurityTableOfTheConfig() throws {
        let keys = try TestConfigs.keys(["job"])
        let config = try ConfigLoader.parse("[security]\nkey = \"\(keys)/job.key\"\nallow = \"\(keys)\"\n", name: "t.toml")
        let resolved = try XCTUnwrap(try config.security.resolve(endpoints: ["tcp://10.0.0.2:5555"], role: "coordinator"))
        XCTAssertEqual(resolved.curve.allowed, [resolved.curve.keys.publicKey])
        XCTAssertEqual(resolved.coordinatorKey, resolved.curve.keys.publicKey, "the allowlist's only key is the coordinator's")
        XCTAssertNil(try TrainingConfig().security.resolve(endpoints: ["tcp://127.0.0.1:5555", "ipc:///tmp/x"], role: "coordinator"))
        XCTAssertThrowsError(try TrainingConfig().security.resolve(endpoints: ["tcp://0.0.0.0:0"], role: "coordinator"))
        let insecure = try ConfigLoader.parse("[security]\ninsecure = true\n", name: "t.toml")
        XCTAssertNil(try insecure.security.resolve(endpoints: ["tcp://0.0.0.0:0"], role: "coordinator"))
        XCTAssertThrowsError(try ConfigLoader.parse("[security]\nkeys = \"x\"\n", name: "t.toml"))
    }

    func testAddressesOffThisMachineNeedKeysOrInsecure() throws {
        let config = try TestConfigs.write()
        let coordinator = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://0.0.0.0:0", "--workers", "1"])
        XCTAssertEqual(coordinator.wait(seconds: 30), 1, coordinator.text)
        XCTAssertTrue(coordinator.text.contains("lockstep keygen") && coordinator.text.contains("--insecure"), coordinator.text)
        let worker = try ChildProcess("lockstep-worker", ["--config", config, "--coordinator", "tcp://10.255.0.1:5555"])
        XCTAssertEqual(worker.wait(seconds: 30), 1, worker.text)
        XCTAssertTrue(worker.text.contains("needs keys"), worker.text)
        let insecure = try ChildProcess("lockstep-coordinator", ["--config", config, "--bind", "tcp://0.0.0.0:0", "--workers", "1",
                                                                 "--insecure", "--join-timeout", "1"])
        XCTAssertEqual(insecure.wait(seconds: 30), 1, insecure.text)
        XCTAssertTrue(insecure.text.contains("warning: coordinator: --insecure"), insecure.text)
        XCTAssertTrue(insecure.text.contains("only 0 of 1 workers joined"), "with --insecure it should run:\n\(insecure.text)")
    }

    /// The acceptance run: coordinator and two workers (own keys each) on three
    /// "hosts"; strangers (a) join first with a key that is not allowed, and without
    /// any key, (b) send a well-formed data frame with the job's id to a worker's data
    /// port, (c) send random bytes, (d) announce a 60 GB frame; then a third worker
    /// (allowed key) and a worker of another model come. All are refused; the job ends
    /// with the plain job's hash and no process grows by 50 MB.
    func testSecuredJobTrainsToThePlainHashWhileStrangersAreRefused() throws {
        let config = try TestConfigs.write(trainSamples: 4096, epochs: 6)
        let plain = config + ".plain.jsonl", secured = config + ".secured.jsonl"
        let reference = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--metrics", plain])
        XCTAssertEqual(reference.wait(seconds: 120), 0, reference.text)

        let keys = try TestConfigs.keys(["coordinator", "w0", "w1", "w2"])
        let outsider = try TestConfigs.keys(["stranger"])
        func key(_ name: String) -> [String] { ["--key", "\(keys)/\(name).key", "--allow", keys] }

        // Hosts: network namespaces on a bridge when root (the test reaches them over it), else loopback.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = root.appendingPathComponent("tools/netns.sh").path
        let name = "ls\(getpid() % 10_000)"
        var hosts: [String] = Array(repeating: "127.0.0.1", count: 3)
        var prefix: [[String]] = Array(repeating: [], count: 3)
        if getuid() == 0, (try? ChildProcess(path: script, ["up", "3", name], name: "netns.sh up").wait(seconds: 30)) == 0 {
            hosts = (2...4).map { "10.89.0.\($0)" }
            prefix = (2...4).map { ["/usr/sbin/ip", "netns", "exec", "\(name)\($0)"] }
        }
        defer { if getuid() == 0 { _ = try? ChildProcess(path: script, ["down", "3", name], name: "netns.sh down").wait(seconds: 30) } }
        func start(_ host: Int, _ executable: String, _ args: [String], name: String) throws -> ChildProcess {
            let exe = ChildProcess.binDirectory.appendingPathComponent(executable).path
            if prefix[host].isEmpty { return try ChildProcess(path: exe, args, name: name) }
            return try ChildProcess(path: prefix[host][0], Array(prefix[host].dropFirst()) + [exe] + args, name: name)
        }

        let port = 20000 + Int((getpid() + 23) % 20000)
        let address = "tcp://\(hosts[0]):\(port)"
        let coordinator = try start(0, "lockstep-coordinator", ["--config", config, "--bind", address, "--workers", "2",
                                                                "--metrics", secured] + key("coordinator"), name: "coordinator")
        XCTAssertTrue(coordinator.waitForOutput("waiting for 2 worker(s)", seconds: 30), coordinator.text)
        let rssBefore = try XCTUnwrap(memory("VmRSS", pid: coordinator.pid))

        // (a) Strangers join first: a key that is not allowed, and no key at all.
        let unknownKey = try start(1, "lockstep-worker", ["--config", config, "--coordinator", address, "--key", outsider + "/stranger.key",
                                                          "--allow", outsider, "--coordinator-key", keys + "/coordinator.pub"], name: "stranger")
        let noKey = try start(1, "lockstep-worker", ["--config", config, "--coordinator", address, "--insecure"], name: "keyless")
        XCTAssertEqual(unknownKey.wait(seconds: 30), 1, unknownKey.text)
        XCTAssertEqual(noKey.wait(seconds: 30), 1, noKey.text)
        XCTAssertTrue(unknownKey.text.contains("refused this worker's key"), unknownKey.text)

        let workers = try (0..<2).map { r in
            try start(r + 1, "lockstep-worker", ["--config", config, "--coordinator", address, "--coordinator-key", keys + "/coordinator.pub"]
                        + key("w\(r)"), name: "w\(r)")
        }
        XCTAssertTrue(coordinator.waitForOutput("peers:", seconds: 60), coordinator.text)
        XCTAssertTrue(workers[0].waitForOutput("data endpoint", seconds: 30), workers[0].text)
        let job = try XCTUnwrap(UInt64(try XCTUnwrap(field(after: "; job ", in: coordinator.text)), radix: 16), coordinator.text)
        let dataEndpoint = try XCTUnwrap(field(after: "data endpoint ", in: workers[0].text), workers[0].text)
        let dataPort = try XCTUnwrap(Int(dataEndpoint.split(separator: ":").last ?? ""), dataEndpoint)
        let workerRSS = workers.map { memory("VmRSS", pid: $0.pid) ?? 0 }

        // (b) Well-formed data frames with the job's id, from a stranger's key (pinning the
        // worker's real public key) and in clear.
        let context = try ZMQContext()
        let strangerKeys = try XCTUnwrap(CurveKeyPair(secretKey: try keyText(outsider + "/stranger.key")))
        let workerKey = try keyText(keys + "/w0.pub")
        var injectors: [ZMQSocket] = []
        for security in [CurveSecurity(keys: strangerKeys, allowed: []), nil] {
            let push = try ZMQSocket(context: context, kind: .push)
            if let security { try security.makeClient(push, serverKey: workerKey) }
            try push.connect(dataEndpoint)
            for tag in 0..<64 {
                let frame = WireFrame(kind: .data, jobID: job, step: UInt64(tag), senderRank: 1,
                                      payload: [UInt8](repeating: 0, count: 4096)).encoded()
                _ = try push.send(frame, dontWait: true)
            }
            injectors.append(push)
        }
        // (c) random bytes and (d) a 60 GB frame, to the coordinator and to a worker's data port.
        let floods = try [port, dataPort].enumerated().map { index, target in
            try ChildProcess(path: "/usr/bin/python3", ["-c", """
                import os, socket, struct
                host = "\(index == 0 ? hosts[0] : hosts[1])"
                junk = socket.create_connection((host, \(target)))
                junk.sendall(os.urandom(1 << 16))
                s = socket.create_connection((host, \(target)))
                s.sendall(b"\\xff" + b"\\0" * 8 + b"\\x7f" + bytes([3, 0]) + b"CURVE" + b"\\0" * 15 + b"\\0" + b"\\0" * 31)
                s.sendall(bytes([0x02]) + struct.pack(">Q", 60 * 10**9))
                try:
                    for _ in range(2000): s.sendall(b"\\0" * 65536)
                    print("streamed 128 MB")
                except OSError:
                    print("disconnected")
                """], name: "flood \(target)")
        }
        for f in floods { _ = f.waitForExit(seconds: 60); f.terminate() }

        // A third worker with an allowed key, and one of another model.
        let third = try start(2, "lockstep-worker", ["--config", config, "--coordinator", address, "--coordinator-key", keys + "/coordinator.pub"]
                                + key("w2"), name: "third")
        let other = try start(2, "lockstep-worker", ["--config", try TestConfigs.write(layers: "\"linear 8\", \"relu\", \"linear 4\""),
                                                     "--coordinator", address, "--coordinator-key", keys + "/coordinator.pub"] + key("w2"),
                              name: "other model")
        XCTAssertEqual(third.wait(seconds: 30), 1, third.text)
        XCTAssertEqual(other.wait(seconds: 30), 1, other.text)
        XCTAssertTrue(third.text.contains("already has its 2 workers"), third.text)
        XCTAssertTrue(other.text.contains("differs from the coordinator's"), other.text)

        let peaks = [memory("VmHWM", pid: coordinator.pid)] + workers.map { memory("VmHWM", pid: $0.pid) }
        XCTAssertEqual(coordinator.wait(seconds: 120), 0, coordinator.text)
        for w in workers { XCTAssertEqual(w.wait(seconds: 30), 0, w.text) }
        for (index, (peak, before)) in zip(peaks, [rssBefore] + workerRSS).enumerated() {
            if let peak { XCTAssertLessThan(peak - before, 50 << 10, "process \(index) grew from \(before) KiB to a peak of \(peak) KiB") }
        }
        let final = try XCTUnwrap(try TestConfigs.metrics(secured).last { $0["event"] as? String == "final" }, coordinator.text)
        let expected = try XCTUnwrap(try TestConfigs.metrics(plain).last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["parameter_hash"] as? String, expected["parameter_hash"] as? String, coordinator.text)
        XCTAssertTrue(coordinator.text.contains("refused a connection from") && coordinator.text.contains("not in the allowlist"),
                      "the coordinator should log the refused key:\n\(coordinator.text)")
        XCTAssertTrue(workers[0].text.contains("refused a connection from"), "rank 0 should log the refused injector:\n\(workers[0].text)")
        XCTAssertFalse(workers.contains { $0.text.contains("rejected") }, "no stranger's frame may reach a worker's arithmetic")
        for f in floods { XCTAssertTrue(f.text.contains("disconnected"), "the 60 GB frame should be cut off:\n\(f.text)") }
        withExtendedLifetime(injectors) {}
    }

    /// A capture of loopback traffic (AF_PACKET, root) while two transports exchange a
    /// buffer of a known float pattern: in clear the pattern is on the wire (so the
    /// capture works), with CurveZMQ it is not.
    func testCapturedDataPlaneShowsNoPayloadInClear() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to capture packets (CI runs as root)") }
        let pattern: [Float] = (0..<4096).map { 1.0 + Float($0 % 97) * 0.0078125 }
        let needle = pattern[10..<14].withUnsafeBytes { Array($0) }  // 16 bytes of the payload
        XCTAssertTrue(try capture(pattern, secure: false).contains(needle), "the capture should see the plain payload")
        XCTAssertFalse(try capture(pattern, secure: true).contains(needle), "the encrypted payload must not appear in clear")
    }

    private func capture(_ pattern: [Float], secure: Bool) throws -> [UInt8] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-capture-\(UUID().uuidString)").path
        let sniffer = try ChildProcess(path: "/usr/bin/python3", ["-c", """
            import socket, sys, time
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
            s.bind(("lo", 0)); s.settimeout(0.2)
            print("ready", flush=True)
            out, end = open(sys.argv[1], "wb"), time.time() + 4
            while time.time() < end:
                try: out.write(s.recv(1 << 16))
                except socket.timeout: pass
            out.close(); print("captured", flush=True)
            """, file], name: "capture")
        XCTAssertTrue(sniffer.waitForOutput("ready", seconds: 20), sniffer.text)
        let contexts = try (0..<2).map { _ in try ZMQContext() }
        let keys = try CurveKeyPair.generate()
        let security = secure ? CurveSecurity(keys: keys, allowed: [keys.publicKey]) : nil
        let transports = try (0..<2).map {
            try ZMQPeerTransport(rank: $0, worldSize: 2, jobID: 7, bindEndpoint: "tcp://127.0.0.1:0", context: contexts[$0], security: security)
        }
        for t in transports {
            try t.connect(peers: transports.map(\.boundEndpoint), keys: secure ? [keys.publicKey, keys.publicKey] : nil)
        }
        var received = [Float](repeating: 0, count: pattern.count)
        try pattern.withUnsafeBytes { try transports[0].send(to: 1, tag: 1, $0) }
        try received.withUnsafeMutableBytes { try transports[1].receive(from: 0, tag: 1, into: $0) }
        XCTAssertEqual(received, pattern)
        for t in transports { t.close() }
        XCTAssertEqual(sniffer.wait(seconds: 30), 0, sniffer.text)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    }

    private func keyText(_ path: String) throws -> String {
        try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The word after `marker` in `text`.
    private func field(after marker: String, in text: String) -> String? {
        guard let range = text.range(of: marker) else { return nil }
        return text[range.upperBound...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == ";" }).first.map(String.init)
    }

    /// A `/proc/PID/status` figure in KiB (VmRSS, VmHWM), nil once the process is gone.
    private func memory(_ field: String, pid: pid_t) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in these bytes.
    func contains(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count, let first = needle.first else { return false }
        var i = 0
        while i <= count - needle.count {
            if self[i] == first, Array(self[i..<i + needle.count]) == needle { return true }
            i += 1
        }
        return false
    }
}
