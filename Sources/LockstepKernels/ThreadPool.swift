import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A persistent pool of worker threads running one `parallelFor` at a time.
///
/// The calling thread participates, so `ThreadPool(threads: T)` starts `T - 1`
/// workers. Dispatch is a generation counter: workers spin on it briefly after
/// each job (back-to-back kernel calls then cost a few microseconds), then
/// sleep on a condition variable. Indices are handed out by an atomic counter,
/// so uneven work balances itself.
///
/// Only one `parallelFor` runs on the pool at a time. A call made while the
/// pool is busy (from inside a body, or from another thread) runs inline on
/// its caller instead of waiting, so nesting and concurrent use cannot deadlock.
// Sendable, unchecked: the pool runs its caller's (non-Sendable) body on its threads.
// `job` is written by the dispatching thread before it bumps `generation` (release)
// and read by workers after they see the bump (acquire); the caller waits for every
// worker's acknowledgement (`finishedWorkers`, acquire) before it reuses `job`.
public final class ThreadPool: @unchecked Sendable {
    /// Threads that run a job, the caller included.
    public let threadCount: Int

    /// A pool of one thread (the caller): kernels called with it run inline. No
    /// thread is started, so one immutable instance serves every caller.
    public static let serial = ThreadPool(threads: 1)

    /// Spin iterations a worker waits for the next job before sleeping: long enough
    /// (~0.2-0.5 ms) to stay awake across the serial gaps between a training step's
    /// kernels (50k iterations let workers fall asleep between layers; training with
    /// 2 threads then ran barely faster than with 1).
    private static let spinIterations = 500_000
    /// Spin iterations the caller waits for acknowledgements before yielding its core.
    private static let callerSpinIterations = 2_000

    private let generation = Atomic<Int>(0)
    private let nextIndex = Atomic<Int>(0)
    private let finishedWorkers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let stopping = Atomic<Bool>(false)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wakeup: UnsafeMutablePointer<pthread_cond_t>

    /// The current job: its body, its index count, and whether it is `runOnEachThread`'s
    /// (worker w runs `body(w)` once). Published through `generation` (see the class comment).
    private struct Job {
        var body: ((Int) -> Void)?
        var count = 0
        var perThread = false
    }
    private let job: UnsafeMutablePointer<Job>

    public init(threads: Int) {
        threadCount = max(1, threads)
        mutex = .allocate(capacity: 1)
        wakeup = .allocate(capacity: 1)
        job = .allocate(capacity: 1)
        job.initialize(to: Job())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wakeup, nil)
        for w in stride(from: 1, to: threadCount, by: 1) {
            let thread = Thread { [unowned(unsafe) self] in self.workerLoop(index: w) }
            thread.name = "lockstep-pool-\(w)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    deinit {
        // Workers hold `self` unowned; a pool is expected to live as long as the
        // process (`shared`). Ask them to exit so a dropped pool does not leak threads.
        stopping.store(true, ordering: .releasing)
        finishedWorkers.store(0, ordering: .relaxed)
        pthread_mutex_lock(mutex)
        generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(wakeup)
        pthread_mutex_unlock(mutex)
        // Wait until every worker has seen the stop flag before freeing the primitives.
        let workers = threadCount - 1
        while finishedWorkers.load(ordering: .acquiring) < workers { sched_yield() }
        pthread_cond_destroy(wakeup)
        pthread_mutex_destroy(mutex)
        wakeup.deallocate()
        mutex.deallocate()
        job.deinitialize(count: 1)
        job.deallocate()
    }

    /// Runs `body(i)` for every `i` in `0..<n`, split across the pool's threads
    /// with the caller participating; returns when all calls have finished.
    public func parallelFor(_ n: Int, _ body: (Int) -> Void) {
        if n <= 0 { return }
        if n == 1 || threadCount == 1 || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for i in 0..<n { body(i) }
            return
        }
        dispatch(body, count: n, perThread: false)
        busy.store(false, ordering: .releasing)
    }

    /// Runs `body(t)` once on every thread of the pool at the same time, `t` in
    /// `0..<threadCount` (the caller is thread 0), and returns when all have finished.
    /// Unlike `parallelFor`, the calls are guaranteed to run concurrently, so they
    /// may wait for each other (`SpinBarrier`); kernels called inside run inline.
    /// Returns false, running nothing, when the pool has one thread or is busy.
    public func runOnEachThread(_ body: (Int) -> Void) -> Bool {
        guard threadCount > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        dispatch(body, count: threadCount, perThread: true)
        busy.store(false, ordering: .releasing)
        return true
    }

    private func dispatch(_ body: (Int) -> Void, count n: Int, perThread: Bool) {
        withoutActuallyEscaping(body) { escapable in
            job.pointee = Job(body: escapable, count: n, perThread: perThread)
            nextIndex.store(0, ordering: .relaxed)
            finishedWorkers.store(0, ordering: .relaxed)
            // Publish the job. Taking the mutex around the bump means a worker
            // that checked `generation` under the mutex cannot miss the signal.
            pthread_mutex_lock(mutex)
            generation.add(1, ordering: .releasing)
            pthread_cond_broadcast(wakeup)
            pthread_mutex_unlock(mutex)

            if perThread { escapable(0) } else { runIndices(escapable, n) }

            // Every worker acknowledges every job, so none can still be reading
            // `jobBody` when the next job (or the caller's stack) replaces it.
            // Spin briefly, then yield: on an oversubscribed machine a descheduled
            // worker needs this core to acknowledge.
            let workers = threadCount - 1
            var spins = 0
            while finishedWorkers.load(ordering: .acquiring) < workers {
                spins += 1
                if spins > Self.callerSpinIterations { sched_yield() }
            }
            job.pointee.body = nil
        }
    }

    @inline(__always)
    private func runIndices(_ body: (Int) -> Void, _ n: Int) {
        while true {
            let i = nextIndex.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= n { return }
            body(i)
        }
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var current = generation.load(ordering: .acquiring)
            if current == seen {
                var spins = 0
                while current == seen && spins < Self.spinIterations {
                    spins += 1
                    current = generation.load(ordering: .acquiring)
                }
                if current == seen {
                    pthread_mutex_lock(mutex)
                    current = generation.load(ordering: .acquiring)
                    while current == seen {
                        pthread_cond_wait(wakeup, mutex)
                        current = generation.load(ordering: .acquiring)
                    }
                    pthread_mutex_unlock(mutex)
                }
            }
            seen = current
            if stopping.load(ordering: .acquiring) {
                finishedWorkers.add(1, ordering: .releasing)
                return
            }
            do {
                // The body's reference must be gone before the acknowledgement: the
                // caller's `withoutActuallyEscaping` checks that nothing kept it.
                let (body, count, perThread) = (job.pointee.body, job.pointee.count, job.pointee.perThread)
                if let body {
                    if perThread { body(index) } else { runIndices(body, count) }
                }
            }
            finishedWorkers.add(1, ordering: .releasing)
        }
    }
}
