import Foundation
import XCTest

/// Runs `body(rank)` for ranks 0..<worldSize, each on its own thread (ranks
/// block on each other, so a bounded pool like `concurrentPerform` could
/// deadlock), and waits at most `timeout` seconds for all of them.
public func runRanks<T: Sendable>(
    _ worldSize: Int, timeout: Double = 30,
    file: StaticString = #filePath, line: UInt = #line,
    _ body: @escaping (Int) throws -> T
) -> [T]? {
    let results = ResultBox<T>(count: worldSize)
    let body = RankBody(call: body)
    let group = DispatchGroup()
    for rank in 0..<worldSize {
        group.enter()
        let thread = Thread {
            let result = Result { try body.call(rank) }
            results.set(rank, result)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    if group.wait(timeout: .now() + timeout) == .timedOut {
        XCTFail("ranks did not finish within \(timeout) s", file: file, line: line)
        return nil
    }
    var values: [T] = []
    for (rank, result) in results.all().enumerated() {
        switch result {
        case .success(let value)?: values.append(value)
        case .failure(let error)?:
            XCTFail("rank \(rank) failed: \(error)", file: file, line: line)
            return nil
        case nil:
            XCTFail("rank \(rank) produced no result", file: file, line: line)
            return nil
        }
    }
    return values
}

/// The ranks' body, handed to their threads: each rank touches its own objects
/// (its transport, its communicator), so the body may capture non-Sendable ones.
struct RankBody<T>: @unchecked Sendable {
    let call: (Int) throws -> T
}

/// One result slot per rank, filled from the ranks' threads.
public final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<T, Error>?]
    public init(count: Int) { results = Array(repeating: nil, count: count) }
    public func set(_ index: Int, _ result: Result<T, Error>) { lock.withLock { results[index] = result } }
    public func all() -> [Result<T, Error>?] { lock.withLock { results } }
}

/// Exactly representable test value: every partial sum is exact, so any
/// summation order must give the same bits.
public func testValue(_ index: Int, _ rank: Int) -> Float { Float(index % 1000) * 0.5 + Float(rank) }

public func bitPatterns(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }
