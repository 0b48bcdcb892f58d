/// The files a run reads and writes besides its config.
public struct RunFiles: Codable, Sendable, Equatable {
    public var initFrom: String?
    public var save: String?
    public var resume: String?
    public var metrics: String?

    public init(initFrom: String? = nil, save: String? = nil, resume: String? = nil, metrics: String? = nil) {
        self.initFrom = initFrom
        self.save = save
        self.resume = resume
        self.metrics = metrics
    }
}
