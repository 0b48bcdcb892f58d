import ArgumentParser
import Foundation
import LockstepBench
import LockstepRuntime

/// `lockstep plot run.jsonl --out curves.svg`: a run's loss and accuracy curves.
public struct PlotCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "plot", abstract: "Draw a run's loss and accuracy per epoch (its --metrics file) as an SVG.")

    public init() {}

    @Argument(help: "The --metrics file of a run (JSON lines).") public var metrics: String
    @Option(help: "The SVG file to write.") public var out: String = "curves.svg"

    public func run() throws {
        try CommandLineErrors.report {
            let curves = try TrainingCurves(metricsFile: metrics)
            try RunFiles.checkWritable(out, flag: "--out")
            do {
                try curves.svg().write(toFile: out, atomically: true, encoding: .utf8)
            } catch {
                throw LockstepError("--out \(out): cannot write it (\(error.localizedDescription))")
            }
            FileHandle.standardError.write(Data("plot: \(curves.epochs.count) epoch(s) from \(metrics) → \(out)\n".utf8))
        }
    }
}
