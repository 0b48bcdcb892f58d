import Foundation
import LockstepTransport

/// A control-plane message between the coordinator and a worker: a JSON payload
/// inside a `WireFrame`, whose kind gives the category and `type` the message.
///
/// Sequence: worker `hello` → coordinator `assign` (rank, world, job, effective
/// config) or `reject` → worker `endpoint` (its bound data address) → coordinator
/// `peers` (rank → address table) → training with `heartbeat`s both ways and
/// `step`/`epoch`/`final` metrics from workers → coordinator `shutdown`; on any
/// failure an `error` from the worker and an `abort` to everyone.
struct ControlMessage: Codable {
    enum Kind: String, Codable {
        case hello, assign, reject, endpoint, peers, heartbeat, step, epoch, final, error, abort, shutdown
    }

    var type: Kind
    var protocolVersion: Int?
    var modelHash: String?
    var host: String?
    var pid: Int?
    var requestedRank: Int?
    var rank: Int?
    var worldSize: Int?
    var jobID: UInt64?
    var config: String?
    var files: RunFiles?
    var endpoint: String?
    var peers: [String]?
    var hosts: [String]?
    var message: String?
    var stepReport: StepReport?
    var epochReport: EpochReport?
    var finalReport: FinalReport?
    var optimizerStateFloats: Int?
    var dataBytesSent: Int?
    var traceEvents: [Tracer.Event]?

    init(_ type: Kind) { self.type = type }

    var frameKind: WireFrame.MessageKind {
        switch type {
        case .hello, .endpoint: return .hello
        case .assign: return .welcome
        case .reject: return .reject
        case .peers: return .peerTable
        case .heartbeat: return .heartbeat
        case .step, .epoch, .final: return .metrics
        case .error: return .error
        case .abort, .shutdown: return .shutdown
        }
    }

    /// JSON with inf and NaN spelled out: a diverged epoch's loss must still reach the coordinator.
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    func frame(jobID: UInt64, rank: Int?, step: Int = 0) -> [UInt8] {
        let payload = Array((try? ControlMessage.encoder.encode(self)) ?? Data())
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
        guard let message = try? ControlMessage.decoder.decode(ControlMessage.self, from: Data(frame.payload)) else {
            throw LockstepError("bad control message from \(source): payload is not a control message")
        }
        guard message.frameKind == frame.header.kind else {
            throw LockstepError("bad control message from \(source): \(message.type.rawValue) in a \(frame.header.kind) frame")
        }
        return (frame, message)
    }
}

/// Host name of this machine, for messages that name where a rank runs.
func localHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, buffer.count)
    return String(cString: buffer)
}

func logLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
