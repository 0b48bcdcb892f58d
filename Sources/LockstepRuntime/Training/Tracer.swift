import Foundation
import Synchronization

/// Collects a per-step timeline for `--trace FILE` in Chrome's trace-event format
/// (chrome://tracing, Perfetto): one process track per worker (pid = rank), thread 0
/// for compute (forward, backward, optimizer), thread 1 for communication (each
/// bucket's all-reduce, BatchNorm statistics).
public final class Tracer: Sendable {
    public struct Event: Codable, Sendable {
        public var name: String
        public var cat: String
        public var ph: String = "X"
        public var ts: Double     // µs since the trace's origin
        public var dur: Double    // µs
        public var pid: Int
        public var tid: Int
    }

    public let rank: Int
    /// Steps recorded: [firstStep, firstStep + steps).
    public let firstStep: Int
    public let steps: Int
    private let origin: Date
    private let recorded = Mutex<[Event]>([])
    private let step = Atomic<Int>(0)

    /// The events recorded so far.
    public var events: [Event] { recorded.withLock { $0 } }

    /// The step the training thread is in (read by the communication thread too).
    public var currentStep: Int {
        get { step.load(ordering: .relaxed) }
        set { step.store(newValue, ordering: .relaxed) }
    }

    /// Times are since the Unix epoch so that workers' events line up; `write` shifts them to start at 0.
    public init(rank: Int, firstStep: Int = 5, steps: Int = 10, origin: Date = Date(timeIntervalSince1970: 0)) {
        self.rank = rank
        self.firstStep = firstStep
        self.steps = steps
        self.origin = origin
    }

    /// Step 5 (past the first steps' warm-up), or earlier when the run is shorter than
    /// 15 steps, so that a short run's trace still holds its last steps.
    public static func firstStep(plannedSteps: Int) -> Int {
        max(0, min(5, plannedSteps - 10))
    }

    public var active: Bool { currentStep >= firstStep && currentStep < firstStep + steps }

    public func record(_ name: String, category: String, thread: Int, start: Date, end: Date) {
        guard active else { return }
        let e = Event(name: name, cat: category, ts: start.timeIntervalSince(origin) * 1e6,
                      dur: end.timeIntervalSince(start) * 1e6, pid: rank, tid: thread)
        recorded.withLock { $0.append(e) }
    }

    /// Times `body` as one compute event.
    public func span<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard active else { return try body() }
        let start = Date()
        let r = try body()
        record(name, category: "compute", thread: 0, start: start, end: Date())
        return r
    }

    /// Writes events of all workers as one trace file, with named tracks.
    public static func write(_ events: [Event], workers: Int, to path: String) throws {
        var all: [[String: Any]] = []
        for r in 0..<workers {
            all.append(["name": "process_name", "ph": "M", "pid": r, "args": ["name": "worker \(r)"]])
            all.append(["name": "thread_name", "ph": "M", "pid": r, "tid": 0, "args": ["name": "compute"]])
            all.append(["name": "thread_name", "ph": "M", "pid": r, "tid": 1, "args": ["name": "communication"]])
        }
        let t0 = events.map(\.ts).min() ?? 0
        for e in events {
            all.append(["name": e.name, "cat": e.cat, "ph": e.ph, "ts": e.ts - t0, "dur": e.dur, "pid": e.pid, "tid": e.tid])
        }
        let data = try JSONSerialization.data(withJSONObject: ["traceEvents": all, "displayTimeUnit": "ms"], options: [])
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw LockstepError("--trace \(path): cannot write the file; check the path")
        }
    }
}
