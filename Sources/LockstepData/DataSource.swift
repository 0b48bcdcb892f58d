/// Where a dataset of the user's own files is, as `[data]` describes it
/// (`format = "csv" | "npy" | "idx"`), and how to read it.
public struct DataSource: Codable, Equatable, Sendable {
    public enum Format: String, Codable, CaseIterable, Sendable {
        case csv, npy, idx
    }

    public var format: Format
    /// csv: the training and test files (a header row; `label` names the label column).
    public var train: String?
    public var test: String?
    /// Without a test file: this fraction of the training rows (a seeded draw) is the test split.
    public var testFraction: Double?
    public var label = "label"
    /// Standardize every feature with the training split's mean and standard deviation
    /// (csv and npy, per column; idx: Fashion-MNIST's one scalar pair after /255).
    public var standardize: Bool?
    /// npy: features (N×…, float32/float64/uint8) and labels (N, integers).
    public var trainX: String?
    public var trainY: String?
    public var testX: String?
    public var testY: String?
    /// idx: u8 images (N×H×W) and labels (N).
    public var trainImages: String?
    public var trainLabels: String?
    public var testImages: String?
    public var testLabels: String?
    /// Class count, when the labels do not show it (default: the largest label + 1).
    public var classes: Int?
    /// One sample's shape, `[C, H, W]`, for a table whose columns are an image's pixels.
    public var shape: [Int]?

    public init(format: Format) { self.format = format }

    /// Whether features are standardized (default: off for csv and npy, on for idx).
    public var standardizes: Bool { standardize ?? (format == .idx) }
}
