import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A reusable barrier for threads that run at the same time (`ThreadPool.runOnEachThread`).
///
/// Waiters spin briefly, then yield their core, and give up at a deadline. A party
/// that fails calls `breakBarrier()`, which releases every current and later waiter
/// with `false` until `reset()`, so one thread's error cannot leave the others waiting.
public final class SpinBarrier {
    public let parties: Int
    /// How long one `wait` may take before it breaks the barrier.
    public let timeoutSeconds: Double

    private let arrived = Atomic<Int>(0)
    private let phase = Atomic<Int>(0)
    private let broken = Atomic<Bool>(false)

    private static let spinIterations = 4_000

    public init(parties: Int, timeoutSeconds: Double = 120) {
        precondition(parties >= 1, "SpinBarrier needs at least one party")
        self.parties = parties
        self.timeoutSeconds = timeoutSeconds
    }

    /// Whether a party broke the barrier (or a wait timed out) since the last `reset()`.
    public var isBroken: Bool { broken.load(ordering: .acquiring) }

    /// Waits until all `parties` have called `wait`. Returns false, without waiting
    /// for the others, when the barrier is or becomes broken or the deadline passes.
    public func wait() -> Bool {
        let myPhase = phase.load(ordering: .acquiring)
        if broken.load(ordering: .acquiring) { return false }
        // The phase cannot advance between the load above and this arrival: it needs ours.
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == parties {
            arrived.store(0, ordering: .relaxed)
            phase.wrappingAdd(1, ordering: .releasing)
            return !broken.load(ordering: .acquiring)
        }
        var spins = 0
        var deadline: DispatchTime?
        while phase.load(ordering: .acquiring) == myPhase {
            if broken.load(ordering: .relaxed) { return false }
            spins &+= 1
            if spins > Self.spinIterations {
                sched_yield()
                if spins & 255 == 0 {
                    let now = DispatchTime.now()
                    if deadline == nil {
                        deadline = now + timeoutSeconds
                    } else if now > deadline! {
                        breakBarrier()
                        return false
                    }
                }
            }
        }
        return true
    }

    /// Releases every waiter with `false` until `reset()`.
    public func breakBarrier() {
        broken.store(true, ordering: .releasing)
    }

    /// Makes a broken barrier usable again; only call it while no thread is waiting.
    public func reset() {
        arrived.store(0, ordering: .relaxed)
        broken.store(false, ordering: .releasing)
    }
}
