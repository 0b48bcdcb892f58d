/// Progress of one step, as seen by the process that ran it.
public struct StepReport: Codable, Sendable {
    public var epoch: Int          // 1-based
    public var stepInEpoch: Int    // 1-based
    public var stepsPerEpoch: Int
    public var globalStep: Int     // steps done so far in the run, this one included
    public var loss: Double        // mean loss of this worker's slice of the step
    public var samples: Int        // global samples in this step
    public var learningRate: Float
    /// Where this step's time went on the rank that ran it (see `RankTiming`).
    public var seconds: Double = 0
    public var computeSeconds: Double = 0
    public var waitSeconds: Double = 0
    public var communicationSeconds: Double = 0
}

/// End-of-epoch figures, global over all workers.
public struct EpochReport: Codable, Sendable {
    public var epoch: Int
    public var loss: Double
    public var trainAccuracy: Double
    public var testAccuracy: Double
    public var samplesPerSecond: Double
    public var seconds: Double
    public var steps: Int
}

/// The run's result.
public struct FinalReport: Codable, Sendable {
    public var testAccuracy: Double
    public var samplesPerSecond: Double
    public var steps: Int
    public var epochs: Int
    public var trainingSeconds: Double
    public var loss: Double
    public var parameterHash: String
}

/// Receives a run's progress. The single-process CLI prints it; a worker forwards it to the coordinator.
public protocol TrainingObserver: AnyObject {
    func stepCompleted(_ report: StepReport)
    func epochCompleted(_ report: EpochReport)
}
