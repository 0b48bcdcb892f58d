import XCTest
import Synchronization
@testable import LockstepKernels

final class ThreadPoolTests: XCTestCase {
    /// Counts calls per index with atomics: every index must run exactly once.
    func runCounting(_ pool: ThreadPool, _ n: Int, file: StaticString = #filePath, line: UInt = #line) {
        let counts = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: max(n, 1))
        for i in 0..<n { (counts + i).initialize(to: Atomic(0)) }
        defer { counts.deinitialize(count: n); counts.deallocate() }
        nonisolated(unsafe) let shared = counts
        pool.parallelFor(n) { i in shared[i].add(1, ordering: .relaxed) }
        for i in 0..<n where counts[i].load(ordering: .relaxed) != 1 {
            XCTFail("index \(i) ran \(counts[i].load(ordering: .relaxed)) times (n=\(n), threads=\(pool.threadCount))", file: file, line: line)
            return
        }
    }

    func testEveryIndexExactlyOnce() {
        for threads in [1, 2, 3, 5] {
            let pool = ThreadPool(threads: threads)
            XCTAssertEqual(pool.threadCount, threads)
            for n in [0, 1, 2, threads - 1, threads, threads + 1, 97, 10_000] { runCounting(pool, n) }
            // Back-to-back calls reuse the same workers.
            for _ in 0..<2_000 { runCounting(pool, 3) }
        }
    }

    /// Two indices, each waiting (up to 10 s) for the other to start: only possible
    /// if a worker runs one of them while the caller runs the other.
    func testWorkerRunsConcurrentlyWithCaller() {
        let pool = ThreadPool(threads: 2)
        let entered = Atomic<Int>(0)
        let sawBoth = Atomic<Int>(0)
        pool.parallelFor(2) { _ in
            entered.add(1, ordering: .acquiringAndReleasing)
            let deadline = DispatchTime.now().uptimeNanoseconds + 10_000_000_000
            while entered.load(ordering: .acquiring) < 2 && DispatchTime.now().uptimeNanoseconds < deadline { sched_yield() }
            if entered.load(ordering: .acquiring) == 2 { sawBoth.add(1, ordering: .relaxed) }
        }
        XCTAssertEqual(sawBoth.load(ordering: .relaxed), 2)
    }

    func testNestedCallsRunInline() {
        let pool = ThreadPool(threads: 2)
        let total = Atomic<Int>(0)
        pool.parallelFor(4) { _ in
            pool.parallelFor(5) { _ in total.add(1, ordering: .relaxed) }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 20)
    }

    func testConcurrentCallersDoNotDeadlock() {
        let pool = ThreadPool(threads: 2)
        let total = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<200 { pool.parallelFor(7) { _ in total.add(1, ordering: .relaxed) } }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 4 * 200 * 7)
    }

    func testPoolCanBeDropped() {
        for _ in 0..<20 {
            let pool = ThreadPool(threads: 3)
            runCounting(pool, 10)
        }
    }
}
