import XCTest
import Synchronization
@testable import LockstepKernels

/// `ThreadPool.runOnEachThread` and `SpinBarrier`: the primitives of model replicas on threads.
final class SpinBarrierTests: XCTestCase {
    /// Every thread index runs once, all at the same time: 200 barrier phases would
    /// time out (and `wait` return false) if any two indices ran one after the other.
    func testEachThreadRunsOnceAndConcurrently() {
        for threads in [2, 3] {
            let pool = ThreadPool(threads: threads)
            let barrier = SpinBarrier(parties: threads, timeoutSeconds: 10)
            let calls = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: threads)
            for i in 0..<threads { (calls + i).initialize(to: Atomic(0)) }
            defer { calls.deinitialize(count: threads); calls.deallocate() }
            nonisolated(unsafe) let shared = calls
            let failures = Atomic<Int>(0)
            let phases = Atomic<Int>(0)
            let ran = pool.runOnEachThread { t in
                shared[t].add(1, ordering: .relaxed)
                for _ in 0..<200 {
                    if !barrier.wait() { failures.add(1, ordering: .relaxed); return }
                    if t == 0 { phases.add(1, ordering: .relaxed) }
                }
            }
            XCTAssertTrue(ran)
            XCTAssertEqual(failures.load(ordering: .relaxed), 0, "a barrier wait failed with \(threads) threads")
            XCTAssertEqual(phases.load(ordering: .relaxed), 200)
            for t in 0..<threads { XCTAssertEqual(calls[t].load(ordering: .relaxed), 1, "thread \(t) of \(threads)") }
        }
    }

    func testRefusedOnOneThreadAndWhenBusy() {
        XCTAssertFalse(ThreadPool(threads: 1).runOnEachThread { _ in XCTFail("must not run") })
        let pool = ThreadPool(threads: 2)
        let nested = Atomic<Int>(0)
        pool.parallelFor(2) { _ in
            if pool.runOnEachThread({ _ in }) { nested.add(1, ordering: .relaxed) }
        }
        XCTAssertEqual(nested.load(ordering: .relaxed), 0, "a busy pool must refuse instead of running concurrently-waiting bodies inline")
    }

    /// A party that breaks the barrier releases one that is already waiting; reset makes it usable again.
    func testBreakReleasesWaitersAndResetRestores() {
        let pool = ThreadPool(threads: 2)
        let barrier = SpinBarrier(parties: 2, timeoutSeconds: 10)
        let results = Mutex<[Bool]>([])
        _ = pool.runOnEachThread { t in
            if t == 0 {
                let ok = barrier.wait()
                results.withLock { $0.append(ok) }
            } else {
                usleep(20_000)
                barrier.breakBarrier()
            }
        }
        XCTAssertEqual(results.withLock { $0 }, [false])
        XCTAssertTrue(barrier.isBroken)
        barrier.reset()
        XCTAssertFalse(barrier.isBroken)
        let passed = Atomic<Int>(0)
        _ = pool.runOnEachThread { _ in if barrier.wait() { passed.add(1, ordering: .relaxed) } }
        XCTAssertEqual(passed.load(ordering: .relaxed), 2)
    }

    /// A party that never arrives: the waiter gives up at the deadline instead of hanging.
    func testWaitTimesOut() {
        let barrier = SpinBarrier(parties: 2, timeoutSeconds: 0.2)
        let start = DispatchTime.now().uptimeNanoseconds
        XCTAssertFalse(barrier.wait())
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        XCTAssertGreaterThanOrEqual(seconds, 0.2)
        XCTAssertLessThan(seconds, 5)
        XCTAssertTrue(barrier.isBroken)
    }
}
