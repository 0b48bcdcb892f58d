#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let posixWrite = Glibc.write
private let posixRead = Glibc.read
#elseif canImport(Darwin)
private let posixWrite = Darwin.write
private let posixRead = Darwin.read
#endif

/// Whole-file writes that either fully replace the target or leave it alone, and whole-file reads.
///
/// Every system call goes through `syscall(_:_:_:)`, which retries EINTR and
/// turns errno into `DataError.io` naming the file and the operation.
public enum AtomicFile {
    /// Appends bytes to the temporary file.
    struct Sink {
        let fd: Int32
        let path: String

        func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

        func write(_ bytes: UnsafeRawBufferPointer) throws {
            var done = 0
            while done < bytes.count {
                let n = try syscall(path, "write") { posixWrite(fd, bytes.baseAddress! + done, bytes.count - done) }
                done += n
            }
        }
    }

    /// Writes `body`'s bytes to `dir/.name.tmp-<pid>-<n>`, fsyncs, renames over `path`, fsyncs `dir`.
    static func write(to path: String, _ body: (Sink) throws -> Void) throws {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        var random = SystemRandomNumberGenerator()
        let temporary = (directory == "/" ? "" : directory) + "/." + name + ".tmp-\(getpid())-\(random.next() % 1_000_000)"
        let fd = try syscall(temporary, "create") { Int(open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)) }
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do {
            try body(Sink(fd: Int32(fd), path: temporary))
            _ = try syscall(temporary, "fsync") { Int(fsync(Int32(fd))) }
        } catch {
            close(Int32(fd))
            throw error
        }
        _ = try syscall(temporary, "close") { Int(close(Int32(fd))) }
        _ = try syscall(path, "rename") { Int(rename(temporary, path)) }
        renamed = true
        let dfd = try syscall(directory, "open directory") { Int(open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) }
        defer { close(Int32(dfd)) }
        _ = try syscall(directory, "fsync directory") { Int(fsync(Int32(dfd))) }
    }

    /// Replaces `path` with `bytes` atomically (see `write(to:_:)`).
    public static func write(_ bytes: [UInt8], to path: String) throws {
        try write(to: path) { try $0.write(bytes) }
    }

    /// The whole file; a missing file is `DataError.invalidArgument`, other failures `.io`.
    static func readAll(path: String, maximumBytes: Int = 1 << 33) throws -> [UInt8] {
        var fd: Int32
        // O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores it.
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) } while fd < 0 && errno == EINTR
        if fd < 0 {
            let code = errno
            if code == ENOENT { throw DataError.invalidArgument(path: path, reason: "no such file; check the path") }
            throw DataError.io(path: path, operation: "open", reason: String(cString: strerror(code)))
        }
        defer { close(Int32(fd)) }
        var st = stat()
        _ = try syscall(path, "fstat") { Int(fstat(Int32(fd), &st)) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw DataError.unreadable(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size <= maximumBytes else {
            throw DataError.unreadable(path: path, reason: "\(size) bytes, more than the \(maximumBytes) a checkpoint of this model can have")
        }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = try bytes.withUnsafeMutableBytes { b in
                try syscall(path, "read") { posixRead(Int32(fd), b.baseAddress! + done, size - done) }
            }
            if n == 0 { break }
            done += n
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }

    /// Runs a system call, retrying on EINTR; a negative result becomes `DataError.io`.
    @discardableResult
    static func syscall(_ path: String, _ operation: String, _ call: () -> Int) throws -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw DataError.io(path: path, operation: operation, reason: String(cString: strerror(code)))
        }
    }
}
