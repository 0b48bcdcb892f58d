/// The cross-worker reductions synchronized BatchNorm needs. The runtime adapts
/// its communicator to this; layers never see the transport.
public protocol BatchStatisticsReducer: AnyObject {
    var worldSize: Int { get }
    var rank: Int { get }
    /// Element-wise sum over workers, in place; the result is bitwise identical on every worker.
    func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws
    /// Each worker contributes `count` floats; `output` receives `worldSize * count` floats in rank order.
    func gather(_ local: UnsafePointer<Float>, count: Int, into output: UnsafeMutablePointer<Float>) throws
}
