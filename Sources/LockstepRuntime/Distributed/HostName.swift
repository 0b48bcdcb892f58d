import Foundation

/// Host name of this machine, for messages that name where a rank runs.
func localHostName() -> String {
    var buffer = [CChar](repeating: 0, count: 256)
    gethostname(&buffer, buffer.count)
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}

/// One line on stderr: the coordinator's and workers' log.
func logLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
