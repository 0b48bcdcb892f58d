/// The files a run reads and writes besides its config.
public struct RunFiles: Codable, Sendable, Equatable {
    public var initFrom: String?
    public var save: String?
    public var resume: String?
    public var metrics: String?
    /// Chrome trace of a few steps (forward, backward, bucket all-reduces, optimizer).
    public var trace: String?

    public init(initFrom: String? = nil, save: String? = nil, resume: String? = nil, metrics: String? = nil, trace: String? = nil) {
        self.trace = trace
        self.initFrom = initFrom
        self.save = save
        self.resume = resume
        self.metrics = metrics
    }
}
