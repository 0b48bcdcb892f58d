import Foundation
import LockstepData
import LockstepTransport

/// The decoders that read what strangers and files hand Lockstep, as fuzz targets:
/// each takes arbitrary bytes and must return or throw, never trap, hang or
/// allocate what the bytes claim. `lockstep fuzz` and the test suite drive them.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A data or control frame as it arrives on a socket (`WireFrame.decode`).
    case wireframe
    /// A control message (frame, then JSON) as the coordinator and workers decode it.
    case control
    /// A TOML config file, parsed and validated (layer widths, counts, hash).
    case config
    /// An IDX file (gzip or raw), images and labels.
    case idx
    /// A safetensors file (checkpoints and `--init-from`).
    case safetensors

    /// Runs the target on `bytes`; true when they were accepted (decoded without error).
    /// File formats are written to `scratch` first (a path the caller owns).
    public func run(_ bytes: [UInt8], scratch: String) -> Bool {
        switch self {
        case .wireframe:
            return (try? WireFrame.decode(bytes, expectedJobID: 0x5eed)) != nil
        case .control:
            return (try? ControlMessage.decode(bytes, expectedJobID: nil, source: "fuzz")) != nil
        case .config:
            guard let config = try? ConfigLoader.parse(String(decoding: bytes, as: UTF8.self), name: "fuzz.toml"),
                  (try? config.validate()) != nil else { return false }
            return (try? config.modelHash(inputFeatures: config.inputFeatures)) != nil
        case .idx:
            guard Self.write(bytes, to: scratch) else { return false }
            let magic: UInt32 = bytes.count >= 4 && bytes[3] == 1 ? IDX.labelsMagic : IDX.imagesMagic
            return (try? IDX.read(path: scratch, expectedMagic: magic)) != nil
        case .safetensors:
            guard Self.write(bytes, to: scratch) else { return false }
            return (try? SafeTensors.read(path: scratch, maximumBytes: 1 << 26)) != nil
        }
    }

    /// Writes `bytes` to `path` in place (no temporary file, no sync: this runs per input).
    static func write(_ bytes: [UInt8], to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count
    }

    /// Valid inputs to start from (what `lockstep fuzz --write-seeds` commits as the corpus).
    public func seeds(scratch: String) throws -> [[UInt8]] {
        switch self {
        case .wireframe:
            return [
                WireFrame(kind: .data, jobID: 0x5eed, step: 3, senderRank: 1, payload: (0..<64).map { UInt8($0) }).encoded(),
                WireFrame(kind: .heartbeat, jobID: 0x5eed, senderRank: 0, payload: []).encoded(),
                WireFrame(kind: .error, jobID: 0x5eed, senderRank: WireFrame.noRank, payload: Array("stop".utf8)).encoded(),
            ]
        case .control:
            var config = TrainingConfig()
            config.layers = ["linear 8", "relu", "linear 4"]
            let job = try JobSpec(config: config)
            let messages: [ControlMessage] = [
                .hello(.init(protocolVersion: Int(WireFrame.protocolVersion), modelHash: job.modelHash, host: "n2", pid: 42,
                             requestedRank: 1, publicKey: String(repeating: "a", count: 40))),
                .assign(.init(rank: 1, worldSize: 2, jobID: 0x5eed, job: job)),
                .peers(.init(addresses: ["tcp://10.0.0.2:6000", "tcp://10.0.0.3:6000"], hosts: ["n2", "n3"], keys: nil)),
                .endpoint(.init(address: "tcp://10.0.0.2:6000")),
                .error(message: "worker failed", final: nil), .heartbeat, .shutdown, .abort(reason: "stop"),
            ]
            return messages.map { $0.frame(jobID: 0x5eed, rank: 0) }
        case .config:
            let mlp = """
                [model]
                layers = ["linear 512", "batchnorm", "relu", "linear 256", "dropout 0.1", "relu", "linear 10"]
                [data]
                dataset = "synthetic"
                synthetic_train = 600
                synthetic_features = 784
                [train]
                epochs = 5
                batch_size = 128
                seed = 7
                [optimizer]
                name = "adam"
                lr = 0.001
                [schedule]
                kind = "cosine"
                warmup_steps = 10
                [distributed]
                step_mode = "sharded"
                wire = "bf16"
                [security]
                key = "keys/job.key"
                allow = "keys"
                """
            let maxout = """
                [model]
                layers = ["linear 64", "maxout", "linear 10"]
                maxout_pieces = 3
                [train]
                batch_size = "full"
                """
            return [Array(mlp.utf8), Array(maxout.utf8)]
        case .idx:
            var out: [[UInt8]] = []
            for (array, compressed) in [(IDXArray(dimensions: [3, 4, 4], bytes: (0..<48).map { UInt8($0) }), false),
                                        (IDXArray(dimensions: [3], bytes: [1, 2, 3]), false),
                                        (IDXArray(dimensions: [2, 3, 3], bytes: (0..<18).map { UInt8($0 * 7) }), true)] {
                try IDX.write(array, to: scratch, compressed: compressed)
                out.append([UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch))))
            }
            return out
        case .safetensors:
            try SafeTensors.write(entries: [.init(name: "0.weight", shape: [2, 3], values: [1, 2, 3, 4, 5, 6]),
                                            .init(name: "0.bias", shape: [2], values: [0.5, -0.5]),
                                            .init(name: "1.num_batches_tracked", shape: [], values: [12], dtype: .I64)],
                                  metadata: ["lockstep.global_step": "12"], to: scratch)
            return [[UInt8](try Data(contentsOf: URL(fileURLWithPath: scratch)))]
        }
    }
}
