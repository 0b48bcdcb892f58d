import Foundation

/// Placeholder pool: runs every index on the calling thread. Replaced by the persistent pool.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    public init(threads: Int) { threadCount = max(1, threads) }
    nonisolated(unsafe) public static var shared = ThreadPool(threads: 1)
    public func parallelFor(_ n: Int, _ body: (Int) -> Void) { for i in 0..<n { body(i) } }
}
