import Foundation
import LockstepCollectives
import LockstepOptim
import LockstepData
import TOMLKit

/// Reads a TOML config file into a `TrainingConfig`.
///
/// Unknown tables and keys are errors (a typo must not silently fall back to a
/// default); every message names the file and the key.
public enum ConfigLoader {
    public static func load(path: String) throws -> TrainingConfig {
        guard FileManager.default.fileExists(atPath: path) else {
            throw LockstepError("config \(path): no such file; pass --config with an existing .toml file (see configs/)")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw LockstepError("config \(path): cannot be read as UTF-8 text")
        }
        return DatasetLoader.resolvingPaths(try parse(text, name: path), configPath: path)
    }

    public static func parse(_ text: String, name: String) throws -> TrainingConfig {
        try checkTableHeaders(text, name: name)
        try checkValueStarts(text, name: name)
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw LockstepError("config \(name): malformed TOML: \(e.description) at line \(e.source.begin.line), column \(e.source.begin.column)")
        } catch {
            throw LockstepError("config \(name): malformed TOML: \(error)")
        }
        let json = table.convert(to: .json)
        guard let root = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else {
            throw LockstepError("config \(name): could not be read as a table")
        }
        var reader = Reader(name: name)
        return try reader.read(root)
    }

    /// TOMLKit's parser (toml++ 3.4) aborts the process (an assertion), instead of
    /// failing, on a table header whose name starts with anything but a bare-key
    /// character or a quote (`[é]`, `[.a]`, `[=]`; found by `lockstep fuzz config`):
    /// a line that starts so is refused here first. No config key takes nested arrays,
    /// so a line of an array value is never refused that would be accepted.
    static func checkTableHeaders(_ text: String, name: String) throws {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            // Scalars, not characters: "[" and a combining mark after it are one character.
            var rest = line.unicodeScalars.drop { $0 == " " || $0 == "\t" }
            guard rest.first == "[" else { continue }
            rest = rest.dropFirst().drop { $0 == "[" || $0 == " " || $0 == "\t" }
            // A bare key's characters, a quoted key, or the end of an empty array.
            let c = rest.first ?? "\n"
            if !(c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "_-\"']".unicodeScalars.contains(c))) {
                throw LockstepError("config \(name): malformed TOML: a table name must start with a letter, digit, '_', '-' or a quote, saw U+\(String(c.value, radix: 16, uppercase: true)) at line \(index + 1)")
            }
        }
    }

    /// The same parser also aborts on a value that starts with a character no
    /// value starts with (`layers = ["a", }`): outside strings and comments, every
    /// place that expects a value (after `=`, `[` in a value, `,`) is checked first.
    static func checkValueStarts(_ text: String, name: String) throws {
        let scalars = Array(text.unicodeScalars)
        var i = 0, line = 1, depth = 0
        var expectValue = false
        func starts(_ s: String) -> Bool {
            let u = Array(s.unicodeScalars)
            return i + u.count <= scalars.count && Array(scalars[i..<i + u.count]) == u
        }
        while i < scalars.count {
            let c = scalars[i]
            if c == "\n" { line += 1 }
            if c == " " || c == "\t" || c == "\r" || (c == "\n" && depth > 0) { i += 1; continue }
            if c == "#" {  // a comment, to the end of the line
                while i < scalars.count, scalars[i] != "\n" { i += 1 }
                continue
            }
            if c == "\"" || c == "'" {  // a string: skip it (multi-line too), escapes in basic ones
                let quote = c, triple = starts(String(repeating: String(c), count: 3))
                i += triple ? 3 : 1
                while i < scalars.count {
                    if scalars[i] == "\n" { line += 1; if !triple { break } }
                    if quote == "\"", scalars[i] == "\\" { i += 2; continue }
                    if scalars[i] == quote, !triple || starts(String(repeating: String(c), count: 3)) {
                        i += triple ? 3 : 1
                        break
                    }
                    i += 1
                }
                expectValue = false
                continue
            }
            if expectValue {
                let ok = c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "[{+-.]".unicodeScalars.contains(c))
                guard ok else {
                    throw LockstepError("config \(name): malformed TOML: expected a value, saw U+\(String(c.value, radix: 16, uppercase: true)) at line \(line)")
                }
                expectValue = false
            }
            switch c {
            case "=": expectValue = true
            case "[" where depth > 0 || (i > 0 && !isLineStart(scalars, i)): depth += 1; expectValue = true
            case "]" where depth > 0: depth -= 1
            case "," where depth > 0: expectValue = true
            case "\n": depth = 0
            default: break
            }
            i += 1
        }
    }

    /// Whether only blanks precede position `i` on its line (a table header's `[`).
    private static func isLineStart(_ scalars: [Unicode.Scalar], _ i: Int) -> Bool {
        var j = i - 1
        while j >= 0, scalars[j] == " " || scalars[j] == "\t" { j -= 1 }
        return j < 0 || scalars[j] == "\n"
    }

    private struct Reader {
        let name: String

        func fail(_ key: String, _ what: String) -> LockstepError {
            LockstepError("config \(name): \(key): \(what)")
        }

        func section(_ root: [String: Any], _ key: String, allowed: Set<String>) throws -> [String: Any] {
            guard let value = root[key] else { return [:] }
            guard let t = value as? [String: Any] else { throw fail("[\(key)]", "must be a table") }
            for k in t.keys where !allowed.contains(k) {
                throw fail("[\(key)] \(k)", "unknown key; known keys: \(allowed.sorted().joined(separator: ", "))")
            }
            return t
        }

        /// JSON true/false (Foundation bridges numbers to Bool too, so ask for the stored type).
        func isBoolean(_ v: Any) -> Bool {
            if type(of: v) == Bool.self { return true }
            guard let n = v as? NSNumber else { return false }
            return String(cString: n.objCType) == "c" || String(describing: type(of: n)).contains("Bool")
        }

        func int(_ t: [String: Any], _ sec: String, _ key: String) throws -> Int? {
            guard let v = t[key] else { return nil }
            guard let n = v as? NSNumber, !isBoolean(v), n.doubleValue == n.doubleValue.rounded() else {
                throw fail("[\(sec)] \(key)", "expected an integer, got \(v)")
            }
            return n.intValue
        }

        func float(_ t: [String: Any], _ sec: String, _ key: String) throws -> Float? {
            guard let v = t[key] else { return nil }
            guard let n = v as? NSNumber, !isBoolean(v) else { throw fail("[\(sec)] \(key)", "expected a number, got \(v)") }
            return n.floatValue
        }

        func bool(_ t: [String: Any], _ sec: String, _ key: String) throws -> Bool? {
            guard let v = t[key] else { return nil }
            guard isBoolean(v), let b = v as? Bool else { throw fail("[\(sec)] \(key)", "expected true or false, got \(v)") }
            return b
        }

        func string(_ t: [String: Any], _ sec: String, _ key: String) throws -> String? {
            guard let v = t[key] else { return nil }
            guard let s = v as? String else { throw fail("[\(sec)] \(key)", "expected a string, got \(v)") }
            return s
        }

        /// `[data] format = "csv" | "npy" | "idx"` and its files; paths are kept as written
        /// (`DatasetLoader` resolves them against the working directory, then the config's).
        func dataSource(_ d: [String: Any], dataset: inout String) throws -> DataSource? {
            let named = (try string(d, "data", "format")) ?? (DataSource.Format(rawValue: dataset) != nil ? dataset : nil)
            guard let named else {
                for key in ["train", "test", "test_fraction", "label", "standardize", "train_x", "train_y", "test_x", "test_y",
                            "train_images", "train_labels", "test_images", "test_labels", "classes", "shape"] where d[key] != nil {
                    throw fail("[data] \(key)", "applies to files; set [data] format = \"csv\", \"npy\" or \"idx\"")
                }
                return nil
            }
            guard let format = DataSource.Format(rawValue: named) else {
                throw fail("[data] format", "unknown format \"\(named)\"; use csv, npy or idx (or dataset = \"fashion-mnist\" or \"synthetic\")")
            }
            dataset = format.rawValue
            var s = DataSource(format: format)
            let keys: [String]
            switch format {
            case .csv: keys = ["train", "test", "label"]
            case .npy: keys = ["train_x", "train_y", "test_x", "test_y"]
            case .idx: keys = ["train_images", "train_labels", "test_images", "test_labels"]
            }
            let all = ["train", "test", "label", "train_x", "train_y", "test_x", "test_y", "train_images", "train_labels", "test_images", "test_labels"]
            for key in all where d[key] != nil && !keys.contains(key) {
                throw fail("[data] \(key)", "does not apply to format = \"\(format.rawValue)\"; it reads \(keys.joined(separator: ", "))")
            }
            s.train = try string(d, "data", "train")
            s.test = try string(d, "data", "test")
            s.label = try string(d, "data", "label") ?? s.label
            s.trainX = try string(d, "data", "train_x")
            s.trainY = try string(d, "data", "train_y")
            s.testX = try string(d, "data", "test_x")
            s.testY = try string(d, "data", "test_y")
            s.trainImages = try string(d, "data", "train_images")
            s.trainLabels = try string(d, "data", "train_labels")
            s.testImages = try string(d, "data", "test_images")
            s.testLabels = try string(d, "data", "test_labels")
            if let f = try float(d, "data", "test_fraction") { s.testFraction = Double(f) }
            s.standardize = try bool(d, "data", "standardize")
            s.classes = try int(d, "data", "classes")
            if let v = d["shape"] {
                guard let dims = v as? [Any], let ints = dims.map({ ($0 as? NSNumber).flatMap { isBoolean($0) ? nil : $0.intValue } }) as? [Int],
                      (1...3).contains(ints.count) else {
                    throw fail("[data] shape", "expected a list of 1 to 3 positive integers such as [1, 8, 8] (channels, height, width)")
                }
                s.shape = ints
            }
            return s
        }

        mutating func read(_ root: [String: Any]) throws -> TrainingConfig {
            let tables: Set<String> = ["model", "data", "train", "optimizer", "schedule", "distributed", "security"]
            for k in root.keys where !tables.contains(k) {
                throw fail(k, "unknown table or key; known tables: \(tables.sorted().joined(separator: ", "))")
            }
            var c = TrainingConfig()

            let m = try section(root, "model", allowed: ["layers", "activation", "maxout_pieces", "dropout", "sync_batchnorm"])
            if let v = m["layers"] {
                guard let list = v as? [String], !list.isEmpty else {
                    throw fail("[model] layers", "expected a non-empty list of strings such as [\"linear 512\", \"relu\", \"linear 10\"]")
                }
                c.layers = list
            }
            c.activation = try string(m, "model", "activation") ?? c.activation
            c.maxoutPieces = try int(m, "model", "maxout_pieces") ?? c.maxoutPieces
            c.dropout = try float(m, "model", "dropout") ?? c.dropout
            c.syncBatchNorm = try bool(m, "model", "sync_batchnorm") ?? c.syncBatchNorm

            let d = try section(root, "data", allowed: ["dataset", "dir", "shuffle", "synthetic_train", "synthetic_test", "synthetic_features", "synthetic_classes",
                                                        "format", "train", "test", "test_fraction", "label", "standardize", "train_x", "train_y",
                                                        "test_x", "test_y", "train_images", "train_labels", "test_images", "test_labels", "classes", "shape"])
            c.dataset = try string(d, "data", "dataset") ?? c.dataset
            c.source = try dataSource(d, dataset: &c.dataset)
            c.dataDir = try string(d, "data", "dir") ?? c.dataDir
            c.shuffle = try bool(d, "data", "shuffle") ?? c.shuffle
            c.syntheticTrain = try int(d, "data", "synthetic_train") ?? c.syntheticTrain
            c.syntheticTest = try int(d, "data", "synthetic_test") ?? c.syntheticTest
            c.syntheticFeatures = try int(d, "data", "synthetic_features") ?? c.syntheticFeatures
            c.syntheticClasses = try int(d, "data", "synthetic_classes") ?? c.syntheticClasses

            let t = try section(root, "train", allowed: ["epochs", "batch_size", "seed", "threads", "thread_parallelism", "max_steps", "eval_batch_size", "emulate_compute_ms",
                                                    "accumulate_steps"])
            c.epochs = try int(t, "train", "epochs") ?? c.epochs
            if let v = t["batch_size"] {
                if let s = v as? String {
                    c.batchSize = try BatchSizeOption.parse(s, origin: "config \(name): [train] batch_size")
                } else {
                    c.batchSize = try int(t, "train", "batch_size") ?? c.batchSize
                    guard c.batchSize >= 1 else {
                        throw LockstepError("config \(name): [train] batch_size = \(c.batchSize): use a positive number, or \"full\" for one step per epoch")
                    }
                }
            }
            if let s = try int(t, "train", "seed") {
                guard s >= 0 else { throw fail("[train] seed", "must be non-negative") }
                c.seed = UInt64(s)
            }
            c.threads = try int(t, "train", "threads") ?? c.threads
            if let mode = try string(t, "train", "thread_parallelism") {
                guard let v = TrainingConfig.ThreadParallelism(rawValue: mode) else { throw fail("[train] thread_parallelism", "use data or kernel") }
                c.threadParallelism = v
            }
            c.maxSteps = try int(t, "train", "max_steps") ?? c.maxSteps
            c.accumulateSteps = try int(t, "train", "accumulate_steps") ?? c.accumulateSteps
            c.evalBatchSize = try int(t, "train", "eval_batch_size") ?? c.evalBatchSize
            if let ms = try float(t, "train", "emulate_compute_ms") { c.emulateComputeMs = Double(ms) }

            let o = try section(root, "optimizer", allowed: ["name", "lr", "momentum", "dampening", "weight_decay", "beta1", "beta2",
                                                             "eps", "rho", "alpha", "centered", "lr_decay", "initial_accumulator_value"])
            if let n = try string(o, "optimizer", "name") {
                guard let kind = OptimizerKind(rawValue: n) else {
                    throw fail("[optimizer] name", "unknown optimizer \"\(n)\"; use one of \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                c.optimizer = OptimizerConfig.defaults(for: kind)
            }
            c.optimizer.learningRate = try float(o, "optimizer", "lr") ?? c.optimizer.learningRate
            c.optimizer.momentum = try float(o, "optimizer", "momentum") ?? c.optimizer.momentum
            c.optimizer.dampening = try float(o, "optimizer", "dampening") ?? c.optimizer.dampening
            c.optimizer.weightDecay = try float(o, "optimizer", "weight_decay") ?? c.optimizer.weightDecay
            c.optimizer.beta1 = try float(o, "optimizer", "beta1") ?? c.optimizer.beta1
            c.optimizer.beta2 = try float(o, "optimizer", "beta2") ?? c.optimizer.beta2
            c.optimizer.eps = try float(o, "optimizer", "eps") ?? c.optimizer.eps
            c.optimizer.rho = try float(o, "optimizer", "rho") ?? c.optimizer.rho
            c.optimizer.alpha = try float(o, "optimizer", "alpha") ?? c.optimizer.alpha
            c.optimizer.centered = try bool(o, "optimizer", "centered") ?? c.optimizer.centered
            c.optimizer.lrDecay = try float(o, "optimizer", "lr_decay") ?? c.optimizer.lrDecay
            c.optimizer.initialAccumulatorValue = try float(o, "optimizer", "initial_accumulator_value") ?? c.optimizer.initialAccumulatorValue

            let s = try section(root, "schedule", allowed: ["kind", "warmup_steps", "step_size", "gamma", "min_lr", "total_steps"])
            let warmup = try int(s, "schedule", "warmup_steps") ?? 0
            guard warmup >= 0 else { throw fail("[schedule] warmup_steps", "must be non-negative") }
            switch try string(s, "schedule", "kind") ?? "constant" {
            case "constant":
                c.lrPolicy = LearningRatePolicy(schedule: .constant, warmupSteps: warmup)
            case "step":
                let size = try int(s, "schedule", "step_size") ?? 1000
                guard size > 0 else { throw fail("[schedule] step_size", "must be positive") }
                c.lrPolicy = LearningRatePolicy(schedule: .step(stepSize: size, gamma: try float(s, "schedule", "gamma") ?? 0.1), warmupSteps: warmup)
            case "cosine":
                // total_steps 0: the run's own length, filled in by the trainer.
                let total = try int(s, "schedule", "total_steps") ?? 0
                c.lrPolicy = LearningRatePolicy(schedule: .cosine(totalSteps: total, minLR: try float(s, "schedule", "min_lr") ?? 0), warmupSteps: warmup)
            case let other:
                throw fail("[schedule] kind", "unknown schedule \"\(other)\"; use constant, step or cosine")
            }

            let dist = try section(root, "distributed", allowed: ["step_mode", "timeout_seconds", "chunk_bytes", "bucket_bytes", "heartbeat_seconds", "wire",
                                                                  "all_reduce", "max_restarts", "min_workers", "rejoin_timeout_seconds",
                                                                  "straggler_factor"])
            if let mode = try string(dist, "distributed", "step_mode") {
                guard let v = TrainingConfig.StepMode(rawValue: mode) else { throw fail("[distributed] step_mode", "use replicated or sharded") }
                c.stepMode = v
            }
            c.timeoutSeconds = Double(try float(dist, "distributed", "timeout_seconds") ?? Float(c.timeoutSeconds))
            c.chunkBytes = try int(dist, "distributed", "chunk_bytes") ?? c.chunkBytes
            c.bucketBytes = try int(dist, "distributed", "bucket_bytes") ?? c.bucketBytes
            if let w = try string(dist, "distributed", "wire") {
                guard let v = WireFormat(rawValue: w) else { throw fail("[distributed] wire", "use fp32, fp16 or bf16") }
                c.wire = v
            }
            if let a = try string(dist, "distributed", "all_reduce") {
                guard let v = TrainingConfig.AllReduceAlgorithm(rawValue: a) else { throw fail("[distributed] all_reduce", "use flat, hierarchical or auto") }
                c.allReduce = v
            }
            c.heartbeatSeconds = Double(try float(dist, "distributed", "heartbeat_seconds") ?? Float(c.heartbeatSeconds))
            c.maxRestarts = try int(dist, "distributed", "max_restarts") ?? c.maxRestarts
            c.minWorkers = try int(dist, "distributed", "min_workers") ?? c.minWorkers
            c.rejoinTimeoutSeconds = Double(try float(dist, "distributed", "rejoin_timeout_seconds") ?? Float(c.rejoinTimeoutSeconds))
            c.stragglerFactor = Double(try float(dist, "distributed", "straggler_factor") ?? Float(c.stragglerFactor))

            let sec = try section(root, "security", allowed: ["key", "allow", "coordinator_key", "insecure"])
            c.security.key = try string(sec, "security", "key")
            c.security.allow = try string(sec, "security", "allow")
            c.security.coordinatorKey = try string(sec, "security", "coordinator_key")
            c.security.insecure = try bool(sec, "security", "insecure") ?? false
            return c
        }
    }
}

/// `--batch-size N | full`.
public enum BatchSizeOption {
    /// Returns 0 for "full" (one step per epoch on the whole training set: BGD).
    public static func parse(_ text: String, origin: String = "--batch-size") throws -> Int {
        if text.lowercased() == "full" { return 0 }
        guard let n = Int(text), n >= 1 else {
            throw LockstepError("\(origin) \(text): use a positive number of samples, or \"full\" for one step per epoch (BGD)")
        }
        return n
    }
}
