import Foundation
import XCTest

/// `deploy/k8s/`, the Kubernetes Indexed Job of three `lockstep run` pods under a
/// headless Service: its manifests validate offline (`tools/validate_k8s.sh`), and the
/// pods' commands and environment, read from `deploy/k8s/job.yaml` and run in three
/// network namespaces that carry the pods' host and DNS names, train to the parameter
/// hash of `lockstep train --workers 3` on one host.
final class KubernetesTests: XCTestCase {
    private var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    func testManifestsValidateOffline() throws {
        let script = root.appendingPathComponent("tools/validate_k8s.sh").path
        let check = try ChildProcess(path: "/bin/bash", [script], name: "validate_k8s.sh")
        let status = check.wait(seconds: 300)
        if status == 77 { throw XCTSkip("kubernetes-validate cannot be installed here (python3 venv, package index): \(check.text)") }
        XCTAssertEqual(status, 0, check.text)
    }

    /// Each pod as Kubernetes starts it: a network namespace as its host (the address of
    /// rank I is 10.89.0.(I+2)), host name `lockstep-I`, a hosts file in place of the
    /// cluster DNS for `lockstep-I.lockstep`, only the manifest's environment plus the
    /// JOB_COMPLETION_INDEX the Job controller adds, then the init container's command
    /// and the main container's. Rank 0 starts last, so the others wait for it in the
    /// init step, as when rank 0's node is still pulling the image. The manifest's
    /// paths are replaced (config, metrics) and `--max-steps 12` added to stay fast.
    func testIndexedJobEnvironmentInNamespacesMatchesLocalHash() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to create network namespaces (CI runs as root)") }
        let job = try JobManifest(path: root.appendingPathComponent("deploy/k8s/job.yaml").path)
        let world = job.completions
        XCTAssertEqual(job.environment["WORLD_SIZE"], String(world), "WORLD_SIZE should be the Job's completions")
        XCTAssertEqual(job.environment["MASTER_ADDR"], "\(job.name)-0.\(job.subdomain)", "MASTER_ADDR should be the pod of index 0")
        let bin = ChildProcess.binDirectory
        guard FileManager.default.isExecutableFile(atPath: bin.appendingPathComponent("lockstep").path) else {
            throw XCTSkip("\(bin.path)/lockstep is not built; run `swift build -c release` before the tests")
        }

        let script = root.appendingPathComponent("tools/netns.sh").path
        let name = "lk\(getpid() % 10_000)"
        let up = try ChildProcess(path: script, ["up", String(world), name], name: "netns.sh up")
        guard up.wait(seconds: 30) == 0 else { throw XCTSkip("cannot create network namespaces here: \(up.text)") }
        defer { _ = try? ChildProcess(path: script, ["down", String(world), name], name: "netns.sh down").wait(seconds: 30) }

        // The pods' DNS names: `ip netns exec NS` puts /etc/netns/NS/hosts in place of
        // /etc/hosts for what it runs, so the host's own /etc/hosts stays as it is.
        var hosts = "127.0.0.1 localhost\n"
        for rank in 0..<world { hosts += "10.89.0.\(rank + 2) \(job.name)-\(rank).\(job.subdomain) \(job.name)-\(rank)\n" }
        let netnsEtc = "/etc/netns"
        let hadNetnsEtc = FileManager.default.fileExists(atPath: netnsEtc)
        defer {
            for rank in 0..<world { try? FileManager.default.removeItem(atPath: "\(netnsEtc)/\(name)\(rank + 2)") }
            if !hadNetnsEtc, (try? FileManager.default.contentsOfDirectory(atPath: netnsEtc))?.isEmpty == true {
                try? FileManager.default.removeItem(atPath: netnsEtc)
            }
        }
        for rank in 0..<world {
            let dir = "\(netnsEtc)/\(name)\(rank + 2)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try hosts.write(toFile: dir + "/hosts", atomically: true, encoding: .utf8)
        }

        let config = try TestConfigs.write()
        let reference = try ChildProcess("lockstep", ["train", "--config", config, "--workers", String(world), "--max-steps", "12",
                                                      "--metrics", config + ".ref.jsonl"])
        XCTAssertEqual(reference.wait(seconds: 90), 0, reference.text)

        // The Secret (group-readable, as a Secret volume is) and each pod's emptyDir for the keys.
        let secret = try TestConfigs.keys()
        for file in ["job.key", "job.pub"] { chmod(secret + "/" + file, 0o440) }
        func inPod(_ words: [String], rank: Int) -> [String] {
            words.map {
                $0.replacingOccurrences(of: "/etc/lockstep/secret", with: secret)
                    .replacingOccurrences(of: "/var/run/lockstep/keys", with: secret + "/pod\(rank)")
            }
        }
        for rank in 0..<world {
            try FileManager.default.createDirectory(atPath: secret + "/pod\(rank)", withIntermediateDirectories: true)
        }
        var command = job.command
        let configAt = try XCTUnwrap(command.firstIndex(of: "--config"), "job.yaml's command has no --config")
        let metricsAt = try XCTUnwrap(command.firstIndex(of: "--metrics"), "job.yaml's command has no --metrics")
        command[configAt + 1] = config
        command[metricsAt + 1] = config + ".k8s.jsonl"
        command += ["--max-steps", "12"]
        // A container's PATH, with the built executables first (the image has them in /usr/local/bin).
        let path = bin.path + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        let environment = ["PATH=\(path)"] + job.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        // bash -c: set the host name ($0), run the init container's command (the $1 words
        // after it), then exec the main container's (the rest).
        let pod = "hostname \"$0\" && \"${@:2:$1}\" && shift $(( $1 + 1 )) && exec \"$@\""
        var tasks: [Int: ChildProcess] = [:]
        for rank in (0..<world).reversed() {
            var args = ["netns", "exec", "\(name)\(rank + 2)", "env", "-i"]
            args += environment
            args += ["JOB_COMPLETION_INDEX=\(rank)", "unshare", "--uts", "/bin/bash", "-c", pod, "\(job.name)-\(rank)",
                     String(job.initCommand.count)]
            args += inPod(job.initCommand, rank: rank)
            args += inPod(command, rank: rank)
            tasks[rank] = try ChildProcess(path: "/usr/sbin/ip", args, name: "pod \(job.name)-\(rank)")
            if rank != 0 { Thread.sleep(forTimeInterval: 0.5) }
        }
        for rank in 0..<world {
            let t = try XCTUnwrap(tasks[rank])
            XCTAssertEqual(t.wait(seconds: 120), 0, t.text)
            let coordinator = "\(job.environment["MASTER_ADDR"] ?? "?"):\(job.environment["MASTER_PORT"] ?? "29500")"
            XCTAssertTrue(t.text.contains("rank \(rank) of \(world) (from kubernetes); coordinator tcp://\(coordinator)"),
                          "pod \(rank) should take its place from the Indexed Job's environment:\n\(t.text)")
            XCTAssertTrue(t.text.contains("\(job.name)-\(rank) data endpoint tcp://10.89.0.\(rank + 2):"),
                          "pod \(rank) should advertise its own address under its own host name:\n\(t.text)")
        }
        let final = try XCTUnwrap(try TestConfigs.metrics(config + ".k8s.jsonl").last { $0["event"] as? String == "final" },
                                  "no final line in \(config).k8s.jsonl")
        let expected = try XCTUnwrap(try TestConfigs.metrics(config + ".ref.jsonl").last { $0["event"] as? String == "final" })
        XCTAssertEqual(final["parameters_identical"] as? Bool, true)
        XCTAssertEqual(final["parameter_hash"] as? String, expected["parameter_hash"] as? String)
    }
}

/// What the test needs of deploy/k8s/job.yaml, read line by line (no YAML library):
/// the manifest keeps `command:` as one JSON-compatible flow sequence and each env
/// entry as one `- {name: X, value: "Y"}` line, which tools/validate_k8s.sh checks
/// as YAML against the Kubernetes schema.
private struct JobManifest {
    var name = "", subdomain = "", completions = 0
    var environment: [String: String] = [:]
    var initCommand: [String] = [], command: [String] = []

    init(path: String) throws {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }.filter { !$0.hasPrefix("#") }
        func value(_ key: String) -> String? {
            lines.first { $0.hasPrefix(key + ": ") }.map {
                String($0.dropFirst(key.count + 2).split(separator: "#").first ?? "").trimmingCharacters(in: .whitespaces)
            }
        }
        name = try XCTUnwrap(value("name"), "no metadata name in \(path)")
        subdomain = try XCTUnwrap(value("subdomain"), "no subdomain in \(path)")
        completions = try XCTUnwrap(value("completions").flatMap { Int($0) }, "no completions in \(path)")
        for line in lines {
            if line.hasPrefix("command: [") {
                let words = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.dropFirst("command: ".count).utf8)) as? [String],
                                          "cannot read \(line)")
                if words.starts(with: ["lockstep", "run"]) { command = words } else { initCommand = words }
            } else if line.hasPrefix("- {name: "), let comma = line.range(of: ", value: \""), line.hasSuffix("\"}") {
                let key = String(line[line.index(line.startIndex, offsetBy: "- {name: ".count)..<comma.lowerBound])
                let text = String(line[comma.upperBound..<line.index(line.endIndex, offsetBy: -2)])
                XCTAssertTrue(environment[key] == nil || environment[key] == text, "\(key) has two values in \(path)")
                environment[key] = text
            }
        }
        XCTAssertFalse(command.isEmpty, "no `lockstep run` command in \(path)")
        XCTAssertFalse(initCommand.isEmpty, "no init container command in \(path)")
    }
}
