/// The shape of one sample between layers: `channels × height × width` (NCHW without
/// the batch) for images and feature maps, or a flat vector of `channels` features
/// (`height = width = 1`, `spatial = false`). A batch is always stored row-major,
/// one sample after another, so a feature map is already its own flattening.
public struct FeatureShape: Equatable, Hashable, Codable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int
    /// Whether convolutions and pooling may read this shape as an image.
    public var spatial: Bool

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
        spatial = true
    }

    public init(features: Int) {
        channels = features
        height = 1
        width = 1
        spatial = false
    }

    /// A sample shape as data files give it: `[F]` is flat, `[H, W]` one channel, `[C, H, W]` NCHW;
    /// more dimensions are read as flat.
    public init(dimensions: [Int]) {
        switch dimensions.count {
        case 2: self.init(channels: 1, height: dimensions[0], width: dimensions[1])
        case 3: self.init(channels: dimensions[0], height: dimensions[1], width: dimensions[2])
        default: self.init(features: dimensions.reduce(1, *))
        }
    }

    public var features: Int { channels * height * width }
    public var plane: Int { height * width }
    public var flattened: FeatureShape { FeatureShape(features: features) }

    public var description: String { spatial ? "\(channels)×\(height)×\(width)" : "\(features)" }
}
