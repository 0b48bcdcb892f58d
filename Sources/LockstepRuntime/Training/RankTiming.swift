/// Where one rank's step time went, averaged over the steps since its last report:
/// computing (forward and backward), waiting for its peers (the step's end blocked on
/// gradient synchronization), and communicating (the communication thread's busy time).
public struct RankTiming: Codable, Sendable, Equatable {
    public var rank: Int
    public var steps: Int
    public var stepSeconds: Double
    public var computeSeconds: Double
    public var waitSeconds: Double
    public var communicationSeconds: Double

    public init(rank: Int, steps: Int, stepSeconds: Double, computeSeconds: Double, waitSeconds: Double, communicationSeconds: Double) {
        self.rank = rank
        self.steps = steps
        self.stepSeconds = stepSeconds
        self.computeSeconds = computeSeconds
        self.waitSeconds = waitSeconds
        self.communicationSeconds = communicationSeconds
    }
}
