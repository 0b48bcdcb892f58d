import Foundation
import LockstepBase

/// Runs one `FuzzTarget` over its corpus and seeded mutations of it, for a number
/// of inputs or for a time. A trap in a target ends the process; with
/// `lastInputPath` set, the input being tried is written there first, so the one
/// that crashed is on disk.
public struct FuzzRunner {
    public struct Outcome: Sendable {
        public var target: FuzzTarget
        public var inputs: Int
        /// Inputs the target accepted as valid (how deep the mutations reach).
        public var accepted: Int
        public var seconds: Double
    }

    public let target: FuzzTarget
    public let corpus: [[UInt8]]
    public var seed: UInt64
    public var lastInputPath: String?

    public init(target: FuzzTarget, corpus: [[UInt8]], seed: UInt64 = 1) {
        precondition(!corpus.isEmpty, "a fuzz target needs at least one corpus input")
        self.target = target
        self.corpus = corpus
        self.seed = seed
    }

    /// The corpus files of `target` in `directory/<target>/`.
    public static func corpus(_ target: FuzzTarget, in directory: String) throws -> [[UInt8]] {
        let dir = directory + "/" + target.rawValue
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir), !names.isEmpty else {
            throw LockstepError("fuzz: no corpus in \(dir); write one with `lockstep fuzz --write-seeds \(directory)`")
        }
        return names.sorted().compactMap { FileManager.default.contents(atPath: dir + "/" + $0).map { [UInt8]($0) } }
    }

    /// Tries `inputs` inputs (the corpus first), or until `seconds` have passed.
    public func run(inputs: Int = .max, seconds: Double = .infinity, scratch: String) -> Outcome {
        var mutator = FuzzMutator(seed: seed)
        var picks = SplitMix64(seed: seed ^ 0x9e37)  // which corpus inputs; the mutator's stream stays independent
        let start = Date()
        var tried = 0, accepted = 0
        while tried < inputs {
            if tried % 256 == 0, Date().timeIntervalSince(start) >= seconds { break }
            let input = tried < corpus.count ? corpus[tried]
                : mutator.mutate(corpus.randomElement(using: &picks)!, splicing: corpus.randomElement(using: &picks)!)
            if let lastInputPath { _ = FuzzTarget.write(input, to: lastInputPath) }
            if target.run(input, scratch: scratch) { accepted += 1 }
            tried += 1
        }
        return Outcome(target: target, inputs: tried, accepted: accepted, seconds: Date().timeIntervalSince(start))
    }
}
