import Foundation

/// Progress on stderr: a live line (epoch, step, loss, throughput, ETA) on a
/// terminal; plain log lines, a few per epoch, otherwise.
public final class ConsoleProgress: TrainingObserver {
    private let live: Bool
    private let totalSteps: Int
    private let prefix: String
    /// The first step seen and when: the ETA counts from there, so data loading and
    /// connecting before it do not count as training time.
    private var first: (time: Date, step: Int)?
    private var lastPrint = Date.distantPast
    private var windowStart = Date()
    private var windowSamples = 0
    private var smoothedLoss: Double?
    public var onEpoch: ((EpochReport) -> Void)?
    /// Called with every step report (TensorBoard).
    public var onStep: ((StepReport) -> Void)?
    /// Per-rank step times (compute/wait/communication ms) shown on the progress line.
    public var rankTimes: String?

    public init(totalSteps: Int, prefix: String = "", live: Bool = isatty(STDERR_FILENO) == 1) {
        self.totalSteps = totalSteps
        self.prefix = prefix
        self.live = live
    }

    public func stepCompleted(_ r: StepReport) {
        onStep?(r)
        let begin = first ?? (Date(), r.globalStep)
        first = begin
        windowSamples += r.samples
        smoothedLoss = smoothedLoss.map { 0.9 * $0 + 0.1 * r.loss } ?? r.loss
        let now = Date()
        let interval = live ? 0.2 : 10.0
        guard now.timeIntervalSince(lastPrint) >= interval || r.globalStep == totalSteps else { return }
        let rate = Double(windowSamples) / max(now.timeIntervalSince(windowStart), 1e-9)
        let done = r.globalStep - begin.step
        let eta = done > 0 ? now.timeIntervalSince(begin.time) / Double(done) * Double(totalSteps - r.globalStep) : .nan
        let line = String(format: "%@epoch %d step %d/%d loss %.4f  %.0f samples/s  lr %.4g  ETA %@",
                          prefix, r.epoch, r.stepInEpoch, r.stepsPerEpoch, smoothedLoss ?? r.loss, rate, r.learningRate,
                          ConsoleProgress.duration(eta)) + (rankTimes.map { "  ms c/w/m \($0)" } ?? "")
        if live {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        lastPrint = now
        windowStart = now
        windowSamples = 0
    }

    public func epochCompleted(_ r: EpochReport) {
        let line = String(format: "%@epoch %d: loss %.4f  train acc %.2f%%  test acc %.2f%%  %.0f samples/s  %.1f s",
                          prefix, r.epoch, r.loss, 100 * r.trainAccuracy, 100 * r.testAccuracy, r.samplesPerSecond, r.seconds)
        FileHandle.standardError.write(Data(((live ? "\r\u{1B}[K" : "") + line + "\n").utf8))
        onEpoch?(r)
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite else { return "?" }
        let t = Int(s.rounded())
        return t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }
}
