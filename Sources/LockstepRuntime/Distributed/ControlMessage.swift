import Foundation
import LockstepTransport

/// A control-plane message between the coordinator and a worker: one case per
/// message, each carrying exactly its fields, as JSON inside a `WireFrame`.
///
/// Sequence: worker `hello` → coordinator `assign` (rank, world, job, the job's
/// settings) or `reject` → worker `endpoint` (its bound data address) →
/// coordinator `peers` (rank → address table) → training with `heartbeat`s both
/// ways and `step`/`epoch`/`final` metrics from workers → coordinator
/// `shutdown`; on any failure an `error` from the worker and an `abort` to everyone.
/// When the job survives a lost worker, the survivors get `restart`: they start
/// their process afresh and say `hello` again (elastic restarts).
enum ControlMessage: Codable, Sendable {
    case hello(Hello)
    case assign(Assignment)
    case reject(reason: String)
    case endpoint(Endpoint)
    case peers(PeerTable)
    case heartbeat
    case step(StepReport)
    case epoch(EpochReport)
    case final(Final)
    /// `final`: a restart would meet the same failure (a full checkpoint disk under
    /// `--on-checkpoint-error stop`): the job stops.
    case error(message: String, final: Bool?)
    case abort(reason: String)
    case shutdown
    /// Survivors of a lost worker: start again and rejoin; the job resumes from its last checkpoint.
    case restart(reason: String)
    /// A worker's step times since its last report (stragglers).
    case timing(RankTiming)

    struct Hello: Codable, Sendable {
        var protocolVersion: Int
        var modelHash: String
        var host: String
        var pid: Int
        var requestedRank: Int?
        /// Its CurveZMQ public key (with security), which must be the key its connection authenticated with.
        var publicKey: String?
        /// After a restart: the step its previous process had finished.
        var reachedStep: Int?
    }

    struct Assignment: Codable, Sendable {
        var rank: Int
        var worldSize: Int
        var jobID: UInt64
        /// The coordinator's job: every rank trains with these settings.
        var job: JobSpec
    }

    struct Endpoint: Codable, Sendable {
        /// The data address peers dial.
        var address: String
        /// The name of the checkpoint file it resumes from (nil: none); every rank must name the same.
        var resumeFrom: String?
    }

    struct PeerTable: Codable, Sendable {
        /// Rank r's data address and host name at index r.
        var addresses: [String]
        var hosts: [String]
        /// Rank r's CurveZMQ public key (with security): peers pin it when they connect.
        var keys: [String]?
    }

    struct Final: Codable, Sendable {
        var report: FinalReport
        var optimizerStateFloats: Int
        var dataBytesSent: Int
        var trace: [Tracer.Event]
    }

    /// Largest control frame either side accepts (a worker's final report with its
    /// trace is the largest message); a peer announcing more is disconnected.
    static let maximumBytes = 64 << 20

    /// The message's name, for filtering and for log lines.
    enum Kind: String, Sendable {
        case hello, assign, reject, endpoint, peers, heartbeat, step, epoch, final, error, abort, shutdown, restart, timing
    }

    var kind: Kind {
        switch self {
        case .hello: .hello
        case .assign: .assign
        case .reject: .reject
        case .endpoint: .endpoint
        case .peers: .peers
        case .heartbeat: .heartbeat
        case .step: .step
        case .epoch: .epoch
        case .final: .final
        case .error: .error
        case .abort: .abort
        case .shutdown: .shutdown
        case .restart: .restart
        case .timing: .timing
        }
    }

    var frameKind: WireFrame.MessageKind {
        switch self {
        case .hello, .endpoint: .hello
        case .assign: .welcome
        case .reject: .reject
        case .peers: .peerTable
        case .heartbeat: .heartbeat
        case .step, .epoch, .final, .timing: .metrics
        case .error: .error
        case .abort, .shutdown, .restart: .shutdown
        }
    }

    func frame(jobID: UInt64, rank: Int?, step: Int = 0) -> [UInt8] {
        let payload = Array((try? JobSpec.encoder.encode(self)) ?? Data())
        return WireFrame(kind: frameKind, jobID: jobID, step: UInt64(max(step, 0)),
                         senderRank: rank.map { UInt32($0) } ?? WireFrame.noRank, payload: payload).encoded()
    }

    /// Decodes and validates a frame; a bad frame or payload is an error naming `source`.
    static func decode(_ bytes: [UInt8], expectedJobID: UInt64?, source: String) throws -> (WireFrame, ControlMessage) {
        let frame: WireFrame
        do {
            frame = try WireFrame.decode(bytes, expectedJobID: expectedJobID)
        } catch {
            throw LockstepError("bad control frame from \(source): \(error)")
        }
        guard let message = try? JobSpec.decoder.decode(ControlMessage.self, from: Data(frame.payload)) else {
            throw LockstepError("bad control message from \(source): payload is not a control message")
        }
        guard message.frameKind == frame.header.kind else {
            throw LockstepError("bad control message from \(source): \(message.kind.rawValue) in a \(frame.header.kind) frame")
        }
        return (frame, message)
    }
}
