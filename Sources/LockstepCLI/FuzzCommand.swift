import ArgumentParser
import Foundation
import LockstepRuntime

/// `lockstep fuzz`: the decoders strangers and files reach, fed seeded mutations of
/// a corpus (a mutation fuzzer of our own: this toolchain's `-sanitize=fuzzer`
/// needs a libFuzzer build of every module). A trap ends the process, and the input
/// that caused it is in `--artifacts`.
public struct FuzzCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Fuzz the wire-frame, control-message, config, IDX and safetensors decoders with mutations of a seed corpus.")

    public init() {}

    @Argument(help: "Targets: wireframe, control, config, idx, safetensors (default: all).") public var targets: [String] = []
    @Option(help: "Seconds per target.") public var seconds: Double?
    @Option(help: "Inputs per target (default: 20000 unless --seconds is given).") public var inputs: Int?
    @Option(help: "Corpus directory, one subdirectory per target.") public var corpus = "Tests/Fuzz/corpus"
    @Option(parsing: .unconditional, help: "Mutation seed (the same seed tries the same inputs).") public var seed: UInt64 = 1
    @Option(help: "Directory for the input being tried (after a crash: the input that crashed it).") public var artifacts: String?
    @Option(name: .customLong("write-seeds"), help: "Write the built-in seed inputs into this corpus directory and exit.")
    public var writeSeeds: String?

    public func run() throws {
        try CommandLineErrors.report {
            let chosen = try targets.isEmpty ? FuzzTarget.allCases : targets.map { name in
                guard let t = FuzzTarget(rawValue: name) else {
                    throw LockstepError("fuzz: unknown target \(name); use \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return t
            }
            let scratch = NSTemporaryDirectory() + "lockstep-fuzz-\(getpid())"
            defer { unlink(scratch) }
            if let writeSeeds {
                for target in chosen {
                    let dir = writeSeeds + "/" + target.rawValue
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    for (i, input) in try target.seeds(scratch: scratch).enumerated() {
                        FileManager.default.createFile(atPath: "\(dir)/seed-\(i)", contents: Data(input))
                    }
                }
                return
            }
            if let seconds, seconds <= 0 { throw LockstepError("--seconds \(seconds): must be positive") }
            if let inputs, inputs < 1 { throw LockstepError("--inputs \(inputs): must be at least 1") }
            if let artifacts { try FileManager.default.createDirectory(atPath: artifacts, withIntermediateDirectories: true) }
            var total = 0
            for target in chosen {
                var runner = FuzzRunner(target: target, corpus: try FuzzRunner.corpus(target, in: corpus), seed: seed)
                runner.lastInputPath = artifacts.map { "\($0)/\(target.rawValue)-current" }
                let outcome = runner.run(inputs: inputs ?? (seconds == nil ? 20_000 : .max), seconds: seconds ?? .infinity, scratch: scratch)
                total += outcome.inputs
                print(String(format: "fuzz %@: %d inputs in %.1f s, %d accepted as valid, 0 crashes", target.rawValue,
                             outcome.inputs, outcome.seconds, outcome.accepted))
            }
            print("fuzz: \(total) inputs, 0 crashes, 0 traps")
        }
    }
}
